/**
 * Root-mean-square layer normalisation (LLaMA): `y = x · r ⊙ w` with `r = 1 / sqrt(mean(x²) + eps)` over the last
 * axis, as one `tf.customGrad` (the frozen gain `w` gets no gradient):
 *   dx = r · (g − x · r² · mean(g ⊙ x)),  g = dy ⊙ w
 * Autodiff of the composite would clone every intermediate it saves; this saves `x` and `r` only.
 */
import * as tf from '@tensorflow/tfjs';

type Save = (tensors: tf.Tensor[]) => void;

/**
 * RMSNorm of `x` `[n, dim]` with a frozen gain `w` `[dim]`, differentiable in `x`.
 * @param eps added to the mean square, 1e-5 for LLaMA-2 checkpoints.
 */
export function rmsNorm(x: tf.Tensor2D, w: tf.Tensor1D, eps: number): tf.Tensor2D {
  const op = tf.customGrad((xIn: tf.Tensor | Save, save: tf.Tensor | Save) => {
    const xx = xIn as tf.Tensor2D;
    const inverseRms = tf.rsqrt(tf.add(tf.mean(tf.square(xx), -1, true), eps));
    const value = tf.mul(tf.mul(xx, inverseRms), w);
    (save as Save)([xx, inverseRms]);
    const gradFunc = (dy: tf.Tensor, [xs, r]: tf.Tensor[]): tf.Tensor => {
      const g = tf.mul(dy, w);
      const projection = tf.mean(tf.mul(g, xs), -1, true);
      return tf.mul(r, tf.sub(g, tf.mul(xs, tf.mul(tf.square(r), projection))));
    };
    return { value, gradFunc };
  });
  return op(x) as tf.Tensor2D;
}
