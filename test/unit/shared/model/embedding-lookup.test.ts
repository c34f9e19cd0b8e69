import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { embeddingGradPath, embeddingLookup, type EmbeddingGradPath } from '../../../../shared/model/embedding-lookup.js';
import { mulberry32 } from '../../../../shared/random.js';
import { selectBackend } from '../../../../worker/backend.js';

const VOCAB = 11;
const DIM = 5;
const IDS = Int32Array.from([3, 0, 3, 10, 7, 3, 0]);

function table(): Float32Array {
  const rng = mulberry32(4);
  return Float32Array.from({ length: VOCAB * DIM }, () => 2 * rng() - 1);
}

/** d/dTable of sum(lookup ⊙ W) for a fixed seeded W: row v of the result is the sum of W's rows where ids == v. */
function gradient(path: EmbeddingGradPath | undefined): { value: Float32Array; grad: Float32Array } {
  const rng = mulberry32(9);
  const weights = Float32Array.from({ length: IDS.length * DIM }, () => 2 * rng() - 1);
  return tf.tidy(() => {
    const t = tf.tensor2d(table(), [VOCAB, DIM]);
    const w = tf.tensor2d(weights, [IDS.length, DIM]);
    const f = (x: tf.Tensor): tf.Scalar => tf.sum(tf.mul(embeddingLookup(x as tf.Tensor2D, IDS, path), w));
    const { value, grad } = tf.valueAndGrad(f)(t);
    return { value: value.dataSync() as Float32Array, grad: grad.dataSync() as Float32Array };
  });
}

function expectedGrad(): Float32Array {
  const rng = mulberry32(9);
  const weights = Float32Array.from({ length: IDS.length * DIM }, () => 2 * rng() - 1);
  const out = new Float32Array(VOCAB * DIM);
  IDS.forEach((id, i) => {
    for (let j = 0; j < DIM; j++) out[id * DIM + j] += weights[i * DIM + j];
  });
  return out;
}

describe('embeddingLookup', () => {
  it('on wasm (no UnsortedSegmentSum kernel) differentiates into the table by the one-hot product and by host sums', async () => {
    await selectBackend('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(embeddingGradPath(IDS.length, VOCAB)).toBe('one-hot');
    // tf.gather's own gradient is what fails here: the reason this module exists.
    expect(() => tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(tf.gather(x, tf.tensor1d(IDS, 'int32'))))(tf.ones([VOCAB, DIM])))).toThrow(/UnsortedSegmentSum/);
    const expected = expectedGrad();
    const before = tf.memory().numTensors;
    for (const path of [undefined, 'one-hot', 'host'] as const) {
      const { grad } = gradient(path);
      for (let i = 0; i < expected.length; i++) expect(grad[i]).toBeCloseTo(expected[i], 5);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('on cpu uses the UnsortedSegmentSum kernel and agrees with the other paths', async () => {
    await selectBackend('cpu');
    expect(embeddingGradPath(IDS.length, VOCAB)).toBe('segment-sum');
    const expected = expectedGrad();
    const before = tf.memory().numTensors;
    for (const path of [undefined, 'one-hot', 'host'] as const) {
      const { grad } = gradient(path);
      for (let i = 0; i < expected.length; i++) expect(grad[i]).toBeCloseTo(expected[i], 5);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
