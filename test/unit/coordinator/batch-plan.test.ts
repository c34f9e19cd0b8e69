import { describe, expect, it } from 'vitest';
import { splitGlobalBatch } from '../../../coordinator/batch-plan.js';

describe('splitGlobalBatch', () => {
  it('cuts a global batch into equal contiguous slices in order', () => {
    expect(splitGlobalBatch([5, 6, 7, 8, 9, 10], 3)).toEqual([
      { sliceIndex: 0, exampleIndices: [5, 6] },
      { sliceIndex: 1, exampleIndices: [7, 8] },
      { sliceIndex: 2, exampleIndices: [9, 10] },
    ]);
  });
  it('gives the remainder to the first slices and leaves out empty ones', () => {
    expect(splitGlobalBatch([1, 2, 3, 4, 5], 2).map((s) => s.exampleIndices)).toEqual([[1, 2, 3], [4, 5]]);
    expect(splitGlobalBatch([1], 3)).toEqual([{ sliceIndex: 0, exampleIndices: [1] }]);
  });
  it('covers every example exactly once', () => {
    const batch = Array.from({ length: 37 }, (_, i) => i * 2);
    for (let parts = 1; parts <= 9; parts++) {
      expect(splitGlobalBatch(batch, parts).flatMap((s) => s.exampleIndices)).toEqual(batch);
    }
  });
  it('rejects a non-positive part count', () => {
    expect(() => splitGlobalBatch([1], 0)).toThrow(RangeError);
  });
});
