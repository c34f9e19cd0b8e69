/**
 * What a BERT classifier trains, without TF.js, by `peft.method`: LoRA on the encoder's linear layers (PEFT's names
 * for `BertForSequenceClassification`), bottleneck adapters, or base tensors (`full`, `feature`; see
 * bert-methods.ts), or prompt embeddings, always followed by the classification head; their canonical order and
 * seeded initial values.
 *
 * Targets map to BERT modules (under `bert.encoder.layer.{i}.`): `q` → `attention.self.query`, `k` →
 * `attention.self.key`, `v` → `attention.self.value`, `o` → `attention.output.dense`, `up` → `intermediate.dense`,
 * `down` → `output.dense`. BERT has no `gate`.
 */
import { validateBottleneckSpec } from '../../adapters/bottleneck.js';
import { validateFeatureSpec } from '../../adapters/base-tuning.js';
import { canonicalTargets, validateLoraSpec } from '../../adapters/lora.js';
import { PROMPT_EMBEDDINGS, validatePromptTuningSpec } from '../../adapters/prompt-tuning.js';
import { ConfigError, ErrorCode, ShapeError } from '../../errors.js';
import { mulberry32, randomNormal } from '../../random.js';
import type { NamedTensors, TensorSpec } from '../../tensors.js';
import { sizeOf } from '../../tensors.js';
import type { LoraSpec, LoraTarget, ModelSpec } from '../types.js';
import type { BertConfig } from './bert-config.js';
import { BERT_BASE_PREFIX, bertAdapterManifest, bertBaseTuningManifest, bertPromptManifest } from './bert-methods.js';
import { bertMlmHeadManifest, bertMlmHeadTrains, bertMlmHeadValues, isBertMlm, type BertMlmHead } from './bert-mlm-head.js';

/** The `peft.method` values BERT models implement (all of them). */
export const BERT_PEFT_METHODS = ['lora', 'adapter', 'prompt', 'feature', 'full'] as const;

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
 * The spec's LoRA settings (merge and PEFT export handle LoRA only).
 * @throws ConfigError E_CONFIG_INVALID when `peft.method` is not `lora`.
 */
export function bertLoraSpec(spec: ModelSpec): LoraSpec {
  if (spec.peft.method !== 'lora') {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `peft.method: "${String(spec.peft.method)}" has no LoRA factors (this needs peft.method "lora")`);
  }
  return spec.peft;
}

/**
 * The spec's LoRA targets as BERT targets, canonical order; none for another method.
 * @throws ConfigError E_CONFIG_INVALID for a target BERT does not have (`gate`) or does not support here (`embed`).
 */
export function bertTargets(spec: ModelSpec): BertLoraTarget[] {
  if (spec.peft.method !== 'lora') return [];
  if (spec.peft.targetModules.includes('embed')) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, 'peft.target_modules: LoRA on the embedding ("embed") is not supported for BERT models');
  }
  const targets = canonicalTargets(spec.peft);
  for (const t of targets) {
    if (!(BERT_LORA_TARGETS as readonly string[]).includes(t)) {
      throw new ConfigError(ErrorCode.CONFIG_INVALID, `peft.target_modules: BERT has no "${t}" module (expected some of ${BERT_LORA_TARGETS.join(', ')})`);
    }
  }
  return targets as BertLoraTarget[];
}

/**
 * Throw unless a BERT model can be built for `spec`: classification (at least 2 labels) or `causal-lm`, which on
 * an encoder means masked-language modelling (bert-mlm-head.ts), and a method of
 * {@link BERT_PEFT_METHODS} with valid settings (LoRA targets BERT has; `trainable_top_layers` ≤ the layer count
 * when `config` is given). `spec.pooling` is not used: BERT classifies from the pooled [CLS] state, as HF does.
 * @throws ConfigError E_CONFIG_INVALID naming the field.
 */
export function validateBertSpec(spec: ModelSpec, config?: BertConfig): void {
  if (spec.task !== 'classification' && spec.task !== 'causal-lm') {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `task "${String(spec.task)}" is not supported by BERT models (classification, or causal-lm as masked-LM)`);
  }
  if (spec.task === 'classification' && (!Number.isInteger(spec.numLabels) || spec.numLabels < 2)) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `model.num_labels must be an integer ≥ 2 for classification, got ${spec.numLabels}`);
  }
  const peft = spec.peft;
  switch (peft.method) {
    case 'lora':
      validateLoraSpec(peft);
      bertTargets(spec);
      return;
    case 'adapter':
      validateBottleneckSpec(peft);
      return;
    case 'feature':
      validateFeatureSpec(peft, config?.nLayers);
      return;
    case 'full':
      return;
    case 'prompt':
      validatePromptTuningSpec(peft);
      if (config && peft.numVirtualTokens >= config.maxPositions - 1) {
        throw new ConfigError(
          ErrorCode.CONFIG_INVALID,
          `peft.num_virtual_tokens ${peft.numVirtualTokens} leaves no room in the model's max_position_embeddings ${config.maxPositions}`,
        );
      }
      return;
    default:
      throw new ConfigError(
        ErrorCode.CONFIG_INVALID,
        `peft.method: "${String((peft as { method: unknown }).method)}" is not supported by BERT models (supported: ${BERT_PEFT_METHODS.join(', ')})`,
      );
  }
}

