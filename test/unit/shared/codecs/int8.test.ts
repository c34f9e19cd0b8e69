/**
 * int8 specifics: the byte layout (scales, then values), zero blocks, extreme magnitudes and a short last block.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_INT8_BLOCK_SIZE, decodeTensor, encodeTensor } from '../../../../shared/codecs/index.js';
import { ErrorCode } from '../../../../shared/errors.js';
import { codeOf } from './arbitraries.js';

describe('int8', () => {
  it('lays out float32 scales (absmax/127, rounded up) then int8 values', () => {
    const blob = encodeTensor('q', [5], Float32Array.of(127, -63.5, 0, 1, 254), { codec: 'int8', blockSize: 3 });
    expect(blob.blockSize).toBe(3);
    expect(blob.data.byteLength).toBe(2 * 4 + 5);
    const scales = new Float32Array(blob.data.buffer, blob.data.byteOffset, 2);
    expect(Array.from(scales)).toEqual([1, 2]);
    const q = new Int8Array(blob.data.buffer, blob.data.byteOffset + 8, 5);
    expect(Array.from(q)).toEqual([127, -63, 0, 1, 127]);
    // Halves round up (toward +∞): -63.5 → -63, 1/2 → 1.
    expect(Array.from(decodeTensor(blob))).toEqual([127, -63, 0, 2, 254]);
  });

  it('defaults to 64-element blocks and decodes a zero block to exact zeros', () => {
    const values = new Float32Array(130);
    values[129] = 5;
    const blob = encodeTensor('z', [130], values, { codec: 'int8' });
    expect(blob.blockSize).toBe(DEFAULT_INT8_BLOCK_SIZE);
    expect(blob.data.byteLength).toBe(3 * 4 + 130);
    const back = decodeTensor(blob);
    expect(Math.abs(back[129] - 5)).toBeLessThanOrEqual(5 * 2 ** -22);
    expect(back.subarray(0, 129).every((x) => x === 0)).toBe(true);
  });

  it('stays finite at ±FLT_MAX and within bound for denormal-only blocks', () => {
    const big = Float32Array.of(3.4028234663852886e38, -3.4028234663852886e38, 1e38);
    const back = decodeTensor(encodeTensor('b', [3], big, { codec: 'int8', blockSize: 3 }));
    expect(back.every(Number.isFinite)).toBe(true);
    expect(Math.abs(back[0] - big[0])).toBeLessThanOrEqual(big[0] / 254);
    const tiny = Float32Array.of(1.4e-45, -4.2e-45, 2.8e-45);
    const t = decodeTensor(encodeTensor('t', [3], tiny, { codec: 'int8', blockSize: 3 }));
    for (let i = 0; i < 3; i++) expect(Math.abs(t[i] - tiny[i])).toBeLessThanOrEqual(4.2e-45 / 254 + 2 ** -149);
  });

  it('refuses a bad block size when encoding or decoding', () => {
    expect(codeOf(() => encodeTensor('q', [2], Float32Array.of(1, 2), { codec: 'int8', blockSize: 0 }))).toBe(ErrorCode.CODEC);
    const blob = encodeTensor('q', [2], Float32Array.of(1, 2), { codec: 'int8', blockSize: 2 });
    expect(codeOf(() => decodeTensor({ ...blob, blockSize: 1.5 }))).toBe(ErrorCode.CODEC);
    // Same bytes read with another block size: a length mismatch (2 scales expected), not garbage.
    expect(codeOf(() => decodeTensor({ ...blob, blockSize: 1 }))).toBe(ErrorCode.CODEC);
  });
});
