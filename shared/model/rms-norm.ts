/**
 * Root-mean-square layer normalisation (LLaMA): `y = x / sqrt(mean(x²) + eps) ⊙ w` over the last axis.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * RMSNorm of `x` `[n, dim]` with a frozen gain `w` `[dim]`; differentiable in `x` by autodiff.
 * @param eps added to the mean square, 1e-5 for LLaMA-2 checkpoints.
 */
export function rmsNorm(x: tf.Tensor2D, w: tf.Tensor1D, eps: number): tf.Tensor2D {
  const inverseRms = tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps));
  return tf.mul(tf.mul(x, inverseRms), w);
}
