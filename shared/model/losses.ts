/**
 * Loss pieces shared by the heads: per-row softmax cross-entropy with ignored rows, and the pooling matrix that
 * turns token states into one vector per sequence.
 */
import * as tf from '@tensorflow/tfjs';
import { ErrorCode, ShapeError } from '../errors.js';
import type { Pooling } from './types.js';

/** Target value meaning "no loss here" (PyTorch's `ignore_index`). */
export const IGNORE_INDEX = -100;

/** One-hot targets and a 0/1 validity vector for {@link crossEntropyRows}; the caller disposes them. */
export interface CrossEntropyTargets {
  /** `[numRows, numClasses]` float32, a zero row where the target is ignored. */
  readonly oneHot: tf.Tensor2D;
  /** `[numRows]` float32, 1 where the row bears loss. */
  readonly valid: tf.Tensor1D;
}

/**
 * Build {@link CrossEntropyTargets} from class ids.
 * @param targets class id per row, or {@link IGNORE_INDEX}.
 * @throws ShapeError E_TENSOR_RANGE for a target outside `[0, numClasses)` that is not {@link IGNORE_INDEX}.
 */
export function crossEntropyTargets(targets: Int32Array, numClasses: number, what: string): CrossEntropyTargets {
  const safe = new Int32Array(targets.length);
  const valid = new Float32Array(targets.length);
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i];
    if (t === IGNORE_INDEX) continue;
    if (!Number.isInteger(t) || t < 0 || t >= numClasses) {
      throw new ShapeError(ErrorCode.TENSOR_RANGE, `${what}: target ${t} at index ${i} is outside [0, ${numClasses})`);
    }
    safe[i] = t;
    valid[i] = 1;
  }
  return tf.tidy(() => ({
    oneHot: tf.mul(tf.cast(tf.oneHot(tf.tensor1d(safe, 'int32'), numClasses), 'float32'), tf.expandDims(tf.tensor1d(valid), 1)) as tf.Tensor2D,
    valid: tf.tensor1d(valid),
  }));
}

/**
 * Softmax cross-entropy per row, in nats: `loss[i] = logsumexp(logits[i]) − logits[i, target[i]]`, 0 for ignored
 * rows. One `tf.customGrad` with the closed-form gradient `(softmax − onehot) · dy[i]`, which costs one `exp`
 * instead of autodiff's chain through log-softmax.
 * @param logits `[numRows, numClasses]`.
 * @returns `[numRows]`.
 */
export function crossEntropyRows(logits: tf.Tensor2D, targets: CrossEntropyTargets): tf.Tensor1D {
  type Save = (tensors: tf.Tensor[]) => void;
  const op = tf.customGrad((logitsIn: tf.Tensor | Save, save: tf.Tensor | Save) => {
    const l = logitsIn as tf.Tensor2D;
    const lse = tf.logSumExp(l, 1, true);
    const picked = tf.sum(tf.mul(l, targets.oneHot), 1);
    const value = tf.mul(tf.sub(tf.reshape(lse, [-1]), picked), targets.valid);
    (save as Save)([l, lse, targets.oneHot, targets.valid]);
    const gradFunc = (dy: tf.Tensor, [ls, lses, oneHot, valid]: tf.Tensor[]): tf.Tensor =>
      tf.mul(tf.sub(tf.exp(tf.sub(ls, lses)), oneHot), tf.expandDims(tf.mul(dy, valid), 1));
    return { value, gradFunc };
  });
  return op(logits) as tf.Tensor1D;
}

/**
 * The pooling matrix `[batchSize, batchSize * seqLen]` (row-major) so that `pooled = M · H` for token states `H`:
 * `mean` averages the real tokens of each sequence, `last` picks its last real token (what Hugging Face's decoder
 * classifiers do).
 * @param attentionMask `[batchSize * seqLen]`, 1 for real tokens.
 * @throws ShapeError E_TENSOR_RANGE when a sequence has no real token.
 */
export function poolingMatrix(attentionMask: Int32Array, batchSize: number, seqLen: number, pooling: Pooling): Float32Array {
  const m = new Float32Array(batchSize * batchSize * seqLen);
  for (let b = 0; b < batchSize; b++) {
    let count = 0;
    let last = -1;
    for (let t = 0; t < seqLen; t++) {
      if (attentionMask[b * seqLen + t] !== 0) {
        count++;
        last = t;
      }
    }
    if (count === 0) {
      throw new ShapeError(ErrorCode.TENSOR_RANGE, `batch: sequence ${b} has no real token to pool (attentionMask is all 0)`);
    }
    const row = b * batchSize * seqLen + b * seqLen;
    if (pooling === 'last') {
      m[row + last] = 1;
    } else {
      for (let t = 0; t < seqLen; t++) if (attentionMask[b * seqLen + t] !== 0) m[row + t] = 1 / count;
    }
  }
  return m;
}