/** The LoRA dropout probability of `spec`: 0 for a method other than LoRA. */
export function bertLoraDropout(spec: ModelSpec): number {
  return spec.peft.method === 'lora' ? spec.peft.loraDropout : 0;
}

/** What a BERT checkpoint brings besides the encoder, as far as the trainable plan depends on it. */
export interface BertHeadsPresent {
  /** Whether the checkpoint has the masked-LM head (`cls.predictions.*`). @default false */
  readonly hasMlmHead?: boolean;
}

/**
 * Trainable tensors in canonical order: the method's (LoRA: layers ascending; q, k, v, o, up, down; A before B —
 * adapter, full, feature: see bert-methods.ts), then the classifier weight and bias, or for masked-LM the MLM head
 * when it trains (`bertMlmHeadTrains`).
 * @throws ConfigError E_CONFIG_INVALID for a method BERT does not implement.
 */
export function bertTrainableManifest(config: BertConfig, spec: ModelSpec, present: BertHeadsPresent = {}): TensorSpec[] {
  const out: TensorSpec[] = [];
  const peft = spec.peft;
  const mlm = isBertMlm(spec);
  if (peft.method === 'adapter') out.push(...bertAdapterManifest(config, peft));
  else if (peft.method === 'full' || peft.method === 'feature') out.push(...bertBaseTuningManifest(config, peft, !mlm));
  else if (peft.method === 'prompt') out.push(...bertPromptManifest(config, peft));
  const targets = bertTargets(spec);
  const r = peft.method === 'lora' ? peft.r : 0;
  for (let layer = 0; layer < config.nLayers && targets.length > 0; layer++) {
    for (const target of targets) {
      const [outFeatures, inFeatures] = bertLinearShape(config, target);
      out.push({ name: bertLoraTensorName(layer, target, 'A'), shape: [r, inFeatures] });
      out.push({ name: bertLoraTensorName(layer, target, 'B'), shape: [outFeatures, r] });
    }
  }
  if (mlm) {
    if (bertMlmHeadTrains(spec, present.hasMlmHead === true)) out.push(...bertMlmHeadManifest(config));
    return out;
  }
  out.push({ name: BERT_CLASSIFIER_WEIGHT, shape: [spec.numLabels, config.hiddenSize] });
  out.push({ name: BERT_CLASSIFIER_BIAS, shape: [spec.numLabels] });
  return out;
}

/**
 * Fresh trainable values, deterministic in `seed`, drawn in manifest order: LoRA as PEFT initialises it (A ~
 * U(−1/√in, 1/√in), B = 0), adapters likewise (down ~ U(−1/√hidden, 1/√hidden), the rest 0), base tensors
 * (`full`, `feature`) copied from `weights`, prompt embeddings sampled from the vocabulary (one draw per virtual
 * token, see bert-methods.ts); then the classifier: the checkpoint's own when `head` is given (a
 * fine-tuned `BertForSequenceClassification`), else weight ~ N(0, 0.02²) and bias 0 as Hugging Face initialises it;
 * for masked-LM the MLM head when it trains: the checkpoint's `mlmHead`, else fresh from `seed` (bert-mlm-head.ts).
 * @param weights the base tensors by `BertModel` name (no `bert.` prefix); needed by `full`, `feature`, `prompt`.
 * @param mlmHead the checkpoint's MLM head, when it has one.
 * @throws ShapeError E_TENSOR_NAME when a base tensor the method trains is not in `weights`.
 */
export function initBertTrainableValues(
  config: BertConfig,
  spec: ModelSpec,
  seed: number,
  head?: { readonly weight: Float32Array; readonly bias: Float32Array },
  weights?: ReadonlyMap<string, Float32Array>,
  mlmHead?: BertMlmHead,
): NamedTensors {
  const rng = mulberry32(seed);
  const out: NamedTensors = new Map();
  const tunesBase = spec.peft.method === 'full' || spec.peft.method === 'feature';
  const headValues = isBertMlm(spec) ? bertMlmHeadValues(config, seed, mlmHead) : undefined;
  for (const { name, shape } of bertTrainableManifest(config, spec, { hasMlmHead: mlmHead !== undefined })) {
    const fromHead = headValues?.get(name);
    if (fromHead) {
      out.set(name, fromHead);
      continue;
    }
    const values = new Float32Array(sizeOf(shape));
    if (name.endsWith('lora_A.weight') || name.endsWith('_adapter.down.weight')) {
      const bound = 1 / Math.sqrt(shape[1]);
      for (let i = 0; i < values.length; i++) values[i] = (2 * rng() - 1) * bound;
    } else if (name === PROMPT_EMBEDDINGS) {
      const table = weights?.get('embeddings.word_embeddings.weight');
      if (!table) throw new ShapeError(ErrorCode.TENSOR_NAME, `${name}: base weight "embeddings.word_embeddings.weight" is missing`);
      const h = config.hiddenSize;
      for (let p = 0; p < shape[0]; p++) {
        const token = Math.min(config.vocabSize - 1, Math.floor(rng() * config.vocabSize));
        values.set(table.subarray(token * h, (token + 1) * h), p * h);
      }
    } else if (tunesBase && name.startsWith(BERT_BASE_PREFIX)) {
      const base = weights?.get(name.slice(BERT_BASE_PREFIX.length));
      if (!base) throw new ShapeError(ErrorCode.TENSOR_NAME, `${name}: base weight "${name.slice(BERT_BASE_PREFIX.length)}" is missing`);
      values.set(base);
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
