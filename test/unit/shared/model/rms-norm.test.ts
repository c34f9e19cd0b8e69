import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { rmsNorm } from '../../../../shared/model/rms-norm.js';
import { swiglu } from '../../../../shared/model/swiglu.js';
import { mulberry32 } from '../../../../shared/random.js';
import { selectBackend } from '../../../../worker/backend.js';
import { relativeError } from './tiny-models.js';

function randomTensor2d(rows: number, cols: number, seed: number, scale = 1): tf.Tensor2D {
  const rng = mulberry32(seed);
  return tf.tensor2d(Float32Array.from({ length: rows * cols }, () => (2 * rng() - 1) * scale), [rows, cols]);
}

describe('hand-written elementwise gradients', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('rmsNorm matches the autodiff of x / sqrt(mean(x²) + eps) ⊙ w', () => {
    const x = randomTensor2d(6, 10, 1, 2);
    const w = tf.tensor1d(Array.from({ length: 10 }, (_, i) => 0.5 + i / 10));
    const dy = randomTensor2d(6, 10, 2);
    const composite = (t: tf.Tensor): tf.Tensor => tf.mul(tf.div(t, tf.sqrt(tf.add(tf.mean(tf.square(t), -1, true), 1e-5))), w);
    const [fastValue, fastGrad] = tf.tidy(() => [
      rmsNorm(x, w, 1e-5).dataSync(),
      tf.grad((t: tf.Tensor) => tf.sum(tf.mul(rmsNorm(t as tf.Tensor2D, w, 1e-5), dy)))(x).dataSync(),
    ]);
    const [refValue, refGrad] = tf.tidy(() => [composite(x).dataSync(), tf.grad((t: tf.Tensor) => tf.sum(tf.mul(composite(t), dy)))(x).dataSync()]);
    expect(relativeError(fastValue, refValue)).toBeLessThan(1e-6);
    expect(relativeError(fastGrad, refGrad)).toBeLessThan(1e-5);
    // each row has unit RMS before the gain
    const rows = tf.tidy(() => rmsNorm(x, tf.onesLike(w), 0).square().mean(-1).dataSync());
    for (const v of rows) expect(v).toBeCloseTo(1, 5);
    tf.dispose([x, w, dy]);
  });

  it('swiglu matches the autodiff of g·σ(g) ⊙ u for both inputs', () => {
    const g = randomTensor2d(5, 7, 3, 4);
    const u = randomTensor2d(5, 7, 4, 2);
    const dy = randomTensor2d(5, 7, 5);
    const composite = (a: tf.Tensor, b: tf.Tensor): tf.Tensor => tf.mul(tf.mul(a, tf.sigmoid(a)), b);
    const fast = tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(swiglu(a as tf.Tensor2D, b as tf.Tensor2D), dy)))([g, u]).map((t) => t.dataSync()));
    const ref = tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(composite(a, b), dy)))([g, u]).map((t) => t.dataSync()));
    expect(relativeError(tf.tidy(() => swiglu(g, u).dataSync()), tf.tidy(() => composite(g, u).dataSync()))).toBeLessThan(1e-6);
    expect(relativeError(fast[0], ref[0])).toBeLessThan(1e-5);
    expect(relativeError(fast[1], ref[1])).toBeLessThan(1e-5);
    tf.dispose([g, u, dy]);
  });
});
