/**
 * What a BERT classifier trains, without TF.js: LoRA on the encoder's linear layers (PEFT's names for
 * `BertForSequenceClassification`) plus the classification head, their canonical order and seeded initial values.
 *
 * Targets map to BERT modules (under `bert.encoder.layer.{i}.`): `q` → `attention.self.query`, `k` →
 * `attention.self.key`, `v` → `attention.self.value`, `o` → `attention.output.dense`, `up` → `intermediate.dense`,
 * `down` → `output.dense`. BERT has no `gate`.
 */
import { canonicalTargets, validateLoraSpec } from '../../adapters/lora.js';
import { ConfigError, ErrorCode } from '../../errors.js';
import { mulberry32, randomNormal } from '../../random.js';
import type { NamedTensors, TensorSpec } from '../../tensors.js';
import { sizeOf } from '../../tensors.js';
import type { LoraSpec, LoraTarget, ModelSpec } from '../types.js';
import type { BertConfig } from './bert-config.js';

/** The LoRA targets a BERT layer has. */
export const BERT_LORA_TARGETS = ['q', 'k', 'v', 'o', 'up', 'down'] as const satisfies readonly LoraTarget[];
export type BertLoraTarget = (typeof BERT_LORA_TARGETS)[number];

/** Module path of each target under `encoder.layer.{i}.` (Hugging Face `BertLayer`). */
export const BERT_MODULE_PATHS: Readonly<Record<BertLoraTarget, string>> = {
  q: 'attention.self.query',
  k: 'attention.self.key',
  v: 'attention.self.value',
  o: 'attention.output.dense',
  up: 'intermediate.dense',
  down: 'output.dense',
};

/** The classification head (`BertForSequenceClassification.classifier`): weight `[numLabels, hidden]`, bias `[numLabels]`. */
export const BERT_CLASSIFIER_WEIGHT = 'classifier.weight';
export const BERT_CLASSIFIER_BIAS = 'classifier.bias';

/** Standard deviation of a fresh classifier's weights (HF `initializer_range`). @default 0.02 */
export const BERT_CLASSIFIER_INIT_STD = 0.02;

/** A LoRA factor's name, e.g. `bert.encoder.layer.1.attention.self.value.lora_B.weight` (PEFT adds `base_model.model.`). */
export function bertLoraTensorName(layer: number, target: BertLoraTarget, factor: 'A' | 'B'): string {
  return `bert.encoder.layer.${layer}.${BERT_MODULE_PATHS[target]}.lora_${factor}.weight`;
}

/** `[out, in]` of an adaptable linear layer. */
export function bertLinearShape(config: BertConfig, target: BertLoraTarget): [number, number] {
  const h = config.hiddenSize;
  if (target === 'up') return [config.intermediateSize, h];
  if (target === 'down') return [h, config.intermediateSize];
  return [h, h];
}

/**
 * The spec's LoRA settings.
 * @throws ConfigError E_CONFIG_INVALID when `peft.method` is not `lora` (the only method BERT models implement yet).
 */
export function bertLoraSpec(spec: ModelSpec): LoraSpec {
  if (spec.peft.method !== 'lora') {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `peft.method: "${String(spec.peft.method)}" is not supported by BERT models yet (only lora)`);
  }
  return spec.peft;
}

/**
 * The spec's targets as BERT targets, canonical order.
 * @throws ConfigError E_CONFIG_INVALID for a target BERT does not have (`gate`).
 */
export function bertTargets(spec: ModelSpec): BertLoraTarget[] {
  const targets = canonicalTargets(bertLoraSpec(spec));
  for (const t of targets) {
    if (!(BERT_LORA_TARGETS as readonly string[]).includes(t)) {
      throw new ConfigError(ErrorCode.CONFIG_INVALID, `peft.target_modules: BERT has no "${t}" module (expected some of ${BERT_LORA_TARGETS.join(', ')})`);
    }
  }
  return targets as BertLoraTarget[];
}

/**
 * Throw unless a BERT model can be built for `spec`: classification only, at least 2 labels, LoRA, known targets.
 * `spec.pooling` is not used: BERT classifies from the pooled [CLS] state, as Hugging Face does.
 * @throws ConfigError E_CONFIG_INVALID naming the field.
 */
export function validateBertSpec(spec: ModelSpec): void {
  if (spec.task !== 'classification') {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `task "${String(spec.task)}" is not supported by BERT models (only classification)`);
  }
  if (!Number.isInteger(spec.numLabels) || spec.numLabels < 2) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `model.num_labels must be an integer ≥ 2 for classification, got ${spec.numLabels}`);
  }
  validateLoraSpec(bertLoraSpec(spec));
  bertTargets(spec);
}

/** Trainable tensors in canonical order: LoRA (layers ascending; q, k, v, o, up, down; A before B), then the classifier weight and bias. */
export function bertTrainableManifest(config: BertConfig, spec: ModelSpec): TensorSpec[] {
  const out: TensorSpec[] = [];
  const targets = bertTargets(spec);
  const { r } = bertLoraSpec(spec);
  for (let layer = 0; layer < config.nLayers; layer++) {
    for (const target of targets) {
      const [outFeatures, inFeatures] = bertLinearShape(config, target);
      out.push({ name: bertLoraTensorName(layer, target, 'A'), shape: [r, inFeatures] });
      out.push({ name: bertLoraTensorName(layer, target, 'B'), shape: [outFeatures, r] });
    }
  }
  out.push({ name: BERT_CLASSIFIER_WEIGHT, shape: [spec.numLabels, config.hiddenSize] });
  out.push({ name: BERT_CLASSIFIER_BIAS, shape: [spec.numLabels] });
  return out;
}

/**
 * Fresh trainable values, deterministic in `seed`: LoRA as PEFT initialises it (A ~ U(−1/√in, 1/√in), B = 0, drawn
 * in manifest order), then the classifier: the checkpoint's own when `head` is given (a fine-tuned
 * `BertForSequenceClassification`), else weight ~ N(0, 0.02²) and bias 0 as Hugging Face initialises it.
 */
export function initBertTrainableValues(
  config: BertConfig,
  spec: ModelSpec,
  seed: number,
  head?: { readonly weight: Float32Array; readonly bias: Float32Array },
): NamedTensors {
  const rng = mulberry32(seed);
  const out: NamedTensors = new Map();
  for (const { name, shape } of bertTrainableManifest(config, spec)) {
    const values = new Float32Array(sizeOf(shape));
    if (name.endsWith('lora_A.weight')) {
      const bound = 1 / Math.sqrt(shape[1]);
      for (let i = 0; i < values.length; i++) values[i] = (2 * rng() - 1) * bound;
    } else if (name === BERT_CLASSIFIER_WEIGHT) {
      if (head) values.set(head.weight);
      else for (let i = 0; i < values.length; i++) values[i] = BERT_CLASSIFIER_INIT_STD * randomNormal(rng);
    } else if (name === BERT_CLASSIFIER_BIAS && head) {
      values.set(head.bias);
    }
    out.set(name, values);
  }
  return out;
}
