/**
 * The textbook formulation of the model's products: plain `tf.matMul` with transpose flags, batched attention and
 * TF.js autodiff. Correct on every backend and the reference the fast ops are tested against; on the wasm backend
 * it is several times slower (see `npm run bench:train -- --naive`).
 */
import * as tf from '@tensorflow/tfjs';
import type { FrozenMatrix } from './linear-ops.js';

/** `x·Wᵀ` with autodiff (the transposed product is what the wasm backend runs slowly). */
export function naiveFrozenLinear(x: tf.Tensor2D, m: FrozenMatrix): tf.Tensor2D {
  return tf.matMul(x, m.w, false, true);
}

/** `M·x` with autodiff. */
export function naiveFrozenLeftMatMul(m: FrozenMatrix, x: tf.Tensor2D): tf.Tensor2D {
  return tf.matMul(m.w, x);
}

/** `x·Wᵀ` for a trainable `W`, with autodiff. */
export function naiveTrainableLinear(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  return tf.matMul(x, w, false, true);
}

/** `s · (x·Aᵀ)·Bᵀ` with autodiff. */
export function naiveLoraDelta(x: tf.Tensor2D, a: tf.Tensor2D, b: tf.Tensor2D, scale: number): tf.Tensor2D {
  return tf.mul(tf.matMul(tf.matMul(x, a, false, true), b, false, true), scale);
}

function repeatKvHeads(x: tf.Tensor4D, group: number): tf.Tensor4D {
  if (group === 1) return x;
  const [b, h, t, d] = x.shape;
  // Rank 4, because TF.js has no gradient for a rank-5 tile.
  return tf.reshape(tf.tile(tf.reshape(x, [b, h, 1, t * d]), [1, 1, group, 1]), [b, h * group, t, d]);
}

/** Batched attention `softmax(scale · Q·Kᵀ + mask)·V` with autodiff; shapes as in `attention()`. */
export function naiveAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor3D, scale: number): tf.Tensor4D {
  const [batchSize, nHeads, seqLen] = q.shape;
  const group = nHeads / k.shape[1];
  const scores = tf.matMul(q, repeatKvHeads(k, group), false, true);
  const probs = tf.softmax(tf.add(tf.mul(scores, scale), tf.reshape(mask, [batchSize, 1, seqLen, seqLen])));
  return tf.matMul(probs, repeatKvHeads(v, group));
}
