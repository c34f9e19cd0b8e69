/**
 * Methods that train base weights themselves: `full` (every base weight, embedding included) and `feature`
 * (feature-based: the body frozen, the head trained, and optionally the top `k` blocks with the final norm).
 *
 * Trainable base tensors carry their Hugging Face `LlamaForCausalLM` state-dict names (`model.embed_tokens.weight`,
 * `model.layers.{i}.self_attn.q_proj.weight`, `model.layers.{i}.input_layernorm.weight`, `model.norm.weight`,
 * `lm_head.weight`), start at the loaded base values, and keep the GGUF row layout (see lora.ts on q/k rows).
 *
 * Heads: classification trains `score.weight` (trainable.ts). Causal-lm: `full` trains the output projection as
 * the model has it (tied to the embedding when the GGUF has no `output.weight`, else `lm_head.weight`); `feature`
 * trains `lm_head.weight`, initialised from the output projection (untied from the embedding when it was tied).
 */
import { ConfigError, ErrorCode, ShapeError } from '../errors.js';
import { GGUF_LINEAR_NAMES, linearShapeOf } from '../model/llama-config.js';
import type { BaseWeights, FeatureSpec, FullSpec, LlamaConfig, LoraTarget, ModelSpec } from '../model/types.js';
import { LORA_TARGETS } from '../model/types.js';
import type { NamedTensors, TensorSpec } from '../tensors.js';
import { LORA_MODULE_PATHS } from './lora.js';

/** Hugging Face name of the token embedding. */
export const EMBED_TOKENS = 'model.embed_tokens.weight';
/** Hugging Face name of the final norm's gain. */
export const FINAL_NORM = 'model.norm.weight';
/** Hugging Face name of an untied output projection `[vocabSize, dim]`. */
export const LM_HEAD = 'lm_head.weight';

/** The norms of a block. */
export type BlockNorm = 'attn' | 'ffn';

/** Hugging Face name of a block's linear weight, e.g. `model.layers.0.mlp.down_proj.weight`. */
export function baseLinearName(layer: number, target: LoraTarget): string {
  return `model.layers.${layer}.${LORA_MODULE_PATHS[target]}.weight`;
}

/** Hugging Face name of a block's norm gain: `input_layernorm` (attn) or `post_attention_layernorm` (ffn). */
export function baseNormName(layer: number, norm: BlockNorm): string {
  return `model.layers.${layer}.${norm === 'attn' ? 'input_layernorm' : 'post_attention_layernorm'}.weight`;
}

/** Hugging Face name → GGUF name of every base tensor these methods can train. */
export function ggufNameOf(name: string): string {
  if (name === EMBED_TOKENS) return 'token_embd.weight';
  if (name === FINAL_NORM) return 'output_norm.weight';
  if (name === LM_HEAD) return 'output.weight';
  const m = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(name);
  if (m) {
    if (m[2] === 'input_layernorm') return `blk.${m[1]}.attn_norm.weight`;
    if (m[2] === 'post_attention_layernorm') return `blk.${m[1]}.ffn_norm.weight`;
    const target = LORA_TARGETS.find((t) => LORA_MODULE_PATHS[t] === m[2]);
    if (target) return `blk.${m[1]}.${GGUF_LINEAR_NAMES[target]}.weight`;
  }
  throw new ShapeError(ErrorCode.TENSOR_NAME, `"${name}" names no base weight of a LLaMA model`);
}

/**
 * Throw unless a feature spec fits a model of `nLayers` blocks: `trainableTopLayers` an integer in `[0, nLayers]`.
 * @throws ConfigError E_CONFIG_INVALID naming the field.
 */
export function validateFeatureSpec(spec: FeatureSpec, nLayers?: number): void {
  const k = spec.trainableTopLayers;
  if (!Number.isInteger(k) || k < 0 || (nLayers !== undefined && k > nLayers)) {
    throw new ConfigError(
      ErrorCode.CONFIG_INVALID,
      `peft.trainable_top_layers must be an integer in [0, ${nLayers ?? 'nLayers'}], got ${k}`,
    );
  }
}

/** The tensors of one block, in forward order: input_layernorm, q, k, v, o, post_attention_layernorm, gate, up, down. */
function blockManifest(config: LlamaConfig, layer: number): TensorSpec[] {
  const out: TensorSpec[] = [{ name: baseNormName(layer, 'attn'), shape: [config.dim] }];
  for (const t of ['q', 'k', 'v', 'o'] as const) out.push({ name: baseLinearName(layer, t), shape: linearShapeOf(config, t) });
  out.push({ name: baseNormName(layer, 'ffn'), shape: [config.dim] });
  for (const t of ['gate', 'up', 'down'] as const) out.push({ name: baseLinearName(layer, t), shape: linearShapeOf(config, t) });
  return out;
}

/**
 * The trainable base tensors of a `full` or `feature` spec, in canonical order (embedding, blocks ascending, final
 * norm, `lm_head`); the classification head is added by the caller.
 * @param hasOutput whether the base has an untied `output.weight` (decides `lm_head` for `full` causal-lm).
 */
export function baseTuningManifest(config: LlamaConfig, spec: FullSpec | FeatureSpec, task: ModelSpec['task'], hasOutput: boolean): TensorSpec[] {
  const out: TensorSpec[] = [];
  const first = spec.method === 'full' ? 0 : config.nLayers - spec.trainableTopLayers;
  if (spec.method === 'full') out.push({ name: EMBED_TOKENS, shape: [config.vocabSize, config.dim] });
  for (let layer = first; layer < config.nLayers; layer++) out.push(...blockManifest(config, layer));
  if (first < config.nLayers) out.push({ name: FINAL_NORM, shape: [config.dim] });
  const trainsLmHead = task === 'causal-lm' && (spec.method === 'feature' || hasOutput);
  if (trainsLmHead) out.push({ name: LM_HEAD, shape: [config.vocabSize, config.dim] });
  return out;
}

/**
 * Initial values: copies of the loaded base weights (`lm_head.weight` from `output.weight`, or from the embedding
 * when tied).
 * @throws ShapeError E_TENSOR_NAME when `base` lacks a weight the manifest needs.
 */
export function initBaseTuningTensors(manifest: readonly TensorSpec[], base: BaseWeights): NamedTensors {
  const out: NamedTensors = new Map();
  for (const { name } of manifest) {
    let gguf = ggufNameOf(name);
    if (name === LM_HEAD && !base.has(gguf)) gguf = 'token_embd.weight';
    const values = base.get(gguf);
    if (!values) throw new ShapeError(ErrorCode.TENSOR_NAME, `${name}: base weight "${gguf}" is missing`);
    out.set(name, Float32Array.from(values));
  }
  return out;
}
