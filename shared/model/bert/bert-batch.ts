/**
 * The batch side of a BERT task model, without TF.js tensors beyond the statistics read-back: the shape and range
 * checks of a batch, the attention mask with prompt tokens, and the loss statistics of a head's rows.
 */
import type * as tf from '@tensorflow/tfjs';
import { ErrorCode, ShapeError } from '../../errors.js';
import type { Batch, BatchStats, Task } from '../types.js';
import type { BertConfig } from './bert-config.js';

/**
 * Throw unless `batch` fits a BERT model: sizes, `seqLen` ≤ `max_position_embeddings`, ids in the vocabulary,
 * mask entries 0/1, labels (classification: one per sequence; masked-LM, `task` `causal-lm`: one per position, a
 * vocabulary id or -100), a real first token ([CLS]) in every sequence.
 * @param task the model's task. @default 'classification'
 * @throws ShapeError E_TENSOR_SHAPE for a size, E_TENSOR_RANGE for a value.
 */
export function validateBertBatch(batch: Batch, config: BertConfig, task: Task = 'classification'): void {
  const { batchSize, seqLen } = batch;
  if (!Number.isInteger(batchSize) || batchSize <= 0 || !Number.isInteger(seqLen) || seqLen <= 0) {
    throw new ShapeError(ErrorCode.TENSOR_SHAPE, `batch: batchSize ${batchSize} and seqLen ${seqLen} must be positive integers`);
  }
  if (seqLen > config.maxPositions) {
    throw new ShapeError(ErrorCode.TENSOR_SHAPE, `batch: seqLen ${seqLen} exceeds the model's max_position_embeddings ${config.maxPositions}`);
  }
  const numel = batchSize * seqLen;
  const numLabels = task === 'classification' ? batchSize : numel;
  if (batch.inputIds.length !== numel || batch.attentionMask.length !== numel || batch.labels.length !== numLabels) {
    throw new ShapeError(
      ErrorCode.TENSOR_SHAPE,
      `batch: inputIds (${batch.inputIds.length}) and attentionMask (${batch.attentionMask.length}) must hold ${numel} entries, labels (${batch.labels.length}) ${numLabels}`,
    );
  }
  for (let i = 0; i < numel; i++) {
    const id = batch.inputIds[i];
    if (!(id >= 0 && id < config.vocabSize)) {
      throw new ShapeError(ErrorCode.TENSOR_RANGE, `batch: inputIds[${i}] = ${id} is outside the vocabulary [0, ${config.vocabSize})`);
    }
    const m = batch.attentionMask[i];
    if (m !== 0 && m !== 1) throw new ShapeError(ErrorCode.TENSOR_RANGE, `batch: attentionMask[${i}] = ${m} is not 0 or 1`);
  }
  for (let b = 0; b < batchSize; b++) {
    if (batch.attentionMask[b * seqLen] !== 1) {
      throw new ShapeError(ErrorCode.TENSOR_RANGE, `batch: sequence ${b} does not start with a real token ([CLS]); BERT batches are right-padded`);
    }
  }
}

/** Loss statistics of the rows a head scored: `labels` per row (negative = ignored), `logits` `[rows, classes]`. */
export function statsOf(batch: Batch, labels: Int32Array, rowLoss: tf.Tensor, logits: tf.Tensor): BatchStats {
  const losses = rowLoss.dataSync();
  const values = logits.dataSync();
  const numClasses = values.length / labels.length;
  let lossSum = 0;
  let numLossItems = 0;
  let numCorrect = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] < 0) continue;
    lossSum += losses[i];
    numLossItems++;
    let best = 0;
    for (let c = 1; c < numClasses; c++) if (values[i * numClasses + c] > values[i * numClasses + best]) best = c;
    if (best === labels[i]) numCorrect++;
  }
  let numTokens = 0;
  for (const m of batch.attentionMask) numTokens += m;
  return { lossSum, numSamples: batch.batchSize, numLossItems, numTokens, numCorrect };
}

/** The attention mask `[batchSize * (seqLen + p)]` with `p` ones after each sequence's first ([CLS]) entry. */
export function promptedMask(mask: Int32Array, batchSize: number, seqLen: number, p: number): Int32Array {
  const total = seqLen + p;
  const out = new Int32Array(batchSize * total);
  for (let b = 0; b < batchSize; b++) {
    out[b * total] = mask[b * seqLen];
    out.fill(1, b * total + 1, b * total + 1 + p);
    out.set(mask.subarray(b * seqLen + 1, (b + 1) * seqLen), b * total + 1 + p);
  }
  return out;
}
