/**
 * Rotary position embeddings in the llama2.c / GGUF "adjacent pair" layout: within each head, the pairs
 * (0,1), (2,3), ... are rotated by the angle `t · theta^(-2i/headDim)` for pair i at position t:
 *   out[2i]   = x[2i]·cos − x[2i+1]·sin
 *   out[2i+1] = x[2i]·sin + x[2i+1]·cos
 * written as `x ⊙ C + swapPairs(x) ⊙ S` with `C = (cos, cos)` and `S = (−sin, +sin)` per pair, so the forward pass
 * and its gradient are elementwise ops and one product with a pair-swapping permutation.
 */
import * as tf from '@tensorflow/tfjs';

/** Cosine and signed-sine tables, row-major `[seqLen, headDim]`. */
export interface RopeTables {
  readonly cos: Float32Array;
  /** `−sin` at even indices, `+sin` at odd ones. */
  readonly sinSigned: Float32Array;
}

/**
 * Tables for positions `0 .. seqLen-1`, computed in float64 and rounded once.
 * @param theta the RoPE base, 10000 for LLaMA-2.
 */
export function ropeTables(seqLen: number, headDim: number, theta: number): RopeTables {
  const cos = new Float32Array(seqLen * headDim);
  const sinSigned = new Float32Array(seqLen * headDim);
  for (let t = 0; t < seqLen; t++) {
    for (let i = 0; i < headDim / 2; i++) {
      const angle = t * theta ** ((-2 * i) / headDim);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      const at = t * headDim + 2 * i;
      cos[at] = c;
      cos[at + 1] = c;
      sinSigned[at] = -s;
      sinSigned[at + 1] = s;
    }
  }
  return { cos, sinSigned };
}

/**
 * The permutation matrix `[headDim, headDim]` (row-major) that exchanges the members of every adjacent pair:
 * `x · P = swapPairs(x)`. Symmetric, so it is its own transpose. A plain 2-D product with it runs about 3x faster on
 * the wasm backend than `tf.reverse` on `[-1, 2]` pairs (6 ms vs 18 ms for `[16, 128, 4, 64]`, measured here).
 */
export function pairSwapMatrix(headDim: number): Float32Array {
  const p = new Float32Array(headDim * headDim);
  for (let i = 0; i < headDim; i++) p[i * headDim + (i ^ 1)] = 1;
  return p;
}

/**
 * Rotate `x` `[batchSize, seqLen, nHeads, headDim]` by position.
 * @param cos `[1, seqLen, 1, headDim]` from {@link ropeTables}.
 * @param sinSigned `[1, seqLen, 1, headDim]` from {@link ropeTables}.
 * @param swapPairs `[n, headDim]` → the same with every adjacent pair exchanged (e.g. a product with
 *   {@link pairSwapMatrix}); it must be differentiable.
 */
export function applyRope(
  x: tf.Tensor4D,
  cos: tf.Tensor4D,
  sinSigned: tf.Tensor4D,
  swapPairs: (x: tf.Tensor2D) => tf.Tensor2D,
): tf.Tensor4D {
  const headDim = x.shape[3];
  const swapped = tf.reshape(swapPairs(tf.reshape(x, [-1, headDim])), x.shape);
  return tf.add(tf.mul(x, cos), tf.mul(swapped, sinSigned));
}
