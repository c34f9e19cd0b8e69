/**
 * topk selection on larger tensors (the radix select crosses both histogram levels), ties, and k's formula.
 */
import { describe, expect, it } from 'vitest';
import { decodeTensor, encodeTensor, topkCount } from '../../../../shared/codecs/index.js';
import { decodeTopk, encodeTopkAt, selectTopkIndices } from '../../../../shared/codecs/topk.js';
import { mulberry32 } from '../../../../shared/random.js';

function keptIndices(values: Float32Array, density: number): number[] {
  const blob = encodeTensor('t', [values.length], values, { codec: 'topk', density });
  const k = blob.data.byteLength / 8;
  return Array.from(new Uint32Array(blob.data.buffer, blob.data.byteOffset, k));
}

function oracle(values: Float32Array, k: number): number[] {
  return Array.from(values.keys())
    .sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]) || a - b)
    .slice(0, k)
    .sort((a, b) => a - b);
}

describe('topk', () => {
  it('k = max(1, ceil(density·n)), 0 for an empty tensor, never more than n', () => {
    expect(topkCount(0, 0.5)).toBe(0);
    expect(topkCount(1000, 0.01)).toBe(10);
    expect(topkCount(1001, 0.01)).toBe(11);
    expect(topkCount(10, 0.001)).toBe(1);
    expect(topkCount(10, 1)).toBe(10);
  });

  it('selects exactly the k largest magnitudes of 100k values, in increasing index order', () => {
    const random = mulberry32(7);
    const values = Float32Array.from({ length: 100_000 }, () => (random() - 0.5) * 2 ** Math.floor(random() * 40 - 20));
    for (const density of [0.0001, 0.01, 0.3]) {
      const k = topkCount(values.length, density);
      expect(keptIndices(values, density)).toEqual(oracle(values, k));
    }
  });

  it('breaks ties at the threshold by lowest index, and handles all-equal and all-zero tensors', () => {
    const values = Float32Array.of(1, -3, 3, 2, -3, 3, 0);
    expect(keptIndices(values, 2 / 7)).toEqual([1, 2]);
    expect(keptIndices(values, 3 / 7)).toEqual([1, 2, 4]);
    expect(keptIndices(new Float32Array(50), 0.1)).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(decodeTensor(encodeTensor('z', [50], new Float32Array(50), { codec: 'topk', density: 0.1 })))).toEqual(
      new Array(50).fill(0),
    );
    // Values that differ only in the low 16 bits of their magnitude (same first-level histogram bin).
    const close = Float32Array.from({ length: 20 }, (_, i) => 1 + i * 2 ** -23);
    expect(keptIndices(close, 0.25)).toEqual([15, 16, 17, 18, 19]);
  });

  it('keeps -0 and denormals exactly when they are among the largest', () => {
    const values = Float32Array.of(0, -0, 1.4e-45, -2.8e-45);
    const back = decodeTensor(encodeTensor('d', [4], values, { codec: 'topk', density: 1 }));
    expect(Object.is(back[1], -0)).toBe(true);
    expect(Array.from(back)).toEqual(Array.from(values));
  });

  it('selectTopkIndices + encodeTopkAt choose and write exactly what encodeTensor does', () => {
    const random = mulberry32(7);
    for (const n of [1, 17, 5000]) {
      const values = Float32Array.from({ length: n }, () => (random() - 0.5) * 10 ** Math.floor(random() * 6 - 3));
      const k = topkCount(n, 0.03);
      const indices = selectTopkIndices(Float32Array.from(values, Math.abs), k);
      expect(Array.from(indices)).toEqual(keptIndices(values, 0.03));
      const bytes = encodeTopkAt('t', values, indices);
      expect(bytes).toEqual(encodeTensor('t', [n], values, { codec: 'topk', density: 0.03 }).data);
      expect(decodeTopk('t', [n], bytes)).toEqual(decodeTensor({ name: 't', dtype: 'float32', shape: [n], data: bytes, codec: 'topk' }));
    }
  });

  it('encodeTopkAt refuses unordered indices and non-finite kept values; selection refuses non-finite scores', () => {
    const values = Float32Array.from([1, Number.NaN, 3]);
    expect(() => encodeTopkAt('t', values, Uint32Array.from([2, 0]))).toThrow(/"t".*not increasing/);
    expect(() => encodeTopkAt('t', values, Uint32Array.from([1]))).toThrow(/"t"/);
    expect([...decodeTopk('t', [3], encodeTopkAt('t', values, Uint32Array.from([0, 2])))]).toEqual([1, 0, 3]);
    expect(() => selectTopkIndices(Float32Array.from([1, Number.POSITIVE_INFINITY]), 1)).toThrow(/not finite/);
  });
});
