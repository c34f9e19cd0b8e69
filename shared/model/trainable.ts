/**
 * What a model trains, without building the model: the manifest of trainable tensors and their seeded initial
 * values, as plain arrays, for every PEFT method (`lora`, `adapter`, `prompt`, `feature`, `full`). The coordinator
 * needs both and computes nothing, so it never touches TF.js.
 */
import { baseTuningManifest, initBaseTuningTensors, validateFeatureSpec } from '../adapters/base-tuning.js';
import { bottleneckManifest, initBottleneckTensors, validateBottleneckSpec } from '../adapters/bottleneck.js';
import { initLoraTensors, loraManifest, validateLoraSpec } from '../adapters/lora.js';
import { initPromptTuningTensors, promptTuningManifest, validatePromptTuningSpec } from '../adapters/prompt-tuning.js';
import { mulberry32, randomNormal } from '../random.js';
import type { NamedTensors, TensorSpec } from '../tensors.js';
import type { BaseWeights, LlamaConfig, ModelSpec } from './types.js';
import { PEFT_METHODS } from './types.js';
import { ConfigError, ErrorCode } from '../errors.js';

/** Name of the classification head's weight `[numLabels, dim]` (Hugging Face `LlamaForSequenceClassification`). */
export const SCORE_WEIGHT = 'score.weight';

/** Standard deviation of the classification head's initial weights (Hugging Face `initializer_range`). */
export const SCORE_INIT_STD = 0.02;

/** What the manifest of some methods depends on besides the config: which base tensors exist. */
export interface BaseShape {
  /** Whether the base has its own `output.weight` (else the output projection is tied to the embedding). */
  has(name: string): boolean;
}

/**
 * Trainable tensors in canonical order: the method's tensors (LoRA: layers ascending; q, k, v, o, gate, up, down;
 * A before B. adapter: layers ascending, attn then mlp adapter. prompt: `prompt_embeddings`. feature / full: base
 * weights by Hugging Face name, see base-tuning.ts), then `score.weight` for classification.
 * @param base the base weights (or anything answering `has`); only `full` causal-lm reads it (tied or not).
 */
export function trainableManifest(config: LlamaConfig, spec: ModelSpec, base?: BaseShape): TensorSpec[] {
  const manifest = methodManifest(config, spec, base);
  if (spec.task === 'classification') manifest.push({ name: SCORE_WEIGHT, shape: [spec.numLabels, config.dim] });
  return manifest;
}

function methodManifest(config: LlamaConfig, spec: ModelSpec, base: BaseShape | undefined): TensorSpec[] {
  const peft = spec.peft;
  switch (peft.method) {
    case 'lora':
      return loraManifest(config, peft);
    case 'adapter':
      return bottleneckManifest(config, peft);
    case 'prompt':
      return promptTuningManifest(config, peft);
    case 'feature':
    case 'full':
      return baseTuningManifest(config, peft, spec.task, base?.has('output.weight') ?? false);
  }
}

/**
 * Fresh trainable values, deterministic in `seed`: the method's tensors (LoRA as PEFT initialises it: A uniform,
 * B zero; bottleneck adapters: down uniform, up zero; prompt tuning: embeddings of seeded vocabulary tokens;
 * feature / full: copies of the base weights), then the classification head from N(0, {@link SCORE_INIT_STD}²) as
 * Hugging Face does (a zero head would zero every other gradient at the first step).
 * @param base the loaded base weights: needed by `prompt`, `feature` (k > 0 or causal-lm) and `full`.
 * @throws ConfigError E_CONFIG_INVALID when the method needs `base` and none is given.
 */
export function initTrainableValues(config: LlamaConfig, spec: ModelSpec, seed: number, base?: BaseWeights): NamedTensors {
  const rng = mulberry32(seed);
  const peft = spec.peft;
  const needBase = (): BaseWeights => {
    if (!base) throw new ConfigError(ErrorCode.CONFIG_INVALID, `peft.method "${peft.method}": initial values need the base weights`);
    return base;
  };
  let values: NamedTensors;
  switch (peft.method) {
    case 'lora':
      values = initLoraTensors(config, peft, rng);
      break;
    case 'adapter':
      values = initBottleneckTensors(config, peft, rng);
      break;
    case 'prompt':
      values = initPromptTuningTensors(config, peft, needBase(), rng);
      break;
    case 'feature':
    case 'full': {
      const manifest = methodManifest(config, spec, base);
      values = manifest.length === 0 ? new Map() : initBaseTuningTensors(manifest, needBase());
      break;
    }
  }
  if (spec.task === 'classification') {
    const score = new Float32Array(spec.numLabels * config.dim);
    for (let i = 0; i < score.length; i++) score[i] = SCORE_INIT_STD * randomNormal(rng);
    values.set(SCORE_WEIGHT, score);
  }
  return values;
}

/**
 * Throw unless the spec can be built: known task and pooling, a positive integer `numLabels` for classification,
 * a known PEFT method with valid settings (and, given `config`, settings that fit the model).
 * @throws ConfigError E_CONFIG_INVALID.
 */
export function validateModelSpec(spec: ModelSpec, config?: LlamaConfig): void {
  if (spec.task !== 'classification' && spec.task !== 'causal-lm') {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `model.task: unknown task "${String(spec.task)}"`);
  }
  if (spec.task === 'classification' && (!Number.isInteger(spec.numLabels) || spec.numLabels < 2)) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `model.num_labels must be an integer ≥ 2 for classification, got ${spec.numLabels}`);
  }
  if (spec.pooling !== 'mean' && spec.pooling !== 'last') {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `model.pooling: unknown pooling "${String(spec.pooling)}"`);
  }
  const peft = spec.peft;
  switch (peft.method) {
    case 'lora':
      validateLoraSpec(peft);
      if (spec.task === 'causal-lm' && peft.targetModules.length === 0) {
        throw new ConfigError(ErrorCode.CONFIG_INVALID, 'peft.target_modules is empty: a causal-lm model would have nothing to train');
      }
      return;
    case 'adapter':
      validateBottleneckSpec(peft);
      return;
    case 'prompt':
      validatePromptTuningSpec(peft, config);
      return;
    case 'feature':
      validateFeatureSpec(peft, config?.nLayers);
      return;
    case 'full':
      return;
    default:
      throw new ConfigError(
        ErrorCode.CONFIG_INVALID,
        `peft.method: unknown method "${String((peft as { method: unknown }).method)}" (expected one of ${PEFT_METHODS.join(', ')})`,
      );
  }
}
