/**
 * The weights of a Hugging Face model directory: `model.safetensors`, or the shards listed by
 * `model.safetensors.index.json` (`{"weight_map": {tensor: file}}`).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ErrorCode, InputFileError } from '../errors.js';
import { readModelFile } from './read-model-file.js';
import { parseSafetensors, type SafetensorsReadTensor } from './safetensors.js';

/** Single-file weights of an HF directory. */
export const HF_WEIGHTS_FILE = 'model.safetensors';
/** Index of sharded weights. */
export const HF_WEIGHTS_INDEX = 'model.safetensors.index.json';

/** A tensor and the file it came from (for error messages). */
export interface HfTensor extends SafetensorsReadTensor {
  readonly file: string;
}

/** Every tensor of the directory by name, and the sha256 of each weights file read. */
export interface HfWeightsDir {
  readonly tensors: Map<string, HfTensor>;
  /** `[file name, sha256 hex]` in the order read. */
  readonly fileDigests: [string, string][];
}

/**
 * Reads `model.safetensors`, or every shard named by `model.safetensors.index.json` (which wins when both exist,
 * as in transformers). F32, F16 and BF16 become float32.
 * @throws InputFileError E_MODEL_FILE when neither file exists, the index is not valid, a shard is missing,
 *   a tensor of the index is absent from its shard (naming both), a tensor appears twice, or a shard is corrupt.
 */
export async function readHfWeightsDir(dir: string): Promise<HfWeightsDir> {
  const indexPath = join(dir, HF_WEIGHTS_INDEX);
  const single = join(dir, HF_WEIGHTS_FILE);
  const tensors = new Map<string, HfTensor>();
  const fileDigests: [string, string][] = [];
  // I64 buffers (BERT's position_ids) are skipped by parseSafetensors; the index still lists them.
  const skipped = new Set<string>();
  const readShard = async (file: string): Promise<void> => {
    const path = join(dir, file);
    const bytes = await readModelFile(path, 'safetensors');
    fileDigests.push([file, createHash('sha256').update(bytes).digest('hex')]);
    const parsed = parseSafetensors(bytes, path);
    for (const t of parsed.skipped ?? []) skipped.add(t.name);
    for (const t of parsed.tensors) {
      const seen = tensors.get(t.name);
      if (seen) throw new InputFileError(ErrorCode.MODEL_FILE, `safetensors ${path}: tensor ${t.name} is also in ${seen.file}`);
      tensors.set(t.name, { ...t, file: path });
    }
  };
  if (existsSync(indexPath)) {
    let index: unknown;
    try {
      index = JSON.parse(await readFile(indexPath, 'utf8'));
    } catch (err) {
      throw new InputFileError(ErrorCode.MODEL_FILE, `${indexPath}: cannot read the shard index (${(err as Error).message})`, { cause: err });
    }
    const map = (index as { weight_map?: unknown } | null)?.weight_map;
    if (typeof map !== 'object' || map === null || Array.isArray(map)) {
      throw new InputFileError(ErrorCode.MODEL_FILE, `${indexPath}: weight_map is missing or not an object`);
    }
    const entries = Object.entries(map as Record<string, unknown>);
    const files: string[] = [];
    for (const [name, file] of entries) {
      if (typeof file !== 'string' || file !== basename(file) || !file.endsWith('.safetensors')) {
        throw new InputFileError(ErrorCode.MODEL_FILE, `${indexPath}: tensor ${name} maps to ${JSON.stringify(file)}, not a .safetensors file in the directory`);
      }
      if (!files.includes(file)) files.push(file);
    }
    for (const file of files.sort()) await readShard(file);
    for (const [name, file] of entries) {
      const t = tensors.get(name);
      if (t === undefined && skipped.has(name)) continue;
      if (t === undefined || t.file !== join(dir, file as string)) {
        throw new InputFileError(ErrorCode.MODEL_FILE, `safetensors ${join(dir, file as string)}: tensor ${name} listed in ${HF_WEIGHTS_INDEX} is missing`);
      }
    }
  } else if (existsSync(single)) {
    await readShard(HF_WEIGHTS_FILE);
  } else {
    throw new InputFileError(ErrorCode.MODEL_FILE, `HF model directory ${dir}: neither ${HF_WEIGHTS_FILE} nor ${HF_WEIGHTS_INDEX} exists`);
  }
  return { tensors, fileDigests };
}
