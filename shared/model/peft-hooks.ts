/**
 * How each PEFT method enters the forward pass: the decoder hooks (see decoder.ts) and the input embeddings, from
 * the current trainable tensors by name. LoRA's additive update stays in task-model.ts (it carries dropout).
 *
 * Call inside the caller's `tf.tidy` / `tf.grads` scope: everything allocated here is left to it.
 */
import * as tf from '@tensorflow/tfjs';
import { baseLinearName, baseNormName, EMBED_TOKENS, FINAL_NORM, LM_HEAD } from '../adapters/base-tuning.js';
import { bottleneckForward } from '../adapters/bottleneck.js';
import { hasEmbeddingLora, LORA_EMBEDDING_A, LORA_EMBEDDING_B } from '../adapters/lora-embedding.js';
import { loraScale } from '../adapters/lora.js';
import { PROMPT_EMBEDDINGS } from '../adapters/prompt-tuning.js';
import type { DecoderHooks } from './decoder.js';
import { embeddingColumnLookup, embeddingLookup } from './embedding-lookup.js';
import type { FrozenBase } from './frozen-base.js';
import type { FrozenMatrix } from './linear-ops.js';
import type { ModelOps } from './ops.js';
import type { PeftSpec } from './types.js';

/** The decoder hooks of `peft` (empty for `lora` and `prompt`). */
export function decoderHooksOf(peft: PeftSpec, params: ReadonlyMap<string, tf.Tensor>, ops: ModelOps): DecoderHooks {
  if (peft.method === 'adapter') {
    return { sublayerOutput: (layer, site, y) => bottleneckForward(y, layer, site, peft, params, ops) };
  }
  if (peft.method === 'full' || peft.method === 'feature') {
    return {
      linearWeight: (layer, target) => params.get(baseLinearName(layer, target)) as tf.Tensor2D | undefined,
      normWeight: (layer, norm) => params.get(norm === 'final' ? FINAL_NORM : baseNormName(layer, norm)) as tf.Tensor1D | undefined,
    };
  }
  return {};
}

/** Per-batch constants of the input embeddings. */
export interface EmbeddingConstants {
  /** Token ids `[n]` of the (possibly prompted) batch. */
  readonly inputIds: Int32Array;
  /** Frozen-table rows of `inputIds` `[n, dim]`. */
  readonly frozenRows: tf.Tensor2D;
  /** Prompt tuning: `S` `[n, P]` placing each virtual token, and `[n, 1]` with 0 on virtual rows, 1 elsewhere. */
  readonly prompt?: { readonly selection: FrozenMatrix; readonly realRows: tf.Tensor2D };
}

/**
 * The decoder's input `[n, dim]`: frozen rows, or (full) rows of the trainable `model.embed_tokens.weight` with a
 * gradient that works on wasm, or (prompt) the frozen rows with the virtual rows replaced by `prompt_embeddings`,
 * or (LoRA targeting `embed`) the frozen rows plus `s · B·A[:, id]` per token: the batch's columns of `A`
 * `[n, r]` times `Bᵀ`, never the `[vocabSize, dim]` delta table; no dropout (as in PEFT). The output projection
 * of a tied model does not see this delta (lora-embedding.ts).
 */
export function inputEmbeddings(peft: PeftSpec, consts: EmbeddingConstants, params: ReadonlyMap<string, tf.Tensor>, ops: ModelOps): tf.Tensor2D {
  if (peft.method === 'full') return embeddingLookup(params.get(EMBED_TOKENS) as tf.Tensor2D, consts.inputIds);
  if (peft.method === 'lora' && hasEmbeddingLora(peft)) {
    const columns = embeddingColumnLookup(params.get(LORA_EMBEDDING_A) as tf.Tensor2D, consts.inputIds);
    const delta = ops.trainableLinear(columns, params.get(LORA_EMBEDDING_B) as tf.Tensor2D);
    return tf.add(consts.frozenRows, tf.mul(delta, loraScale(peft))) as tf.Tensor2D;
  }
  if (peft.method === 'prompt' && consts.prompt) {
    const virtualRows = ops.frozenLeftMatMul(consts.prompt.selection, params.get(PROMPT_EMBEDDINGS) as tf.Tensor2D);
    return tf.add(tf.mul(consts.frozenRows, consts.prompt.realRows), virtualRows) as tf.Tensor2D;
  }
  return consts.frozenRows;
}

/**
 * Language-model logits `[n, vocabSize]` of hidden states `[n, dim]`: through a trainable `lm_head.weight`, the
 * trainable tied embedding (full fine-tuning of a tied model), or the frozen output projection.
 */
export function lmLogits(peft: PeftSpec, hidden: tf.Tensor2D, params: ReadonlyMap<string, tf.Tensor>, base: FrozenBase, ops: ModelOps): tf.Tensor2D {
  const head = params.get(LM_HEAD) ?? (peft.method === 'full' ? params.get(EMBED_TOKENS) : undefined);
  return head ? ops.trainableLinear(hidden, head as tf.Tensor2D) : ops.frozenLinear(hidden, base.outputMatrix());
}
