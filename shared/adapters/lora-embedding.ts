/**
 * LoRA on the token embedding (PEFT's `lora.Embedding`, target module `embed_tokens`): the table `W`
 * `[vocabSize, dim]` becomes `W + s · (B·A)ᵀ`, i.e. token `t` reads row `W[t] + s · B·A[:, t]`, with
 * `lora_embedding_A` `[r, vocabSize]` and `lora_embedding_B` `[dim, r]` (PEFT's shapes and names: the saved keys
 * have no `.weight`). As in PEFT, `A` starts at zero and `B` from N(0, 1), so the model starts at the base; no
 * dropout applies to the embedding's LoRA.
 *
 * Tied output projection (a model without `output.weight` computes its logits with the embedding): the delta
 * applies to the INPUT embedding only, as in PEFT, where only the `embed_tokens` module is wrapped and the
 * `lm_head` keeps reading the base weight. {@link mergeLoraEmbedding} therefore unties such a model.
 *
 * The forward product lives in shared/model/peft-hooks.ts (columns of `A` for the batch's ids, then `B`).
 */
import { ErrorCode, ShapeError } from '../errors.js';
import type { BaseWeights, LlamaConfig, LoraSpec } from '../model/types.js';
import { randomNormal } from '../random.js';
import type { NamedTensors, TensorSpec } from '../tensors.js';

/** Name of `lora_embedding_A` `[r, vocabSize]` (PEFT key `base_model.model.` + this). */
export const LORA_EMBEDDING_A = 'model.embed_tokens.lora_embedding_A';
/** Name of `lora_embedding_B` `[dim, r]` (PEFT key `base_model.model.` + this). */
export const LORA_EMBEDDING_B = 'model.embed_tokens.lora_embedding_B';

/** GGUF names of the base tensors the merge reads and writes. */
const TOKEN_EMBD = 'token_embd.weight';
const OUTPUT = 'output.weight';

/** Whether `spec` adapts the token embedding. */
export function hasEmbeddingLora(spec: LoraSpec): boolean {
  return spec.targetModules.includes('embed');
}

/** The embedding adapter's tensors (A then B), or none when `spec` does not target `embed`. */
export function loraEmbeddingManifest(config: LlamaConfig, spec: LoraSpec): TensorSpec[] {
  if (!hasEmbeddingLora(spec)) return [];
  return [
    { name: LORA_EMBEDDING_A, shape: [spec.r, config.vocabSize] },
    { name: LORA_EMBEDDING_B, shape: [config.dim, spec.r] },
  ];
}

/**
 * PEFT's initialisation (`reset_lora_parameters` for embeddings): `A` = 0, `B` ~ N(0, 1) drawn from `rng`.
 * Adds nothing when `spec` does not target `embed`.
 */
export function initLoraEmbeddingTensors(config: LlamaConfig, spec: LoraSpec, rng: () => number, out: NamedTensors): void {
  if (!hasEmbeddingLora(spec)) return;
  out.set(LORA_EMBEDDING_A, new Float32Array(spec.r * config.vocabSize));
  out.set(LORA_EMBEDDING_B, Float32Array.from({ length: config.dim * spec.r }, () => randomNormal(rng)));
}

/**
 * Fold the embedding adapter into `merged` (a copy of the base being merged): `W'[t] = W[t] + s · B·A[:, t]`
 * (float64 sums, float32 results). A tied base (no `output.weight`) gets `output.weight` = the unmerged table, so
 * that the merged model's logits stay those of base + adapter; a separate `output.weight` is left alone.
 * @throws ShapeError E_TENSOR_NAME / E_TENSOR_SHAPE when a factor or `token_embd.weight` is missing or misshapen.
 */
export function mergeLoraEmbedding(config: LlamaConfig, merged: BaseWeights, spec: LoraSpec, scale: number, lora: NamedTensors): void {
  if (!hasEmbeddingLora(spec)) return;
  const { vocabSize, dim } = config;
  const r = spec.r;
  const a = lora.get(LORA_EMBEDDING_A);
  const b = lora.get(LORA_EMBEDDING_B);
  if (!a || !b) throw new ShapeError(ErrorCode.TENSOR_NAME, `mergeLora: missing ${a ? LORA_EMBEDDING_B : LORA_EMBEDDING_A}`);
  if (a.length !== r * vocabSize || b.length !== dim * r) {
    throw new ShapeError(ErrorCode.TENSOR_SHAPE, `mergeLora: embed_tokens: factor sizes do not match r=${r}, vocab ${vocabSize}, dim ${dim}`);
  }
  const w = merged.get(TOKEN_EMBD);
  if (!w || w.length !== vocabSize * dim) throw new ShapeError(ErrorCode.TENSOR_NAME, `mergeLora: base weight "${TOKEN_EMBD}" is missing or misshapen`);
  const out = new Float32Array(w.length);
  for (let t = 0; t < vocabSize; t++) {
    for (let j = 0; j < dim; j++) {
      let sum = 0;
      for (let k = 0; k < r; k++) sum += b[j * r + k] * a[k * vocabSize + t];
      out[t * dim + j] = w[t * dim + j] + scale * sum;
    }
  }
  if (!merged.has(OUTPUT)) merged.set(OUTPUT, w);
  merged.set(TOKEN_EMBD, out);
}
