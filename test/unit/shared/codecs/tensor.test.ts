/**
 * encodeTensor / decodeTensor for every codec: round trips within each codec's stated bound (property tests),
 * refusal of non-finite input, byte-length checks on decode, and coded blobs through a real frame.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeMessage, validateTensors, blobToFloat32 } from '../../../../shared/codec.js';
import { decodeTensor, decodeTensorInto, encodeTensor, int8ByteLength, topkCount, type CodecSpec } from '../../../../shared/codecs/index.js';
import { ErrorCode } from '../../../../shared/errors.js';
import { makeMessage } from '../../../../shared/protocol/build.js';
import type { TensorBlob } from '../../../../shared/protocol/messages.js';
import { parseMessage } from '../../../../shared/protocol/parse.js';
import { FC_OPTIONS, codeOf, messageOf, tensorArb } from './arbitraries.js';

const TWO_M11 = 2 ** -11;
const TWO_M8 = 2 ** -8;

function bits(values: Float32Array): number[] {
  return Array.from(new Uint32Array(values.slice().buffer));
}

describe('round trips within the stated bounds', () => {
  it('fp32 is exact to the bit (-0 and denormals included)', () => {
    fc.assert(
      fc.property(tensorArb(), ({ shape, values }) => {
        const back = decodeTensor(encodeTensor('t', shape, values, { codec: 'fp32' }));
        expect(bits(back)).toEqual(bits(values));
      }),
      FC_OPTIONS,
    );
  });

  it('fp16: relative 2^-11 in the normal range, absolute 2^-25 below it', () => {
    fc.assert(
      fc.property(tensorArb(65504), ({ shape, values }) => {
        const blob = encodeTensor('t', shape, values, { codec: 'fp16' });
        expect(blob.data.byteLength).toBe(values.length * 2);
        const back = decodeTensor(blob);
        for (let i = 0; i < values.length; i++) {
          const x = values[i];
          const err = Math.abs(x - back[i]);
          if (Math.abs(x) >= 2 ** -14) expect(err).toBeLessThanOrEqual(TWO_M11 * Math.abs(x));
          else expect(err).toBeLessThanOrEqual(2 ** -25);
        }
      }),
      FC_OPTIONS,
    );
  });

  it('bf16: relative 2^-8 for normal floats, absolute 2^-134 for denormals', () => {
    fc.assert(
      fc.property(tensorArb(3.38e38), ({ shape, values }) => {
        const back = decodeTensor(encodeTensor('t', shape, values, { codec: 'bf16' }));
        for (let i = 0; i < values.length; i++) {
          const x = values[i];
          const err = Math.abs(x - back[i]);
          if (Math.abs(x) >= 2 ** -126) expect(err).toBeLessThanOrEqual(TWO_M8 * Math.abs(x));
          else expect(err).toBeLessThanOrEqual(2 ** -134);
        }
      }),
      FC_OPTIONS,
    );
  });

  it('int8: |x − x̂| <= absmax_block/254 (+ float32 rounding) per element, for any block size', () => {
    fc.assert(
      fc.property(tensorArb(), fc.integer({ min: 1, max: 100 }), ({ shape, values }, blockSize) => {
        const blob = encodeTensor('t', shape, values, { codec: 'int8', blockSize });
        expect(blob.blockSize).toBe(blockSize);
        expect(blob.data.byteLength).toBe(int8ByteLength(values.length, blockSize));
        const back = decodeTensor(blob);
        for (let start = 0; start < values.length; start += blockSize) {
          const end = Math.min(start + blockSize, values.length);
          let absmax = 0;
          for (let i = start; i < end; i++) absmax = Math.max(absmax, Math.abs(values[i]));
          const bound = absmax / 254 + absmax * 2 ** -22 + 2 ** -148;
          for (let i = start; i < end; i++) {
            expect(Number.isFinite(back[i])).toBe(true);
            expect(Math.abs(values[i] - back[i])).toBeLessThanOrEqual(bound);
          }
        }
      }),
      FC_OPTIONS,
    );
  });

  it('topk: the k largest magnitudes exactly, zeros elsewhere', () => {
    fc.assert(
      fc.property(tensorArb(), fc.double({ min: 0.001, max: 1, noNaN: true }), ({ shape, values }, density) => {
        const n = values.length;
        const blob = encodeTensor('t', shape, values, { codec: 'topk', density });
        const k = topkCount(n, density);
        expect(k).toBe(n === 0 ? 0 : Math.max(1, Math.ceil(density * n)));
        expect(blob.data.byteLength).toBe(8 * k);
        const back = decodeTensor(blob);
        // Oracle: a full sort by magnitude, ties to the lower index.
        const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]) || a - b);
        const kept = new Set(order.slice(0, k));
        for (let i = 0; i < n; i++) {
          if (kept.has(i)) expect(Object.is(back[i], values[i])).toBe(true);
          else expect(back[i]).toBe(0);
        }
      }),
      FC_OPTIONS,
    );
  });
});

const LOSSY: CodecSpec[] = [{ codec: 'fp16' }, { codec: 'bf16' }, { codec: 'int8' }, { codec: 'topk', density: 0.5 }];
const ALL: CodecSpec[] = [{ codec: 'fp32' }, ...LOSSY];

describe('non-finite input', () => {
  for (const spec of ALL) {
    it(`${spec.codec}: ±Inf and NaN anywhere are refused with E_TENSOR_NON_FINITE naming tensor and index`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 300 }),
          fc.nat(),
          fc.constantFrom(Infinity, -Infinity, NaN),
          (n, at, bad) => {
            const values = Float32Array.from({ length: n }, (_, i) => (i % 7) - 3);
            const index = at % n;
            values[index] = bad;
            expect(codeOf(() => encodeTensor('blk.1.attn_v.lora_B', [n], values, spec))).toBe(ErrorCode.TENSOR_NON_FINITE);
            expect(messageOf(() => encodeTensor('blk.1.attn_v.lora_B', [n], values, spec))).toContain(`"blk.1.attn_v.lora_B"`);
            expect(messageOf(() => encodeTensor('blk.1.attn_v.lora_B', [n], values, spec))).toContain(`index ${index}`);
          },
        ),
        { ...FC_OPTIONS, numRuns: 40 },
      );
    });
  }

  it('finite values beyond fp16 or bf16 range are refused with E_TENSOR_RANGE, not turned into Inf', () => {
    expect(codeOf(() => encodeTensor('h', [3], Float32Array.of(1, 65520, 2), { codec: 'fp16' }))).toBe(ErrorCode.TENSOR_RANGE);
    expect(messageOf(() => encodeTensor('h', [3], Float32Array.of(1, -70000, 2), { codec: 'fp16' }))).toMatch(/"h".*index 1/);
    expect(decodeTensor(encodeTensor('h', [1], Float32Array.of(65519), { codec: 'fp16' }))[0]).toBe(65504);
    expect(codeOf(() => encodeTensor('b', [1], Float32Array.of(3.4e38), { codec: 'bf16' }))).toBe(ErrorCode.TENSOR_RANGE);
    expect(codeOf(() => encodeTensor('b', [1], Float32Array.of(3.38e38), { codec: 'bf16' }))).toBe('none');
  });
});

describe('decode checks', () => {
  it('a byte length that does not match shape and codec is a CodecError naming the tensor', () => {
    fc.assert(
      fc.property(tensorArb(1000), fc.constantFrom(...ALL), fc.integer({ min: 1, max: 9 }), ({ shape, values }, spec, extra) => {
        const blob = encodeTensor('score.weight', shape, values, spec);
        const longer = new Uint8Array(blob.data.byteLength + extra);
        longer.set(blob.data);
        // topk accepts any 8·k <= 8·n bytes, so only lengths that are not multiples of 8, or too many entries, are bad.
        const bad = spec.codec === 'topk' && (blob.data.byteLength + extra) % 8 === 0 && (blob.data.byteLength + extra) / 8 <= values.length;
        if (bad) return;
        const wrong: TensorBlob = { ...blob, data: longer };
        expect(codeOf(() => decodeTensor(wrong))).toBe(ErrorCode.CODEC);
        expect(messageOf(() => decodeTensor(wrong))).toContain('"score.weight"');
      }),
      FC_OPTIONS,
    );
  });

  it('topk indices must be strictly increasing and in range', () => {
    const blob = encodeTensor('s', [10], Float32Array.from({ length: 10 }, (_, i) => i), { codec: 'topk', density: 0.2 });
    const idx = new Uint32Array(blob.data.buffer, blob.data.byteOffset, 2);
    expect(Array.from(idx)).toEqual([8, 9]);
    idx[1] = 8;
    expect(messageOf(() => decodeTensor(blob))).toMatch(/"s".*index 8 at entry 1/);
    idx[1] = 10;
    expect(codeOf(() => decodeTensor(blob))).toBe(ErrorCode.CODEC);
  });

  it('a sparse blob may not claim a huge shape', () => {
    const blob: TensorBlob = { name: 'big', dtype: 'float32', shape: [1 << 20, 1 << 20], data: new Uint8Array(8), codec: 'topk' };
    expect(codeOf(() => decodeTensor(blob))).toBe(ErrorCode.CODEC);
  });

  it('refuses int32 blobs, blockSize on other codecs and unknown codecs', () => {
    const f = encodeTensor('x', [2], Float32Array.of(1, 2), { codec: 'fp16' });
    expect(codeOf(() => decodeTensor({ ...f, dtype: 'int32' }))).toBe(ErrorCode.TENSOR_DTYPE);
    expect(codeOf(() => decodeTensor({ ...f, blockSize: 4 }))).toBe(ErrorCode.CODEC);
    expect(codeOf(() => decodeTensor({ ...f, codec: 'zstd' } as unknown as TensorBlob))).toBe(ErrorCode.CODEC);
    expect(codeOf(() => encodeTensor('x', [3], Float32Array.of(1, 2), { codec: 'fp16' }))).toBe(ErrorCode.TENSOR_SHAPE);
  });

  it('decodes from odd byte offsets (one aligned copy) and into a caller array', () => {
    for (const spec of ALL) {
      const values = Float32Array.from({ length: 37 }, (_, i) => Math.sin(i) * 3);
      const blob = encodeTensor('t', [37], values, spec);
      const shifted = new Uint8Array(blob.data.byteLength + 1);
      shifted.set(blob.data, 1);
      const expected = decodeTensor(blob);
      expect(Array.from(decodeTensor({ ...blob, data: shifted.subarray(1) }))).toEqual(Array.from(expected));
      const into = new Float32Array(37).fill(99);
      expect(decodeTensorInto(blob, into)).toBe(into);
      expect(Array.from(into)).toEqual(Array.from(expected));
      expect(codeOf(() => decodeTensorInto(blob, new Float32Array(36)))).toBe(ErrorCode.TENSOR_SHAPE);
    }
  });

  it('fp32 decodes zero-copy when aligned', () => {
    const values = Float32Array.of(1, 2, 3);
    const blob = encodeTensor('t', [3], values, { codec: 'fp32' });
    expect(blob.codec).toBeUndefined();
    expect(decodeTensor(blob).buffer).toBe(values.buffer);
  });
});

describe('coded blobs on the wire', () => {
  const manifest = [
    { name: 'a.lora_A.weight', shape: [4, 8] },
    { name: 'a.lora_B.weight', shape: [8, 4] },
  ];

  for (const spec of ALL) {
    it(`${spec.codec}: survives a grad_result frame and validateTensors`, () => {
      const values = manifest.map((m, j) => Float32Array.from({ length: 32 }, (_, i) => Math.cos(i + j) / 10));
      const grads = manifest.map((m, j) => encodeTensor(m.name, m.shape, values[j], spec));
      const msg = makeMessage('grad_result', {
        replyTo: 'r',
        step: 1,
        grads,
        stats: { lossSum: 0, numSamples: 1, numLossItems: 1, numTokens: 1, numCorrect: 0 },
        computeMs: 1,
      });
      const parsed = parseMessage(encodeMessage(msg));
      if (parsed.kind !== 'grad_result') throw new Error('expected grad_result');
      const out = validateTensors(parsed.grads, manifest);
      for (const [j, m] of manifest.entries()) {
        expect(Array.from(out.get(m.name)!)).toEqual(Array.from(decodeTensor(grads[j])));
        expect(Array.from(blobToFloat32(parsed.grads[j]))).toEqual(Array.from(decodeTensor(grads[j])));
      }
    });
  }

  it('validateTensors checks the DECODED values: an fp16 infinity or an int8 NaN scale is refused', () => {
    const inf = encodeTensor('a.lora_A.weight', [4, 8], new Float32Array(32), { codec: 'fp16' });
    new Uint16Array(inf.data.buffer)[5] = 0x7c00;
    const nanScale = encodeTensor('a.lora_B.weight', [8, 4], new Float32Array(32).fill(1), { codec: 'int8' });
    new Float32Array(nanScale.data.buffer, 0, 1)[0] = NaN;
    expect(codeOf(() => validateTensors([inf, encodeTensor('a.lora_B.weight', [8, 4], new Float32Array(32), { codec: 'fp32' })], manifest))).toBe(
      ErrorCode.TENSOR_NON_FINITE,
    );
    expect(messageOf(() => validateTensors([inf, nanScale], manifest))).toMatch(/"a\.lora_A\.weight".*index 5/);
    const ok = encodeTensor('a.lora_A.weight', [4, 8], new Float32Array(32), { codec: 'int8' });
    expect(messageOf(() => validateTensors([ok, nanScale], manifest))).toMatch(/"a\.lora_B\.weight".*index 0/);
  });

  it('validateTensors checks the shape before decoding a coded blob', () => {
    const wrong = encodeTensor('a.lora_A.weight', [8, 4], new Float32Array(32), { codec: 'topk' });
    const b = encodeTensor('a.lora_B.weight', [8, 4], new Float32Array(32), { codec: 'topk' });
    expect(codeOf(() => validateTensors([wrong, b], manifest))).toBe(ErrorCode.TENSOR_SHAPE);
  });
});
