/**
 * The SwiGLU gate of LLaMA's feed-forward block: `y = silu(gate) ⊙ up`, `silu(g) = g · σ(g)`, as one
 * `tf.customGrad` with the closed-form gradient
 *   d up = dy ⊙ silu(g),  d gate = dy ⊙ up ⊙ σ(g) · (1 + g − silu(g))
 * which saves three tensors where autodiff of the composite clones five.
 */
import * as tf from '@tensorflow/tfjs';

type Save = (tensors: tf.Tensor[]) => void;

/** `silu(gate) ⊙ up` for `gate`, `up` `[n, hidden]`. */
export function swiglu(gate: tf.Tensor2D, up: tf.Tensor2D): tf.Tensor2D {
  const op = tf.customGrad((gIn: tf.Tensor | Save, uIn: tf.Tensor | Save, save: tf.Tensor | Save) => {
    const g = gIn as tf.Tensor2D;
    const u = uIn as tf.Tensor2D;
    const sigma = tf.sigmoid(g);
    const silu = tf.mul(g, sigma);
    const value = tf.mul(silu, u);
    (save as Save)([g, u, sigma]);
    const gradFunc = (dy: tf.Tensor, [gs, us, ss]: tf.Tensor[]): tf.Tensor[] => {
      const siluS = tf.mul(gs, ss);
      const dGate = tf.mul(tf.mul(tf.mul(dy, us), ss), tf.add(tf.sub(gs, siluS), 1));
      return [dGate, tf.mul(dy, siluS)];
    };
    return { value, gradFunc };
  });
  return op(gate, up) as tf.Tensor2D;
}
