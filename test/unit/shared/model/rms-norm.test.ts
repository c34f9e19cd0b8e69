import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { rmsNorm } from '../../../../shared/model/rms-norm.js';
import { mulberry32 } from '../../../../shared/random.js';
import { selectBackend } from '../../../../worker/backend.js';
import { relativeError } from './tiny-models.js';

function randomTensor2d(rows: number, cols: number, seed: number, scale = 1): tf.Tensor2D {
  const rng = mulberry32(seed);
  return tf.tensor2d(Float32Array.from({ length: rows * cols }, () => (2 * rng() - 1) * scale), [rows, cols]);
}

describe('rmsNorm (hand-written gradient)', () => {
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
});
