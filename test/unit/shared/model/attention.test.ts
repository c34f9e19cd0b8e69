import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { additiveAttentionMask, attention, MASKED_LOGIT } from '../../../../shared/model/attention.js';
import { naiveAttention } from '../../../../shared/model/naive-ops.js';
import { mulberry32 } from '../../../../shared/random.js';
import { selectBackend } from '../../../../worker/backend.js';
import { relativeError } from './tiny-models.js';

function randomTensor(shape: number[], seed: number): tf.Tensor {
  const rng = mulberry32(seed);
  return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 2 * rng() - 1), shape);
}

type AttentionFn = typeof attention;

function run(fn: AttentionFn, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask: tf.Tensor, dy: tf.Tensor) {
  return tf.tidy(() => {
    const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => fn(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, mask as tf.Tensor3D, 0.35);
    const value = f(q, k, v).dataSync() as Float32Array;
    const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(f(a, b, c), dy)))([q, k, v]);
    return { value, grads: grads.map((g) => g.dataSync() as Float32Array) };
  });
}

describe('additiveAttentionMask', () => {
  it('is causal and hides padded keys', () => {
    const m = additiveAttentionMask(Int32Array.from([1, 1, 0, 1, 1, 1]), 2, 3);
    // sequence 0: query 2 (padding) may see keys 0 and 1 only; key 2 is padding
    expect(Array.from(m.slice(0, 9))).toEqual([0, MASKED_LOGIT, MASKED_LOGIT, 0, 0, MASKED_LOGIT, 0, 0, MASKED_LOGIT]);
    expect(Array.from(m.slice(9, 18))).toEqual([0, MASKED_LOGIT, MASKED_LOGIT, 0, 0, MASKED_LOGIT, 0, 0, 0]);
  });
});

describe('attention (per-head 2-D products, hand-written gradient)', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  for (const [nHeads, nKvHeads] of [
    [4, 4],
    [4, 2],
    [6, 1],
  ]) {
    it(`matches batched autodiff attention with ${nHeads} query heads and ${nKvHeads} kv heads`, () => {
      const [b, t, d] = [3, 5, 4];
      const q = randomTensor([b, nHeads, t, d], 1);
      const k = randomTensor([b, nKvHeads, t, d], 2);
      const v = randomTensor([b, nKvHeads, t, d], 3);
      const dy = randomTensor([b, nHeads, t, d], 4);
      const mask = tf.tensor3d(additiveAttentionMask(Int32Array.from([1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0]), b, t), [b, t, t]);
      const fast = run(attention, q, k, v, mask, dy);
      const naive = run(naiveAttention, q, k, v, mask, dy);
      expect(relativeError(fast.value, naive.value)).toBeLessThan(1e-5);
      for (let i = 0; i < 3; i++) expect(relativeError(fast.grads[i], naive.grads[i])).toBeLessThan(1e-4);
      // the gradients are not trivially zero
      for (const g of fast.grads) expect(Math.max(...g.map(Math.abs))).toBeGreaterThan(1e-3);
      tf.dispose([q, k, v, dy, mask]);
    });
  }

  it('gives query t no dependence on later keys', () => {
    const [b, h, t, d] = [1, 2, 4, 3];
    const before = tf.memory().numTensors;
    const q = randomTensor([b, h, t, d], 5);
    const k = randomTensor([b, h, t, d], 6);
    const v = randomTensor([b, h, t, d], 7);
    const mask = tf.tensor3d(additiveAttentionMask(new Int32Array(t).fill(1), b, t), [b, t, t]);
    const first = tf.tidy(() => attention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, mask, 0.5).arraySync());
    // change the last position's key and value: outputs at positions < t-1 must not move
    const k2 = tf.tidy(() => tf.concat([tf.slice(k, [0, 0, 0, 0], [b, h, t - 1, d]), tf.onesLike(tf.slice(k, [0, 0, t - 1, 0], [b, h, 1, d]))], 2));
    const second = tf.tidy(() => attention(q as tf.Tensor4D, k2 as tf.Tensor4D, v as tf.Tensor4D, mask, 0.5).arraySync());
    for (let hh = 0; hh < h; hh++) for (let i = 0; i < t - 1; i++) expect(second[0][hh][i]).toEqual(first[0][hh][i]);
    expect(second[0][0][t - 1]).not.toEqual(first[0][0][t - 1]);
    tf.dispose([q, k, v, k2, mask]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
