import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { frozenLeftMatMul, frozenLinear, frozenMatrix, loraDelta, trainableLinear, disposeFrozenMatrix } from '../../../../shared/model/linear-ops.js';
import { naiveFrozenLeftMatMul, naiveFrozenLinear, naiveLoraDelta, naiveTrainableLinear } from '../../../../shared/model/naive-ops.js';
import { mulberry32 } from '../../../../shared/random.js';
import { selectBackend } from '../../../../worker/backend.js';
import { relativeError } from './tiny-models.js';

function randomArray(n: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length: n }, () => 2 * rng() - 1);
}

/** Value and gradients of sum(f(xs) ⊙ dy) with respect to xs. */
function valueAndGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[], dySeed: number): { value: Float32Array; grads: Float32Array[] } {
  return tf.tidy(() => {
    const out = f(...xs);
    const dy = tf.tensor(randomArray(out.size, dySeed), out.shape);
    const grads = tf.grads((...args: tf.Tensor[]) => tf.sum(tf.mul(f(...args), dy)))(xs);
    return { value: out.dataSync() as Float32Array, grads: grads.map((g) => g.dataSync() as Float32Array) };
  });
}

describe('fast 2-D products with hand-written gradients', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('frozenLinear matches x·Wᵀ with autodiff, and computes only dx', () => {
    const m = frozenMatrix(randomArray(7 * 5, 1), 7, 5);
    const x = tf.tensor2d(randomArray(9 * 5, 2), [9, 5]);
    const fast = valueAndGrads((a) => frozenLinear(a as tf.Tensor2D, m), [x], 3);
    const naive = valueAndGrads((a) => naiveFrozenLinear(a as tf.Tensor2D, m), [x], 3);
    expect(relativeError(fast.value, naive.value)).toBeLessThan(1e-6);
    expect(relativeError(fast.grads[0], naive.grads[0])).toBeLessThan(1e-5);
    expect(fast.value.length).toBe(9 * 7);
    x.dispose();
    disposeFrozenMatrix(m);
  });

  it('frozenLeftMatMul matches M·x with autodiff', () => {
    const m = frozenMatrix(randomArray(3 * 8, 4), 3, 8);
    const x = tf.tensor2d(randomArray(8 * 6, 5), [8, 6]);
    const fast = valueAndGrads((a) => frozenLeftMatMul(m, a as tf.Tensor2D), [x], 6);
    const naive = valueAndGrads((a) => naiveFrozenLeftMatMul(m, a as tf.Tensor2D), [x], 6);
    expect(relativeError(fast.value, naive.value)).toBeLessThan(1e-6);
    expect(relativeError(fast.grads[0], naive.grads[0])).toBeLessThan(1e-5);
    x.dispose();
    disposeFrozenMatrix(m);
  });

  it('trainableLinear matches x·Wᵀ with autodiff for both x and W', () => {
    const x = tf.tensor2d(randomArray(10 * 6, 7), [10, 6]);
    const w = tf.tensor2d(randomArray(4 * 6, 8), [4, 6]);
    const fast = valueAndGrads((a, b) => trainableLinear(a as tf.Tensor2D, b as tf.Tensor2D), [x, w], 9);
    const naive = valueAndGrads((a, b) => naiveTrainableLinear(a as tf.Tensor2D, b as tf.Tensor2D), [x, w], 9);
    expect(relativeError(fast.value, naive.value)).toBeLessThan(1e-6);
    for (let i = 0; i < 2; i++) expect(relativeError(fast.grads[i], naive.grads[i])).toBeLessThan(1e-5);
    tf.dispose([x, w]);
  });

  it('loraDelta matches a float64 reference of s·(x·Aᵀ)·Bᵀ and its gradients', () => {
    const [n, inF, outF, r, s] = [6, 5, 7, 3, 1.7];
    const xv = randomArray(n * inF, 10);
    const av = randomArray(r * inF, 11);
    const bv = randomArray(outF * r, 12);
    const dy = randomArray(n * outF, 13);
    const x = tf.tensor2d(xv, [n, inF]);
    const a = tf.tensor2d(av, [r, inF]);
    const b = tf.tensor2d(bv, [outF, r]);
    const fast = valueAndGrads((p, q, u) => loraDelta(p as tf.Tensor2D, q as tf.Tensor2D, u as tf.Tensor2D, s), [x, a, b], 13);
    // float64: down = x·Aᵀ, y = s·down·Bᵀ; dDown = s·dy·B; dx = dDown·A; dA = dDownᵀ·x; dB = s·dyᵀ·down
    const down = new Float64Array(n * r);
    for (let i = 0; i < n; i++) for (let k = 0; k < r; k++) for (let j = 0; j < inF; j++) down[i * r + k] += xv[i * inF + j] * av[k * inF + j];
    const y = new Float64Array(n * outF);
    for (let i = 0; i < n; i++) for (let o = 0; o < outF; o++) for (let k = 0; k < r; k++) y[i * outF + o] += s * down[i * r + k] * bv[o * r + k];
    const dDown = new Float64Array(n * r);
    for (let i = 0; i < n; i++) for (let k = 0; k < r; k++) for (let o = 0; o < outF; o++) dDown[i * r + k] += s * dy[i * outF + o] * bv[o * r + k];
    const dx = new Float64Array(n * inF);
    for (let i = 0; i < n; i++) for (let j = 0; j < inF; j++) for (let k = 0; k < r; k++) dx[i * inF + j] += dDown[i * r + k] * av[k * inF + j];
    const dA = new Float64Array(r * inF);
    for (let k = 0; k < r; k++) for (let j = 0; j < inF; j++) for (let i = 0; i < n; i++) dA[k * inF + j] += dDown[i * r + k] * xv[i * inF + j];
    const dB = new Float64Array(outF * r);
    for (let o = 0; o < outF; o++) for (let k = 0; k < r; k++) for (let i = 0; i < n; i++) dB[o * r + k] += s * dy[i * outF + o] * down[i * r + k];
    expect(relativeError(fast.value, y)).toBeLessThan(1e-5);
    expect(relativeError(fast.grads[0], dx)).toBeLessThan(1e-5);
    expect(relativeError(fast.grads[1], dA)).toBeLessThan(1e-5);
    expect(relativeError(fast.grads[2], dB)).toBeLessThan(1e-5);
    const naive = valueAndGrads((p, q, u) => naiveLoraDelta(p as tf.Tensor2D, q as tf.Tensor2D, u as tf.Tensor2D, s), [x, a, b], 13);
    for (let i = 0; i < 3; i++) expect(relativeError(fast.grads[i], naive.grads[i])).toBeLessThan(1e-5);
    tf.dispose([x, a, b]);
  });

  it('leaves no tensors behind', () => {
    const m = frozenMatrix(randomArray(4 * 4, 20), 4, 4);
    const x = tf.tensor2d(randomArray(3 * 4, 21), [3, 4]);
    const a = tf.tensor2d(randomArray(2 * 4, 22), [2, 4]);
    const b = tf.tensor2d(randomArray(4 * 2, 23), [4, 2]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const g = tf.grads((p: tf.Tensor, q: tf.Tensor, u: tf.Tensor) =>
        tf.sum(tf.add(frozenLinear(p as tf.Tensor2D, m), loraDelta(p as tf.Tensor2D, q as tf.Tensor2D, u as tf.Tensor2D, 2))),
      )([x, a, b]);
      tf.dispose(g);
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, a, b]);
    disposeFrozenMatrix(m);
  });
});
