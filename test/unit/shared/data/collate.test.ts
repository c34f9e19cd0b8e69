import { describe, expect, it } from 'vitest';
import { IGNORE_INDEX, collateBatch } from '../../../../shared/data/collate.js';
import { ErrorCode, ShapeError } from '../../../../shared/errors.js';

const item = (ids: number[], label?: number) => ({ ids: Int32Array.from(ids), label });
const X = IGNORE_INDEX;

function shapeError(fn: () => unknown): ShapeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ShapeError);
    expect((err as ShapeError).code).toBe(ErrorCode.TENSOR_SHAPE);
    return err as ShapeError;
  }
  throw new Error('expected a ShapeError');
}

describe('collateBatch', () => {
  it('right-pads classification items to the longest, with a mask and one label per row', () => {
    const batch = collateBatch([item([1, 5, 6], 1), item([1, 7], 0), item([1, 8, 9, 10], 1)], { task: 'classification', padId: 0 });
    expect(batch.batchSize).toBe(3);
    expect(batch.seqLen).toBe(4);
    expect(Array.from(batch.inputIds)).toEqual([1, 5, 6, 0, 1, 7, 0, 0, 1, 8, 9, 10]);
    expect(Array.from(batch.attentionMask)).toEqual([1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1]);
    expect(Array.from(batch.labels)).toEqual([1, 0, 1]);
  });

  it('shifts causal-lm labels: labels[t] = ids[t+1], ignored at the last real position and on padding', () => {
    const batch = collateBatch([item([1, 5, 6, 2]), item([1, 7])], { task: 'causal-lm', padId: 2, seqLen: 5 });
    expect(batch.seqLen).toBe(5);
    expect(Array.from(batch.inputIds)).toEqual([1, 5, 6, 2, 2, 1, 7, 2, 2, 2]);
    expect(Array.from(batch.attentionMask)).toEqual([1, 1, 1, 1, 0, 1, 1, 0, 0, 0]);
    expect(Array.from(batch.labels)).toEqual([5, 6, 2, X, X, 7, X, X, X, X]);
  });

  it('uses a fixed seqLen when given one, and rejects an item longer than it', () => {
    expect(collateBatch([item([1, 2], 0)], { task: 'classification', padId: 0, seqLen: 6 }).inputIds).toHaveLength(6);
    expect(shapeError(() => collateBatch([item([1, 2], 0), item([1, 2, 3], 0)], { task: 'classification', padId: 0, seqLen: 2 })).message).toContain(
      'item 1 has 3 tokens',
    );
  });

  it('rejects an empty batch, an empty item, a missing classification label and a bad seqLen', () => {
    shapeError(() => collateBatch([], { task: 'causal-lm', padId: 0 }));
    shapeError(() => collateBatch([item([])], { task: 'causal-lm', padId: 0 }));
    expect(shapeError(() => collateBatch([item([1, 2])], { task: 'classification', padId: 0 })).message).toContain('no label');
    shapeError(() => collateBatch([item([1, 2])], { task: 'causal-lm', padId: 0, seqLen: 0 }));
  });
});
