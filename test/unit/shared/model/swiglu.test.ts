import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { swiglu } from '../../../../shared/model/swiglu.js';
import { mulberry32 } from '../../../../shared/random.js';
import { selectBackend } from '../../../../worker/backend.js';
import { relativeError } from './tiny-models.js';

function randomTensor2d(rows: number, cols: number, seed: number, scale = 1): tf.Tensor2D {
  const rng = mulberry32(seed);
  return tf.tensor2d(Float32Array.from({ length: rows * cols }, () => (2 * rng() - 1) * scale), [rows, cols]);
}

describe('swiglu (hand-written gradient)', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
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
