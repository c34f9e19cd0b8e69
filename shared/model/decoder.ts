/**
 * The LLaMA decoder's forward pass from token embeddings: `nLayers` pre-norm blocks (RMSNorm → grouped-query attention
 * with RoPE → residual; RMSNorm → SwiGLU → residual), final RMSNorm. Adapters plug in per linear layer through
 * {@link LinearAdapter}; the products come from a {@link ModelOps} table (fast or naive formulation).
 *
 * Call it inside `tf.tidy` or `tf.grads`: it allocates freely and leaves clean-up to the caller's scope.
 */
import * as tf from '@tensorflow/tfjs';
import type { FrozenBase } from './frozen-base.js';
import { headDimOf } from './llama-config.js';
import type { ModelOps } from './ops.js';
import { rmsNorm } from './rms-norm.js';
import { applyRope } from './rope.js';
import { swiglu } from './swiglu.js';
import type { LoraTarget } from './types.js';

/**
 * An additive update to a frozen linear layer: given the layer's input `x` `[n, in]`, return `Δy` `[n, out]` to add
 * to `x·Wᵀ`, or `undefined` when this layer is not adapted.
 */
export type LinearAdapter = (layer: number, target: LoraTarget, x: tf.Tensor2D) => tf.Tensor2D | undefined;

/**
 * Trainable replacements and insertions beyond additive linear updates (bottleneck adapters, feature-based and
 * full fine-tuning). Every hook may return `undefined` to keep the frozen path.
 */
export interface DecoderHooks {
  /** A trainable weight `[out, in]` replacing the frozen linear of (layer, target). */
  readonly linearWeight?: (layer: number, target: LoraTarget) => tf.Tensor2D | undefined;
  /** A trainable RMSNorm gain `[dim]` replacing the frozen one: a block's `attn` / `ffn` norm, or the `final` norm (layer = -1). */
  readonly normWeight?: (layer: number, norm: 'attn' | 'ffn' | 'final') => tf.Tensor1D | undefined;
  /** Transform a sub-layer's output `[n, dim]` before the residual addition (Houlsby adapters). */
  readonly sublayerOutput?: (layer: number, site: 'attn' | 'mlp', y: tf.Tensor2D) => tf.Tensor2D;
}

/** Per-batch constants of a forward pass, built by the caller (usually once per batch). */
export interface DecoderInputs {
  readonly batchSize: number;
  readonly seqLen: number;
  /**
   * Token embeddings `[batchSize * seqLen, dim]` (rows of `token_embd.weight`, see {@link embedTokens}). Looked up
   * before the differentiated function: the embedding is frozen, and inside the tape the lookup would clone the
   * whole table for a backward pass that never comes.
   */
  readonly embeddings: tf.Tensor2D;
  /** Additive attention mask `[batchSize, seqLen, seqLen]` (see `additiveAttentionMask`). */
  readonly mask: tf.Tensor3D;
  /** RoPE tables `[1, seqLen, 1, headDim]` (see `ropeTables`). */
  readonly ropeCos: tf.Tensor4D;
  readonly ropeSinSigned: tf.Tensor4D;
}

/**
 * Hidden states after the final RMSNorm, `[batchSize * seqLen, dim]`, row `b * seqLen + t`.
 * @param adapter the trainable part, `undefined` for the plain base model.
 */
export function decoderForward(base: FrozenBase, inputs: DecoderInputs, ops: ModelOps, adapter?: LinearAdapter, hooks: DecoderHooks = {}): tf.Tensor2D {
  const { config } = base;
  const { batchSize, seqLen } = inputs;
  const headDim = headDimOf(config);
  const scale = 1 / Math.sqrt(headDim);
  const linear = (layer: number, target: LoraTarget, x: tf.Tensor2D): tf.Tensor2D => {
    const w = hooks.linearWeight?.(layer, target);
    const y = w ? ops.trainableLinear(x, w) : ops.frozenLinear(x, base.layers[layer].linears[target]);
    const delta = adapter?.(layer, target, x);
    return delta ? tf.add(y, delta) : y;
  };
  // A trainable gain goes through autodiff: rmsNorm's hand-written gradient treats its gain as frozen.
  const norm = (x: tf.Tensor2D, frozen: tf.Tensor1D, layer: number, which: 'attn' | 'ffn' | 'final'): tf.Tensor2D => {
    const w = hooks.normWeight?.(layer, which);
    if (!w) return rmsNorm(x, frozen, config.normEps);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), config.normEps))), w) as tf.Tensor2D;
  };
  const sublayer = (layer: number, site: 'attn' | 'mlp', y: tf.Tensor2D): tf.Tensor2D => hooks.sublayerOutput?.(layer, site, y) ?? y;
  // [n, heads·headDim] → [B, heads, T, headDim], optionally rotated on the way.
  const toHeads = (x: tf.Tensor2D, heads: number, rotate: boolean): tf.Tensor4D => {
    let x4 = tf.reshape(x, [batchSize, seqLen, heads, headDim]) as tf.Tensor4D;
    if (rotate) x4 = applyRope(x4, inputs.ropeCos, inputs.ropeSinSigned, (x2) => ops.frozenLinear(x2, base.pairSwap));
    return tf.transpose(x4, [0, 2, 1, 3]);
  };

  let h = inputs.embeddings;
  for (let i = 0; i < config.nLayers; i++) {
    const layer = base.layers[i];
    const xa = norm(h, layer.attnNorm, i, 'attn');
    const q = toHeads(linear(i, 'q', xa), config.nHeads, true);
    const k = toHeads(linear(i, 'k', xa), config.nKvHeads, true);
    const v = toHeads(linear(i, 'v', xa), config.nKvHeads, false);
    const attended = ops.attention(q, k, v, inputs.mask, scale);
    const merged = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [batchSize * seqLen, config.nHeads * headDim]) as tf.Tensor2D;
    h = tf.add(h, sublayer(i, 'attn', linear(i, 'o', merged)));

    const xf = norm(h, layer.ffnNorm, i, 'ffn');
    const gate = linear(i, 'gate', xf);
    const up = linear(i, 'up', xf);
    h = tf.add(h, sublayer(i, 'mlp', linear(i, 'down', swiglu(gate, up))));
  }
  return norm(h, base.outputNorm, -1, 'final');
}

/** Rows of the frozen embedding table for `inputIds` (any batch layout, flattened): `[inputIds.length, dim]`. */
export function embedTokens(base: FrozenBase, inputIds: Int32Array): tf.Tensor2D {
  return tf.tidy(() => tf.gather(base.embedding, tf.tensor1d(inputIds, 'int32')) as tf.Tensor2D);
}
