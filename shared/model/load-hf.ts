/**
 * Loads a Hugging Face LLaMA-family model directory (config.json, model.safetensors or sharded
 * model.safetensors.index.json, tokenizer.json + tokenizer_config.json) into the same {@link LoadedModel} as a GGUF
 * file: GGUF tensor names and the adjacent-pair RoPE layout (q/k rows permuted as llama.cpp's converter does).
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, InputFileError } from '../errors.js';
import { parseHfLlamaConfig } from '../formats/hf-config.js';
import { ggufWeightsFromHf } from '../formats/hf-llama-weights.js';
import { readHfWeightsDir } from '../formats/hf-safetensors-dir.js';
import { readHfJson, readHfTokenizer } from '../formats/hf-tokenizer-files.js';
import type { LoadedModel } from './load-gguf.js';

/** Whether `path` is a directory holding a `config.json` (an HF model directory). */
export function isHfModelDir(path: string): boolean {
  try {
    return statSync(path).isDirectory() && existsSync(join(path, 'config.json'));
  } catch {
    return false;
  }
}

async function fileDigest(path: string): Promise<string | undefined> {
  if (!existsSync(path)) return undefined;
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/**
 * Reads an HF LLaMA / Mistral / Qwen2 (zero biases) directory.
 * `sha256` identifies the directory: the sha256 of the lines `<sha256 of file>  <file name>` (as `sha256sum`
 * prints them) for config.json, every weights file, tokenizer.json and tokenizer_config.json, in that order.
 * @throws InputFileError E_MODEL_FILE naming the file (and tensor) for a missing file, an unsupported architecture
 *   or config field, a corrupt or truncated safetensors file, a missing or misshapen tensor, an unsupported dtype.
 */
export async function loadHfModel(dir: string): Promise<LoadedModel> {
  if (!isHfModelDir(dir)) throw new InputFileError(ErrorCode.MODEL_FILE, `HF model directory ${dir}: config.json not found`);
  const configPath = join(dir, 'config.json');
  const hf = parseHfLlamaConfig(await readHfJson(configPath, 'HF config'), configPath);
  const files = await readHfWeightsDir(dir);
  const weights = ggufWeightsFromHf(files.tensors, hf.config, hf.tieWordEmbeddings, dir);
  const tokenizer = await readHfTokenizer(dir, hf.config.vocabSize, hf);
  const lines: string[] = [];
  const add = (name: string, digest: string | undefined): void => {
    if (digest !== undefined) lines.push(`${digest}  ${name}\n`);
  };
  add('config.json', await fileDigest(configPath));
  for (const [name, digest] of files.fileDigests) add(name, digest);
  add('tokenizer.json', await fileDigest(join(dir, 'tokenizer.json')));
  add('tokenizer_config.json', await fileDigest(join(dir, 'tokenizer_config.json')));
  const sha256 = createHash('sha256').update(lines.join('')).digest('hex');
  return { config: hf.config, weights, tokenizer, sha256, path: dir };
}
