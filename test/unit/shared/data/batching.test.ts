import { describe, expect, it } from 'vitest';
import { batchIndices, batchesPerEpoch, sequentialBatchIndices } from '../../../../shared/data/batching.js';
import { ErrorCode, errorCodeOf } from '../../../../shared/errors.js';

describe('batchIndices', () => {
  it('cuts a permutation of all examples into batches, the last one partial', () => {
    const batches = batchIndices(10, { batchSize: 4, seed: 42, epoch: 0 });
    expect(batches.map((b) => b.length)).toEqual([4, 4, 2]);
    expect(batches.flat().sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(batches.flat()).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('drops the partial last batch with dropLast', () => {
    const batches = batchIndices(10, { batchSize: 4, seed: 42, epoch: 0, dropLast: true });
    expect(batches.map((b) => b.length)).toEqual([4, 4]);
    expect(batches).toEqual(batchIndices(10, { batchSize: 4, seed: 42, epoch: 0 }).slice(0, 2));
  });

  it('is deterministic per (seed, epoch) and differs between epochs and seeds', () => {
    const a = batchIndices(50, { batchSize: 8, seed: 1, epoch: 0 });
    expect(batchIndices(50, { batchSize: 8, seed: 1, epoch: 0 })).toEqual(a);
    expect(batchIndices(50, { batchSize: 8, seed: 1, epoch: 1 })).not.toEqual(a);
    expect(batchIndices(50, { batchSize: 8, seed: 2, epoch: 0 })).not.toEqual(a);
  });

  it('handles no examples and rejects bad sizes', () => {
    expect(batchIndices(0, { batchSize: 4, seed: 1, epoch: 0 })).toEqual([]);
    const code = (fn: () => unknown): string => {
      try {
        fn();
      } catch (err) {
        return errorCodeOf(err);
      }
      return 'none';
    };
    expect(code(() => batchIndices(10, { batchSize: 0, seed: 1, epoch: 0 }))).toBe(ErrorCode.CONFIG_INVALID);
    expect(code(() => batchIndices(10, { batchSize: 2, seed: 1, epoch: -1 }))).toBe(ErrorCode.CONFIG_INVALID);
    expect(code(() => batchIndices(-1, { batchSize: 2, seed: 1, epoch: 0 }))).toBe(ErrorCode.CONFIG_INVALID);
  });
});

describe('sequentialBatchIndices and batchesPerEpoch', () => {
  it('batches in order for evaluation', () => {
    expect(sequentialBatchIndices(5, 2)).toEqual([[0, 1], [2, 3], [4]]);
  });

  it('counts batches per epoch, matching batchIndices', () => {
    expect(batchesPerEpoch(10, 4)).toBe(3);
    expect(batchesPerEpoch(10, 4, true)).toBe(2);
    expect(batchesPerEpoch(8, 4)).toBe(2);
    expect(batchIndices(1001, { batchSize: 16, seed: 3, epoch: 2 })).toHaveLength(batchesPerEpoch(1001, 16));
  });
});
