/**
 * The files of a Hugging Face model directory that the loaders read (`loadHfModel`, `loadHfBert`): config.json,
 * model.safetensors or model.safetensors.index.json and its shards, tokenizer.json and tokenizer_config.json.
 * The coordinator announces them (name, size, sha256) so that a worker lacking the directory can fetch it file by
 * file; {@link hfDirDigest} recomputes, from that list alone, the directory digest the loaders compute.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256OfFile } from '../blobs/blob-store.js';
import { ErrorCode, InputFileError } from '../errors.js';
import { HF_WEIGHTS_FILE, HF_WEIGHTS_INDEX } from '../formats/hf-safetensors-dir.js';

/** Most files one model announcement may list (the parser refuses more). */
export const HF_DIR_MAX_FILES = 1024;
/** Longest file name accepted in an announcement, in characters. */
export const MAX_MODEL_FILE_NAME_LENGTH = 255;

/** One file of a model directory as the coordinator announces it. */
export interface ModelFileEntry {
  /** A plain file name inside the directory (see {@link isSafeModelFileName}). */
  readonly name: string;
  /** Lower-case hex SHA-256 of the file's bytes (its blob id). */
  readonly sha256: string;
  readonly sizeBytes: number;
}

const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._+-]*$/;

/**
 * Whether `name` may name a file inside a cache directory: letters, digits and `._+-` only, not starting with a
 * dot, no `..` anywhere, at most {@link MAX_MODEL_FILE_NAME_LENGTH} characters. So never a path (`/`, `\`), an
 * absolute or drive path, `.`/`..`, a hidden file or a control character.
 */
export function isSafeModelFileName(name: string): boolean {
  return name.length <= MAX_MODEL_FILE_NAME_LENGTH && SAFE_NAME.test(name) && !name.includes('..');
}

/**
 * Lists the files the loaders read from `dir`, in digest order, each with its size and SHA-256 (streamed).
 * Optional files that are absent (tokenizer_config.json) are left out; with a shard index, the index and every
 * shard it names are listed, and model.safetensors is not (the index wins, as in the loaders).
 * @throws InputFileError E_MODEL_FILE when config.json or the weights are missing, or the index is not valid
 */
export async function listHfDirFiles(dir: string): Promise<ModelFileEntry[]> {
  const names = ['config.json'];
  const indexPath = join(dir, HF_WEIGHTS_INDEX);
  if (existsSync(indexPath)) names.push(HF_WEIGHTS_INDEX, ...(await shardNamesOf(indexPath)));
  else names.push(HF_WEIGHTS_FILE);
  for (const name of ['tokenizer.json', 'tokenizer_config.json']) if (existsSync(join(dir, name))) names.push(name);
  const files: ModelFileEntry[] = [];
  for (const name of names) {
    const path = join(dir, name);
    let sizeBytes: number;
    try {
      sizeBytes = (await stat(path)).size;
    } catch (err) {
      throw new InputFileError(ErrorCode.MODEL_FILE, `HF model directory ${dir}: ${name} cannot be read (${(err as Error).message})`, { cause: err });
    }
    files.push({ name, sha256: await sha256OfFile(path), sizeBytes });
  }
  return files;
}

/**
 * The directory digest `loadHfModel` / `loadHfBert` compute, from a file list: the SHA-256 of the lines
 * `<sha256>  <name>\n` (as `sha256sum` prints them) for config.json, every `.safetensors` file in sorted order,
 * tokenizer.json and tokenizer_config.json, each when listed. The shard index and any other file do not count.
 */
export function hfDirDigest(files: readonly Pick<ModelFileEntry, 'name' | 'sha256'>[]): string {
  const byName = new Map(files.map((f) => [f.name, f.sha256]));
  const weights = files.map((f) => f.name).filter((name) => name.endsWith('.safetensors')).sort();
  const lines: string[] = [];
  for (const name of ['config.json', ...weights, 'tokenizer.json', 'tokenizer_config.json']) {
    const digest = byName.get(name);
    if (digest !== undefined) lines.push(`${digest}  ${name}\n`);
  }
  return createHash('sha256').update(lines.join('')).digest('hex');
}

/** The shard files an index names, sorted and without repeats (as `readHfWeightsDir` reads them). */
async function shardNamesOf(indexPath: string): Promise<string[]> {
  let map: unknown;
  try {
    map = (JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map?: unknown } | null)?.weight_map;
  } catch (err) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `${indexPath}: cannot read the shard index (${(err as Error).message})`, { cause: err });
  }
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `${indexPath}: weight_map is missing or not an object`);
  }
  const shards = new Set<string>();
  for (const [tensor, file] of Object.entries(map as Record<string, unknown>)) {
    if (typeof file !== 'string' || !file.endsWith('.safetensors') || file.includes('/') || file.includes('\\')) {
      throw new InputFileError(ErrorCode.MODEL_FILE, `${indexPath}: tensor ${tensor} maps to ${JSON.stringify(file)}, not a .safetensors file in the directory`);
    }
    shards.add(file);
  }
  return [...shards].sort();
}
