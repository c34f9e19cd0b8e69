/**
 * The WebAssembly SIMD paths of fp16, bf16 and int8 against scalar references, bit for bit: random bit patterns
 * (denormals and extremes included), tensors that span several kernel chunks and end mid-step, inputs at odd
 * byte offsets, caller-provided outputs, and non-finite input found beyond the first chunk.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../../shared/errors.js';
import {
  decodeTensor,
  decodeTensorInto,
  encodedByteLength,
  encodeTensor,
  encodeTensorInto,
  floatToBf16Bits,
  floatToFp16Bits,
  fp16BitsToFloat,
} from '../../../../shared/codecs/index.js';
import { CHUNK_ELEMENTS, simdKernels } from '../../../../shared/codecs/simd-kernels.js';
import { codeOf, FC_OPTIONS } from './arbitraries.js';

/** Float32 values from random 32-bit patterns, non-finite ones (and, with `maxAbs`, larger ones) replaced. */
function randomFloats(n: number, seed: number, maxAbs = 3.4e38): Float32Array {
  const bits = new Uint32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    bits[i] = s ^ (s >>> 13);
  }
  const values = new Float32Array(bits.buffer);
  for (let i = 0; i < n; i++) if (!(Math.abs(values[i]) < maxAbs)) values[i] = (i % 7) * 0.125 - 0.375;
  return values;
}

/** The int8 codec's definition, element by element (the scalar path the kernels must match). */
function int8Reference(values: Float32Array, blockSize: number): Uint8Array {
  const n = values.length;
  const numBlocks = Math.ceil(n / blockSize);
  const out = new Uint8Array(numBlocks * 4 + n);
  const scales = new Float32Array(out.buffer, 0, numBlocks);
  const q = new Int8Array(out.buffer, numBlocks * 4, n);
  for (let b = 0; b < numBlocks; b++) {
    const start = b * blockSize;
    const end = Math.min(start + blockSize, n);
    let absmax = 0;
    for (let i = start; i < end; i++) absmax = Math.max(absmax, Math.abs(values[i]));
    if (absmax === 0) continue;
    let s = Math.fround(absmax / 127);
    if (s < absmax / 127) s = new Float32Array(Uint32Array.of(new Uint32Array(Float32Array.of(s).buffer)[0] + 1).buffer)[0];
    expect(Math.fround(127 * s)).toBeLessThan(Infinity); // the test data stays clear of FLT_MAX
    scales[b] = s;
    // round half up, as the codec states it: floor(x/s + 0.5) computed as trunc(x·(1/s) + 128.5) − 128
    for (let i = start; i < end; i++) q[i] = Math.trunc(values[i] * (1 / s) + 128.5) - 128;
  }
  return out;
}

const bitsOf = (data: Uint8Array) => Array.from(new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2));

