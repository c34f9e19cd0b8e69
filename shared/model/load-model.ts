/**
 * One entry point for every base-model format: a GGUF file or a Hugging Face model directory, and the
 * model-family dispatch (LLaMA family or BERT family, by `config.json`'s `model_type`).
 */
import { statSync } from 'node:fs';
import { ConfigError, ErrorCode, InputFileError } from '../errors.js';
import type { NamedTensors, TensorSpec } from '../tensors.js';
import { isBertConfig } from './bert/bert-config.js';
import { bertTrainableManifest, initBertTrainableValues, validateBertSpec } from './bert/bert-trainable.js';
import { isHfBertDir, loadHfBert, type LoadedBert } from './bert/load-hf-bert.js';
import { isHfModelDir, loadHfModel } from './load-hf.js';
import { loadLlamaGguf, type LoadedModel } from './load-gguf.js';
import { initTrainableValues, trainableManifest, validateModelSpec } from './trainable.js';
import type { ModelSpec } from './types.js';

/**
 * Loads `path` as a Hugging Face directory when it is a directory with a `config.json`, else as a GGUF file
 * (LLaMA family only; see {@link loadBaseModel} for every family).
 * @throws InputFileError E_MODEL_FILE for a directory without config.json, a BERT directory (naming
 *   {@link loadBaseModel}'s callers: training, eval), else as {@link loadHfModel} or {@link loadLlamaGguf}.
 */
export async function loadModel(path: string): Promise<LoadedModel> {
  if (isHfBertDir(path)) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `model directory ${path} holds a BERT model (model_type "bert"): this command supports LLaMA-family models only`);
  }
  if (isHfModelDir(path)) return loadHfModel(path);
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `model directory ${path}: config.json not found (expected a GGUF file or a Hugging Face model directory)`);
  }
  return loadLlamaGguf(path);
}

export { isBertConfig };

/** A loaded base model of either family; `family` tells which. */
export type LoadedBaseModel = (LoadedModel & { readonly family: 'llama' }) | (LoadedBert & { readonly family: 'bert' });

/**
 * Loads a GGUF file or an HF directory of either family: `model_type: "bert"` goes to `loadHfBert`, anything
 * else to {@link loadModel}.
 * @throws as `loadHfBert` or {@link loadModel}.
 */
export async function loadBaseModel(path: string): Promise<LoadedBaseModel> {
  if (isHfBertDir(path)) return { ...(await loadHfBert(path)), family: 'bert' };
  return { ...(await loadModel(path)), family: 'llama' };
}

/** One line about the model for logs: layers, width, vocabulary and family. */
export function describeBaseModel(loaded: LoadedBaseModel): string {
  const c = loaded.config;
  const width = isBertConfig(c) ? c.hiddenSize : c.dim;
  return `${loaded.family}, ${c.nLayers} layers, width ${width}, vocab ${c.vocabSize}`;
}

/**
 * Validates `spec` for the model and returns its trainable manifest and seeded initial values (what the
 * coordinator holds).
 * @param maxLength the run's `max_length`, checked against BERT's `max_position_embeddings`. @default unchecked
 * @throws ConfigError E_CONFIG_INVALID for a spec the model cannot build (for BERT: a target it lacks,
 *   `maxLength` beyond its positions).
 */
export function trainablePlanOf(loaded: LoadedBaseModel, spec: ModelSpec, seed: number, maxLength?: number): { manifest: TensorSpec[]; initial: NamedTensors } {
  if (loaded.family === 'bert') {
    validateBertSpec(spec, loaded.config);
    if (maxLength !== undefined && maxLength > loaded.config.maxPositions) {
      throw new ConfigError(ErrorCode.CONFIG_INVALID, `max_length ${maxLength} exceeds the BERT model's max_position_embeddings ${loaded.config.maxPositions}`);
    }
    return {
      manifest: bertTrainableManifest(loaded.config, spec, { hasMlmHead: loaded.mlmHead !== undefined }),
      initial: initBertTrainableValues(loaded.config, spec, seed, loaded.head, loaded.weights, loaded.mlmHead),
    };
  }
  validateModelSpec(spec, loaded.config);
  return { manifest: trainableManifest(loaded.config, spec, loaded.weights), initial: initTrainableValues(loaded.config, spec, seed, loaded.weights) };
}
