/**
 * Federated evaluation of one client: loss statistics of the global trainable values on the client's own
 * examples (its held-out indices, or whatever indices the coordinator names).
 */
import type { TrainableModel } from '../shared/model/trainable-model.js';
import type { BatchStats } from '../shared/model/types.js';
import type { NamedTensors } from '../shared/tensors.js';
import { collateBatch, sequentialBatchIndices } from '../shared/data/index.js';
import { ErrorCode, ShapeError } from '../shared/errors.js';
import type { ClientShard, PaddingOptions } from './local-training.js';

/** Inputs of {@link evaluateClient}. */
export interface ClientEvalInput {
  /** The task model; its trainable tensors are overwritten with `global`. */
  readonly model: TrainableModel;
  /** The global value of every manifest tensor. */
  readonly global: NamedTensors;
  readonly shard: ClientShard;
  /** Examples per forward pass (memory only: the sums do not depend on it). Integer >= 1. */
  readonly batchSize: number;
  readonly padding: PaddingOptions;
}

/**
 * Summed loss statistics of the global values over the shard's examples, in order, without dropout: the
 * coordinator divides (`lossSum / numLossItems`, `numCorrect / numLossItems`) and compares clients. An empty shard
 * gives all-zero statistics.
 * @throws ShapeError E_TENSOR_NAME / E_TENSOR_SHAPE for global values that do not fit the model, E_TENSOR_RANGE for
 *   an index outside the dataset.
 * @throws ConfigError E_CONFIG_INVALID for a `batchSize` < 1.
 */
export function evaluateClient(input: ClientEvalInput): BatchStats {
  const { model, global, shard, padding } = input;
  for (const i of shard.indices) {
    if (!Number.isInteger(i) || i < 0 || i >= shard.dataset.length) {
      throw new ShapeError(ErrorCode.TENSOR_RANGE, `client evaluation: example index ${i} is outside the dataset of ${shard.dataset.length} examples`);
    }
  }
  model.setTrainable(global);
  const total = { lossSum: 0, numSamples: 0, numLossItems: 0, numTokens: 0, numCorrect: 0 };
  for (const positions of sequentialBatchIndices(shard.indices.length, input.batchSize)) {
    const items = positions.map((p) => shard.dataset[shard.indices[p]]);
    const stats = model.evaluate(collateBatch(items, { task: model.spec.task, padId: padding.padId, seqLen: padding.seqLen }));
    total.lossSum += stats.lossSum;
    total.numSamples += stats.numSamples;
    total.numLossItems += stats.numLossItems;
    total.numTokens += stats.numTokens;
    total.numCorrect += stats.numCorrect;
  }
  return total;
}
