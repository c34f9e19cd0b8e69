/**
 * Prompt tuning (Lester et al. 2021, PEFT `PromptTuningConfig`): `numVirtualTokens` trainable embeddings
 * `prompt_embeddings` `[numVirtualTokens, dim]` (PEFT's saved key) are put before the embeddings of every sequence.
 *
 * As PEFT does: virtual tokens take positions `0 .. P−1` and the real tokens `P .. P+T−1` (RoPE sees the longer
 * sequence), the attention mask gets `P` ones in front (every real token attends to every virtual token; causal
 * order is kept), and for causal-lm the labels of the virtual positions are ignored (-100). For classification
 * the pooling runs over the REAL tokens only: `mean` averages real tokens (virtual ones excluded), `last` takes the
 * last real token.
 *
 * Initialisation: PEFT's `prompt_tuning_init: SAMPLE_VOCAB`: each virtual token starts as the embedding of a token
 * drawn uniformly from the vocabulary (seeded), so it starts in the region of embedding space the model knows.
 */
import { ConfigError, ErrorCode, ShapeError } from '../errors.js';
import type { BaseWeights, Batch, LlamaConfig, PromptTuningSpec } from '../model/types.js';
import type { NamedTensors, TensorSpec } from '../tensors.js';
import { IGNORE_INDEX } from '../model/losses.js';

/** The trainable tensor of prompt tuning (PEFT's key in `adapter_model.safetensors`). */
export const PROMPT_EMBEDDINGS = 'prompt_embeddings';

/**
 * Throw unless `spec` can be built on a model of `config`: `numVirtualTokens` a positive integer below the context.
 * @throws ConfigError E_CONFIG_INVALID naming the field.
 */
export function validatePromptTuningSpec(spec: PromptTuningSpec, config?: LlamaConfig): void {
  if (!Number.isInteger(spec.numVirtualTokens) || spec.numVirtualTokens <= 0) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `peft.num_virtual_tokens must be a positive integer, got ${spec.numVirtualTokens}`);
  }
  if (config && spec.numVirtualTokens >= config.contextLength) {
    throw new ConfigError(
      ErrorCode.CONFIG_INVALID,
      `peft.num_virtual_tokens ${spec.numVirtualTokens} leaves no room in the model's context of ${config.contextLength} tokens`,
    );
  }
}

/** The prompt's one tensor: `prompt_embeddings` `[numVirtualTokens, dim]`. */
export function promptTuningManifest(config: LlamaConfig, spec: PromptTuningSpec): TensorSpec[] {
  return [{ name: PROMPT_EMBEDDINGS, shape: [spec.numVirtualTokens, config.dim] }];
}

/**
 * Seeded initial values (SAMPLE_VOCAB, see the module comment).
 * @param rng uniform [0, 1) source; one draw per virtual token.
 * @throws ShapeError E_TENSOR_NAME when `base` lacks `token_embd.weight`.
 */
export function initPromptTuningTensors(config: LlamaConfig, spec: PromptTuningSpec, base: BaseWeights, rng: () => number): NamedTensors {
  const table = base.get('token_embd.weight');
  if (!table) throw new ShapeError(ErrorCode.TENSOR_NAME, 'prompt tuning init: base weight "token_embd.weight" is missing');
  const values = new Float32Array(spec.numVirtualTokens * config.dim);
  for (let p = 0; p < spec.numVirtualTokens; p++) {
    const token = Math.min(config.vocabSize - 1, Math.floor(rng() * config.vocabSize));
    values.set(table.subarray(token * config.dim, (token + 1) * config.dim), p * config.dim);
  }
  return new Map([[PROMPT_EMBEDDINGS, values]]);
}

/** A batch with room for the virtual tokens, and what the model needs to fill it. */
export interface PromptedBatch {
  /**
   * `seqLen + P` positions per sequence: virtual positions hold token id 0 (never looked up), mask 1, label -100
   * for causal-lm; classification labels are unchanged.
   */
  readonly batch: Batch;
  /** `[batchSize · (seqLen + P)]`: the real tokens only (virtual positions 0), for pooling. */
  readonly realMask: Int32Array;
  /** `[batchSize · (seqLen + P), P]` row-major: 1 at (row of virtual token p of sequence b, p), for `rows = S·prompt`. */
  readonly promptSelection: Float32Array;
}

/** Make room for `numVirtualTokens` virtual tokens before each sequence of `batch` (see {@link PromptedBatch}). */
export function promptedBatch(batch: Batch, numVirtualTokens: number, perTokenLabels: boolean): PromptedBatch {
  const { batchSize, seqLen } = batch;
  const p = numVirtualTokens;
  const longLen = seqLen + p;
  const inputIds = new Int32Array(batchSize * longLen);
  const attentionMask = new Int32Array(batchSize * longLen);
  const realMask = new Int32Array(batchSize * longLen);
  const labels = perTokenLabels ? new Int32Array(batchSize * longLen).fill(IGNORE_INDEX) : batch.labels;
  const promptSelection = new Float32Array(batchSize * longLen * p);
  for (let b = 0; b < batchSize; b++) {
    for (let v = 0; v < p; v++) {
      attentionMask[b * longLen + v] = 1;
      promptSelection[(b * longLen + v) * p + v] = 1;
    }
    for (let t = 0; t < seqLen; t++) {
      const dst = b * longLen + p + t;
      const src = b * seqLen + t;
      inputIds[dst] = batch.inputIds[src];
      attentionMask[dst] = batch.attentionMask[src];
      realMask[dst] = batch.attentionMask[src];
      if (perTokenLabels) labels[dst] = batch.labels[src];
    }
  }
  return { batch: { batchSize, seqLen: longLen, inputIds, attentionMask, labels }, realMask, promptSelection };
}
