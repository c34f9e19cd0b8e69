/**
 * Error feedback: nothing is lost over time. Σ decoded over T steps = Σ inputs − final residual (per element,
 * to float32 accumulation error), for every lossy codec; reset and shape checks.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorFeedback, decodeTensor, encodeTensor, type CodecSpec } from '../../../../shared/codecs/index.js';
import { ErrorCode } from '../../../../shared/errors.js';
import { mulberry32 } from '../../../../shared/random.js';
import { FC_OPTIONS, codeOf } from './arbitraries.js';

const SPECS: CodecSpec[] = [
  { codec: 'fp16' },
  { codec: 'bf16' },
  { codec: 'int8', blockSize: 16 },
  { codec: 'topk', density: 0.05 },
  { codec: 'fp32' },
];

describe('ErrorFeedback', () => {
  for (const spec of SPECS) {
    it(`${spec.codec}: Σ decoded = Σ inputs − final residual over T steps`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 200 }),
          fc.integer({ min: 1, max: 12 }),
          fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          (n, steps, seed) => {
            const random = mulberry32(seed);
            const ef = new ErrorFeedback();
            const sumIn = new Float64Array(n);
            const sumOut = new Float64Array(n);
            let scale = 0;
            for (let t = 0; t < steps; t++) {
              const values = Float32Array.from({ length: n }, () => (random() - 0.5) * 2 ** Math.floor(random() * 8 - 6));
              const blob = ef.compress('g', [n], values, spec);
              const decoded = decodeTensor(blob);
              for (let i = 0; i < n; i++) {
                sumIn[i] += values[i];
                sumOut[i] += decoded[i];
                scale = Math.max(scale, Math.abs(values[i]));
              }
            }
            const residual = ef.residual('g') ?? new Float32Array(n);
            for (let i = 0; i < n; i++) {
              // Float32 rounding of the corrected values and residuals: a few ulps of the largest magnitude per step.
              expect(Math.abs(sumOut[i] - (sumIn[i] - residual[i]))).toBeLessThanOrEqual(steps * scale * 2 ** -20);
            }
          },
        ),
        { ...FC_OPTIONS, numRuns: 40 },
      );
    });
  }

  it('topk at 1% sends everything eventually: the running mean of decoded values tracks the inputs', () => {
    const n = 1000;
    const target = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.01);
    const withEf = new ErrorFeedback();
    const sumEf = new Float64Array(n);
    const sumPlain = new Float64Array(n);
    const steps = 2000;
    for (let t = 0; t < steps; t++) {
      const a = decodeTensor(withEf.compress('g', [n], target, { codec: 'topk', density: 0.01 }));
      const b = decodeTensor(encodeTensor('g', [n], target, { codec: 'topk', density: 0.01 }));
      for (let i = 0; i < n; i++) {
        sumEf[i] += a[i];
        sumPlain[i] += b[i];
      }
    }
    let errEf = 0;
    let errPlain = 0;
    for (let i = 0; i < n; i++) {
      errEf = Math.max(errEf, Math.abs(sumEf[i] / steps - target[i]));
      errPlain = Math.max(errPlain, Math.abs(sumPlain[i] / steps - target[i]));
    }
    // Without feedback 99% of the coordinates are never sent (error = |value|, up to 0.01).
    expect(errPlain).toBeGreaterThan(0.009);
    expect(errEf).toBeLessThan(0.001);
  });

  it('keeps residuals per tensor name, forgets them on reset, and refuses a changed shape', () => {
    const ef = new ErrorFeedback();
    ef.compress('a', [4], Float32Array.of(1, 0.5, 0.25, 0.125), { codec: 'topk', density: 0.25 });
    expect(Array.from(ef.residual('a')!)).toEqual([0, 0.5, 0.25, 0.125]);
    expect(ef.residual('b')).toBeUndefined();
    const next = decodeTensor(ef.compress('a', [4], new Float32Array(4), { codec: 'topk', density: 0.25 }));
    expect(Array.from(next)).toEqual([0, 0.5, 0, 0]);
    expect(codeOf(() => ef.compress('a', [5], new Float32Array(5), { codec: 'fp16' }))).toBe(ErrorCode.TENSOR_SHAPE);
    ef.reset();
    expect(ef.residual('a')).toBeUndefined();
    expect(codeOf(() => ef.compress('a', [5], new Float32Array(5), { codec: 'fp16' }))).toBe('none');
  });

  it('leaves the residual unchanged when the input is refused', () => {
    const ef = new ErrorFeedback();
    ef.compress('a', [2], Float32Array.of(1, 0.5), { codec: 'topk', density: 0.5 });
    expect(codeOf(() => ef.compress('a', [2], Float32Array.of(NaN, 0), { codec: 'topk', density: 0.5 }))).toBe(ErrorCode.TENSOR_NON_FINITE);
    expect(Array.from(ef.residual('a')!)).toEqual([0, 0.5]);
  });

  it('never returns a view of the caller values', () => {
    const values = Float32Array.of(1, 2, 3);
    const blob = new ErrorFeedback().compress('a', [3], values, { codec: 'fp32' });
    values[0] = 9;
    expect(Array.from(decodeTensor(blob))).toEqual([1, 2, 3]);
  });
});
