/**
 * What a model trains, without building the model: the manifest of trainable tensors and their seeded initial
 * values, as plain arrays. The coordinator needs both and computes nothing, so it never touches TF.js.
 */
import { initLoraTensors, loraManifest, validateLoraSpec } from '../adapters/lora.js';
import { mulberry32, randomNormal } from '../random.js';
import type { NamedTensors, TensorSpec } from '../tensors.js';
import type { LlamaConfig, ModelSpec } from './types.js';
import { ConfigError, ErrorCode } from '../errors.js';

/** Name of the classification head's weight `[numLabels, dim]` (Hugging Face `LlamaForSequenceClassification`). */
export const SCORE_WEIGHT = 'score.weight';

/** Standard deviation of the classification head's initial weights (Hugging Face `initializer_range`). */
export const SCORE_INIT_STD = 0.02;

/**
 * Trainable tensors in canonical order: LoRA (layers ascending; q, k, v, o, gate, up, down; A before B), then
 * `score.weight` for classification.
 */
export function trainableManifest(config: LlamaConfig, spec: ModelSpec): TensorSpec[] {
  const manifest = loraManifest(config, spec.peft);
  if (spec.task === 'classification') manifest.push({ name: SCORE_WEIGHT, shape: [spec.numLabels, config.dim] });
  return manifest;
}

/**
 * Fresh trainable values, deterministic in `seed`: LoRA as PEFT initialises it (A uniform, B zero), then the
 * classification head from N(0, {@link SCORE_INIT_STD}²) as Hugging Face does (a zero head would zero every LoRA
 * gradient at the first step).
 */
export function initTrainableValues(config: LlamaConfig, spec: ModelSpec, seed: number): NamedTensors {
  const rng = mulberry32(seed);
  const values = initLoraTensors(config, spec.peft, rng);
  if (spec.task === 'classification') {
    const score = new Float32Array(spec.numLabels * config.dim);
    for (let i = 0; i < score.length; i++) score[i] = SCORE_INIT_STD * randomNormal(rng);
    values.set(SCORE_WEIGHT, score);
  }
  return values;
}

/**
 * Throw unless the spec can be built: known task and pooling, a positive integer `numLabels` for classification,
 * a valid LoRA spec.
 * @throws ConfigError E_CONFIG_INVALID.
 */
export function validateModelSpec(spec: ModelSpec): void {
  if (spec.task !== 'classification' && spec.task !== 'causal-lm') {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `model.task: unknown task "${String(spec.task)}"`);
  }
  if (spec.task === 'classification' && (!Number.isInteger(spec.numLabels) || spec.numLabels < 2)) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `model.num_labels must be an integer ≥ 2 for classification, got ${spec.numLabels}`);
  }
  if (spec.pooling !== 'mean' && spec.pooling !== 'last') {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `model.pooling: unknown pooling "${String(spec.pooling)}"`);
  }
  if (spec.peft.method !== 'lora') {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `peft.method: "${String(spec.peft.method)}" is not supported by this model yet`);
  }
  validateLoraSpec(spec.peft);
  if (spec.task === 'causal-lm' && spec.peft.targetModules.length === 0) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, 'peft.target_modules is empty: a causal-lm model would have nothing to train');
  }
}
