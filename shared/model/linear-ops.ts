/**
 * Matrix products written for the wasm backend's fast path.
 *
 * TF.js on `wasm` hands only 2-D, non-batched, non-transposed `tf.matMul(a, b)` to XNNPACK; a `transposeB` product
 * runs about 10x slower and a batched one about 6x slower. So every product here, forward and backward, is a plain
 * 2-D `tf.matMul` on materialised layouts:
 * - a frozen weight is a constant held in both `[out, in]` and `[in, out]` layouts, computed once, and its
 *   backward pass computes only `dx` (no gradient work for the weight);
 * - a trainable weight is transposed per call (it is small: LoRA factors, a classification head).
 * Autodiff of a plain `tf.matMul` would produce transposed products in the backward pass; these `tf.customGrad`
 * functions produce plain ones instead.
 */
import * as tf from '@tensorflow/tfjs';

/** A frozen linear weight `W` `[out, in]` stored with its transpose, so `x·Wᵀ` and `dy·W` are both plain products. */
export interface FrozenMatrix {
  /** `[out, in]`, the PyTorch layout. */
  readonly w: tf.Tensor2D;
  /** `[in, out]`: the same values, transposed once at load. */
  readonly wt: tf.Tensor2D;
}

/** Build a {@link FrozenMatrix} from row-major `[rows, cols]` values; the caller owns (and disposes) the tensors. */
export function frozenMatrix(values: Float32Array, rows: number, cols: number): FrozenMatrix {
  const w = tf.tensor2d(values, [rows, cols], 'float32');
  const wt = tf.transpose(w);
  return { w, wt };
}

/** Dispose both layouts of a frozen matrix. */
export function disposeFrozenMatrix(m: FrozenMatrix): void {
  m.w.dispose();
  m.wt.dispose();
}

type Grad = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[];
type Save = (tensors: tf.Tensor[]) => void;

/**
 * `y = x·Wᵀ` for a frozen `W` `[out, in]`: `x` `[n, in]` → `[n, out]`. Backward: `dx = dy·W` only.
 */
export function frozenLinear(x: tf.Tensor2D, m: FrozenMatrix): tf.Tensor2D {
  const op = tf.customGrad((xIn: tf.Tensor | Save) => {
    const value = tf.matMul(xIn as tf.Tensor2D, m.wt);
    const gradFunc: Grad = (dy) => tf.matMul(dy as tf.Tensor2D, m.w);
    return { value, gradFunc };
  });
  return op(x) as tf.Tensor2D;
}

/**
 * `y = M·x` for a frozen `M` `[p, n]` (here: pooling over tokens): `x` `[n, d]` → `[p, d]`. Backward: `dx = Mᵀ·dy`.
 * The {@link FrozenMatrix} holds `M` in `w` and `Mᵀ` in `wt`.
 */
export function frozenLeftMatMul(m: FrozenMatrix, x: tf.Tensor2D): tf.Tensor2D {
  const op = tf.customGrad((xIn: tf.Tensor | Save) => {
    const value = tf.matMul(m.w, xIn as tf.Tensor2D);
    const gradFunc: Grad = (dy) => tf.matMul(m.wt, dy as tf.Tensor2D);
    return { value, gradFunc };
  });
  return op(x) as tf.Tensor2D;
}

/**
 * `y = x·Wᵀ` for a trainable `W` `[out, in]` (a classification head): `x` `[n, in]` → `[n, out]`.
 * Backward: `dx = dy·W`, `dW = (dyᵀ)·x`, with `dyᵀ` materialised.
 */
export function trainableLinear(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const op = tf.customGrad((xIn: tf.Tensor | Save, wIn: tf.Tensor | Save, save: tf.Tensor | Save) => {
    const xx = xIn as tf.Tensor2D;
    const ww = wIn as tf.Tensor2D;
    const value = tf.matMul(xx, tf.transpose(ww));
    (save as Save)([xx, ww]);
    const gradFunc: Grad = (dy, [xs, ws]) => [
      tf.matMul(dy as tf.Tensor2D, ws as tf.Tensor2D),
      tf.matMul(tf.transpose(dy as tf.Tensor2D), xs as tf.Tensor2D),
    ];
    return { value, gradFunc };
  });
  return op(x, w) as tf.Tensor2D;
}

/**
 * The LoRA update `y = s · (x·Aᵀ)·Bᵀ` with `A` `[r, in]`, `B` `[out, r]` (PEFT layout): `x` `[n, in]` → `[n, out]`.
 * `x` is the (dropped-out) input of the adapted linear; the frozen product is computed separately.
 * Backward, with `a = x·Aᵀ` `[n, r]` and `da = s · dy·B`:
 *   `dB = (s · aᵀ·dy)ᵀ`, `dA = daᵀ·x`, `dx = da·A` — only `[n, r]`-sized and `[r, ·]`-sized transposes.
 * @param scale `s`: `lora_alpha / r`, or `lora_alpha / sqrt(r)` with rsLoRA.
 */
export function loraDelta(x: tf.Tensor2D, a: tf.Tensor2D, b: tf.Tensor2D, scale: number): tf.Tensor2D {
  const op = tf.customGrad((xIn: tf.Tensor | Save, aIn: tf.Tensor | Save, bIn: tf.Tensor | Save, save: tf.Tensor | Save) => {
    const xx = xIn as tf.Tensor2D;
    const aa = aIn as tf.Tensor2D;
    const bb = bIn as tf.Tensor2D;
    const down = tf.matMul(xx, tf.transpose(aa));
    const value = tf.mul(tf.matMul(down, tf.transpose(bb)), scale);
    (save as Save)([xx, aa, bb, down]);
    const gradFunc: Grad = (dy, [xs, as, bs, downs]) => {
      const dy2 = dy as tf.Tensor2D;
      const dDown = tf.mul(tf.matMul(dy2, bs as tf.Tensor2D), scale) as tf.Tensor2D;
      const dx = tf.matMul(dDown, as as tf.Tensor2D);
      const dA = tf.matMul(tf.transpose(dDown), xs as tf.Tensor2D);
      const dBt = tf.mul(tf.matMul(tf.transpose(downs as tf.Tensor2D), dy2), scale) as tf.Tensor2D;
      return [dx, dA, tf.transpose(dBt)];
    };
    return { value, gradFunc };
  });
  return op(x, a, b) as tf.Tensor2D;
}
