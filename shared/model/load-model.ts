/**
 * One entry point for every base-model format: a GGUF file or a Hugging Face model directory.
 */
import { statSync } from 'node:fs';
import { ErrorCode, InputFileError } from '../errors.js';
import { isHfModelDir, loadHfModel } from './load-hf.js';
import { loadLlamaGguf, type LoadedModel } from './load-gguf.js';

/**
 * Loads `path` as a Hugging Face directory when it is a directory with a `config.json`, else as a GGUF file.
 * @throws InputFileError E_MODEL_FILE for a directory without config.json, else as {@link loadHfModel} or {@link loadLlamaGguf}.
 */
export async function loadModel(path: string): Promise<LoadedModel> {
  if (isHfModelDir(path)) return loadHfModel(path);
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `model directory ${path}: config.json not found (expected a GGUF file or a Hugging Face model directory)`);
  }
  return loadLlamaGguf(path);
}