describe('SIMD codec kernels', () => {
  it.skipIf(process.env.SWARMTUNE_NO_SIMD === '1')('are available on this Node (WebAssembly SIMD)', () => {
    expect(simdKernels()).toBeDefined();
  });

  it('fp16 and bf16 encode random bit patterns exactly as the scalar helpers, across chunk boundaries', () => {
    const n = 2 * CHUNK_ELEMENTS + 13;
    const fp16Values = randomFloats(n, 1, 65504);
    expect(bitsOf(encodeTensor('h', [n], fp16Values, { codec: 'fp16' }).data)).toEqual(Array.from(fp16Values, floatToFp16Bits));
    const bf16Values = randomFloats(n, 2, 3.38e38);
    expect(bitsOf(encodeTensor('b', [n], bf16Values, { codec: 'bf16' }).data)).toEqual(Array.from(bf16Values, floatToBf16Bits));
  });

  it('fp16 and bf16 decode every 16-bit pattern (Inf and NaN included) to the scalar bits', () => {
    const halves = new Uint16Array(65536).map((_, i) => i);
    const data = new Uint8Array(halves.buffer);
    const fp16 = new Uint32Array(decodeTensor({ name: 'h', dtype: 'float32', shape: [65536], data, codec: 'fp16' }).buffer);
    const bf16 = new Uint32Array(decodeTensor({ name: 'b', dtype: 'float32', shape: [65536], data, codec: 'bf16' }).buffer);
    const scalar = new Float32Array(1);
    const scalarBits = new Uint32Array(scalar.buffer);
    for (let h = 0; h < 65536; h++) {
      scalar[0] = fp16BitsToFloat(h);
      if (fp16[h] !== scalarBits[0] && !((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0)) expect([h, fp16[h]]).toEqual([h, scalarBits[0]]);
      if (bf16[h] !== ((h << 16) >>> 0)) expect([h, bf16[h]]).toEqual([h, (h << 16) >>> 0]);
    }
    // NaN halves keep their payload (the table in fp16.ts does the same).
    expect(fp16[0x7e01]).toBe(0x7fc02000);
  });

  it('int8 matches the element-wise definition for block sizes on and off the SIMD path', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1, 3, 16, 48, 64, 100, 128, 4096, CHUNK_ELEMENTS, CHUNK_ELEMENTS + 16),
        fc.integer({ min: 0, max: 2 * CHUNK_ELEMENTS + 100 }),
        fc.integer(),
        (blockSize, n, seed) => {
          const values = randomFloats(n, seed, 1e30);
          for (let i = 0; i < n; i += 97) values[i] = 0;
          if (n > 200) values.fill(0, 64, 192); // whole zero blocks
          const blob = encodeTensor('q', [n], values, { codec: 'int8', blockSize });
          expect(Buffer.from(blob.data).equals(Buffer.from(int8Reference(values, blockSize)))).toBe(true);
          const decoded = decodeTensor(blob);
          const q = new Int8Array(blob.data.buffer, blob.data.byteOffset + Math.ceil(n / blockSize) * 4, n);
          const scales = new Float32Array(blob.data.buffer, blob.data.byteOffset, Math.ceil(n / blockSize));
          for (let i = 0; i < n; i += 1 + (i % 31)) expect(decoded[i]).toBe(Math.fround(q[i] * scales[Math.floor(i / blockSize)]));
        },
      ),
      { ...FC_OPTIONS, numRuns: 25 },
    );
  });

  it('reads inputs at any byte offset and writes caller-provided outputs', () => {
    const n = CHUNK_ELEMENTS + 77;
    const values = randomFloats(n, 3, 60000);
    const shifted = new Uint8Array(n * 4 + 2);
    shifted.set(new Uint8Array(values.buffer), 2);
    for (const spec of [{ codec: 'fp16' }, { codec: 'bf16' }, { codec: 'int8', blockSize: 32 }] as const) {
      const expected = encodeTensor('t', [n], values, spec);
      const into = new Uint8Array(encodedByteLength(n, spec)! + 8).subarray(4, 4 + encodedByteLength(n, spec)!);
      const blob = encodeTensorInto('t', [n], values, spec, into);
      expect(blob.data.buffer).toBe(into.buffer);
      expect(Buffer.from(blob.data).equals(Buffer.from(expected.data))).toBe(true);
      // The same blob data at an odd offset inside a frame (fp16/bf16 decode from any offset).
      const frame = new Uint8Array(expected.data.byteLength + 1);
      frame.set(expected.data, 1);
      const out = new Float32Array(n);
      decodeTensorInto({ ...expected, data: frame.subarray(1) }, out);
      expect(Buffer.from(out.buffer).equals(Buffer.from(decodeTensor(expected).buffer))).toBe(true);
    }
    expect(codeOf(() => encodeTensorInto('t', [n], values, { codec: 'fp16' }, new Uint8Array(10)))).toBe(ErrorCode.CODEC);
    expect(codeOf(() => encodeTensorInto('t', [n], values, { codec: 'int8' }, new Uint8Array(encodedByteLength(n, { codec: 'int8' })! + 2).subarray(2)))).toBe(ErrorCode.CODEC);
  });

  it('refuses non-finite and out-of-range input found past the first chunk, naming the index', () => {
    const n = 3 * CHUNK_ELEMENTS;
    for (const codec of ['fp16', 'bf16', 'int8'] as const) {
      for (const bad of [NaN, Infinity, -Infinity]) {
        const values = randomFloats(n, 4, 1000);
        values[2 * CHUNK_ELEMENTS + 5] = bad;
        expect(() => encodeTensor('w', [n], values, { codec })).toThrow(`index ${2 * CHUNK_ELEMENTS + 5}`);
        expect(codeOf(() => encodeTensor('w', [n], values, { codec }))).toBe(ErrorCode.TENSOR_NON_FINITE);
      }
    }
    const values = randomFloats(n, 5, 1000);
    values[CHUNK_ELEMENTS + 9] = 70000;
    expect(codeOf(() => encodeTensor('w', [n], values, { codec: 'fp16' }))).toBe(ErrorCode.TENSOR_RANGE);
    expect(() => encodeTensor('w', [n], values, { codec: 'fp16' })).toThrow(`index ${CHUNK_ELEMENTS + 9}`);
  });
});
