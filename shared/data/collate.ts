/**
 * Tokenized items to the padded {@link Batch} the model consumes.
 */
import { ErrorCode, ShapeError } from '../errors.js';
import type { Batch, RunTask } from '../model/types.js';
import type { TokenizedItem } from './types.js';

/** Label value that the loss ignores (PyTorch's `ignore_index`). */
export const IGNORE_INDEX = -100;

/** Options of {@link collateBatch}. */
export interface CollateOptions {
  readonly task: RunTask;
  /** Id written at padded positions (masked out, so any valid id works). */
  readonly padId: number;
  /**
   * Padded length: `longest` (the longest item of this batch) or a fixed number of tokens (same shapes every step,
   * which lets a backend reuse compiled kernels). @default 'longest'
   */
  readonly seqLen?: 'longest' | number;
}

/**
 * Right-pad items into one batch.
 *
 * - `inputIds[b, t]`: the item's ids, then `padId`.
 * - `attentionMask[b, t]`: 1 on real tokens, 0 on padding.
 * - `labels`: classification → `[batchSize]` class ids; causal-lm → `[batchSize * seqLen]` next-token targets,
 *   `labels[b, t] = ids[t + 1]`, and {@link IGNORE_INDEX} at each item's last real position and on padding, and at
 *   `t < promptLength - 1` for an item with a `promptLength` (instruction tuning: loss on the response only).
 *
 * @throws ShapeError E_TENSOR_SHAPE for no items, an empty item, an item longer than a fixed `seqLen`, a classification
 *   item without a label, or a `seqLen` that is not an integer >= 1.
 */
export function collateBatch(items: readonly TokenizedItem[], options: CollateOptions): Batch {
  const { task, padId, seqLen: wanted = 'longest' } = options;
  if (items.length === 0) throw new ShapeError(ErrorCode.TENSOR_SHAPE, 'collateBatch: no items to batch');
  let longest = 0;
  items.forEach((item, b) => {
    if (item.ids.length === 0) throw new ShapeError(ErrorCode.TENSOR_SHAPE, `collateBatch: item ${b} has no tokens`);
    longest = Math.max(longest, item.ids.length);
  });
  if (wanted !== 'longest' && (!Number.isInteger(wanted) || wanted < 1)) {
    throw new ShapeError(ErrorCode.TENSOR_SHAPE, `collateBatch: seqLen ${wanted} is not 'longest' or an integer >= 1`);
  }
  const seqLen = wanted === 'longest' ? longest : wanted;
  if (longest > seqLen) {
    const b = items.findIndex((item) => item.ids.length > seqLen);
    throw new ShapeError(ErrorCode.TENSOR_SHAPE, `collateBatch: item ${b} has ${items[b].ids.length} tokens, more than seqLen ${seqLen}`);
  }

  const batchSize = items.length;
  const inputIds = new Int32Array(batchSize * seqLen).fill(padId);
  const attentionMask = new Int32Array(batchSize * seqLen);
  const labels = task === 'classification' ? new Int32Array(batchSize) : new Int32Array(batchSize * seqLen).fill(IGNORE_INDEX);
  items.forEach((item, b) => {
    const row = b * seqLen;
    inputIds.set(item.ids, row);
    attentionMask.fill(1, row, row + item.ids.length);
    if (task === 'classification') {
      if (item.label === undefined) throw new ShapeError(ErrorCode.TENSOR_SHAPE, `collateBatch: classification item ${b} has no label`);
      labels[b] = item.label;
    } else {
      labels.set(item.ids.subarray(1), row);
      // Instruction items: no loss on predicting prompt tokens, only on the response (labels[t] targets ids[t + 1]).
      if (item.promptLength !== undefined) labels.fill(IGNORE_INDEX, row, row + Math.min(item.promptLength, item.ids.length) - 1);
    }
  });
  return { batchSize, seqLen, inputIds, attentionMask, labels };
}
