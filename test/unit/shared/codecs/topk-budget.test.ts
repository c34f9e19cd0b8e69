import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allocateTopkBudget, topkCount } from '../../../../shared/codecs/index.js';
import { FC_OPTIONS } from './arbitraries.js';

describe('allocateTopkBudget', () => {
  it('keeps ⌊density · all elements⌋ in all, where per-tensor rounding up keeps more', () => {
    // The stories260K LoRA (q and v, rank 8, 5 layers) and its 2-class head: 9,088 coordinates.
    const sizes = [...Array.from({ length: 5 }, () => [512, 512, 512, 256]).flat(), 128];
    const densities = sizes.map(() => 0.01);
    const counts = allocateTopkBudget(sizes, densities);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(90);
    expect(sizes.map((n) => topkCount(n, 0.01)).reduce((a, b) => a + b, 0)).toBe(107);
    // ⌊5.12⌋ for every 512, then the larger remainders (0.56 of the 256s, 0.28 of the head) take the 10 left over.
    expect(counts.slice(0, 4)).toEqual([5, 5, 5, 3]);
    expect(counts[20]).toBe(1);
  });

  it('is exact at density 1, at least 1 when anything exists, and breaks ties to the lower index', () => {
    expect(allocateTopkBudget([3, 4], [1, 1])).toEqual([3, 4]);
    expect(allocateTopkBudget([10, 10], [0.01, 0.01])).toEqual([1, 0]);
    expect(allocateTopkBudget([0, 0], [0.5, 0.5])).toEqual([0, 0]);
    expect(allocateTopkBudget([100], [0.29])).toEqual([29]);
    expect(() => allocateTopkBudget([10], [0])).toThrow(RangeError);
    expect(() => allocateTopkBudget([10], [0.1, 0.1])).toThrow(RangeError);
    expect(() => allocateTopkBudget([1.5], [0.1])).toThrow(RangeError);
  });

  it('never exceeds a tensor or the budget, and never gives less than ⌊dᵢ·nᵢ⌋ (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ n: fc.integer({ min: 0, max: 5000 }), d: fc.double({ min: 1e-4, max: 1, noNaN: true }) }), { minLength: 1, maxLength: 12 }),
        (tensors) => {
          const counts = allocateTopkBudget(tensors.map((t) => t.n), tensors.map((t) => t.d));
          const exact = tensors.reduce((s, t) => s + t.d * t.n, 0);
          const total = counts.reduce((a, b) => a + b, 0);
          const size = tensors.reduce((s, t) => s + t.n, 0);
          expect(total).toBe(size === 0 ? 0 : Math.max(1, Math.floor(exact + 1e-9)));
          tensors.forEach((t, i) => {
            expect(counts[i]).toBeLessThanOrEqual(t.n);
            expect(counts[i]).toBeGreaterThanOrEqual(Math.floor(t.d * t.n + 1e-9));
          });
        },
      ),
      FC_OPTIONS,
    );
  });
});
