/**
 * The edge check of a {@link Batch} before it reaches the model: sizes, token ids, mask values.
 */
import { ErrorCode, ShapeError } from '../errors.js';
import type { Batch, LlamaConfig, Task } from './types.js';

/**
 * Throw unless `batch` fits the model: `inputIds` and `attentionMask` hold `batchSize · seqLen` entries, token ids are
 * in `[0, vocabSize)`, mask entries are 0 or 1, `seqLen ≤ contextLength`, and `labels` holds `batchSize` entries
 * (classification) or `batchSize · seqLen` (causal-lm). Label values are checked where they are used.
 * @throws ShapeError E_TENSOR_SHAPE for a size, E_TENSOR_RANGE for a value.
 */
export function validateBatch(batch: Batch, config: LlamaConfig, task: Task): void {
  const { batchSize, seqLen } = batch;
  if (!Number.isInteger(batchSize) || batchSize <= 0 || !Number.isInteger(seqLen) || seqLen <= 0) {
    throw new ShapeError(ErrorCode.TENSOR_SHAPE, `batch: batchSize ${batchSize} and seqLen ${seqLen} must be positive integers`);
  }
  if (seqLen > config.contextLength) {
    throw new ShapeError(ErrorCode.TENSOR_SHAPE, `batch: seqLen ${seqLen} exceeds the model's context length ${config.contextLength}`);
  }
  const numel = batchSize * seqLen;
  if (batch.inputIds.length !== numel || batch.attentionMask.length !== numel) {
    throw new ShapeError(
      ErrorCode.TENSOR_SHAPE,
      `batch: inputIds (${batch.inputIds.length}) and attentionMask (${batch.attentionMask.length}) must hold batchSize·seqLen = ${numel} entries`,
    );
  }
  const numLabels = task === 'classification' ? batchSize : numel;
  if (batch.labels.length !== numLabels) {
    throw new ShapeError(ErrorCode.TENSOR_SHAPE, `batch: labels holds ${batch.labels.length} entries, ${task} needs ${numLabels}`);
  }
  for (let i = 0; i < numel; i++) {
    const id = batch.inputIds[i];
    if (id < 0 || id >= config.vocabSize) {
      throw new ShapeError(ErrorCode.TENSOR_RANGE, `batch: inputIds[${i}] = ${id} is outside the vocabulary [0, ${config.vocabSize})`);
    }
    const m = batch.attentionMask[i];
    if (m !== 0 && m !== 1) throw new ShapeError(ErrorCode.TENSOR_RANGE, `batch: attentionMask[${i}] = ${m} is not 0 or 1`);
  }
}
