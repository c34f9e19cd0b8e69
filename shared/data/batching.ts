/**
 * Which examples form each global batch of an epoch: a seeded permutation per epoch, cut into batches.
 * The coordinator splits each global batch into contiguous per-worker slices.
 */
import { ConfigError, ErrorCode } from '../errors.js';
import { mixSeeds, seededPermutation } from './seeded-random.js';

/** Stream id mixed into the seed for batch order (distinct from the train/eval split's). */
const BATCH_STREAM = 0xba7c4;

/** Options of {@link batchIndices}. */
export interface BatchIndicesOptions {
  /** Examples per global batch. Integer >= 1. */
  readonly batchSize: number;
  /** Run seed. */
  readonly seed: number;
  /** 0-based epoch; each epoch has its own order. */
  readonly epoch: number;
  /** Drop a last batch smaller than `batchSize`. @default false */
  readonly dropLast?: boolean;
}

/**
 * Example indices of every global batch of one epoch, in order: `seededPermutation(numExamples, f(seed, epoch))` cut
 * into consecutive runs of `batchSize`. A pure function of its arguments: every process computes the same batches.
 *
 * @throws ConfigError E_CONFIG_INVALID for a `batchSize` < 1, a negative `numExamples` or `epoch`, or non-integers.
 */
export function batchIndices(numExamples: number, options: BatchIndicesOptions): number[][] {
  const { batchSize, seed, epoch, dropLast = false } = options;
  checkSizes(numExamples, batchSize);
  if (!Number.isInteger(epoch) || epoch < 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, `batchIndices: epoch ${epoch} is not an integer >= 0`);
  const order = seededPermutation(numExamples, mixSeeds(seed, BATCH_STREAM, epoch));
  return cut(Array.from(order), batchSize, dropLast);
}

/**
 * Example indices `0 .. numExamples-1` in order, cut into batches of `batchSize` (the last one may be smaller):
 * evaluation order, which needs no shuffle.
 *
 * @throws ConfigError E_CONFIG_INVALID as {@link batchIndices}.
 */
export function sequentialBatchIndices(numExamples: number, batchSize: number): number[][] {
  checkSizes(numExamples, batchSize);
  return cut(Array.from({ length: numExamples }, (_, i) => i), batchSize, false);
}

/** Global batches per epoch: `floor` with `dropLast`, else `ceil` of `numExamples / batchSize`. */
export function batchesPerEpoch(numExamples: number, batchSize: number, dropLast = false): number {
  checkSizes(numExamples, batchSize);
  return dropLast ? Math.floor(numExamples / batchSize) : Math.ceil(numExamples / batchSize);
}

function cut(order: number[], batchSize: number, dropLast: boolean): number[][] {
  const batches: number[][] = [];
  for (let start = 0; start < order.length; start += batchSize) {
    const batch = order.slice(start, start + batchSize);
    if (dropLast && batch.length < batchSize) break;
    batches.push(batch);
  }
  return batches;
}

function checkSizes(numExamples: number, batchSize: number): void {
  if (!Number.isInteger(numExamples) || numExamples < 0) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `number of examples ${numExamples} is not an integer >= 0`);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `batch size ${batchSize} is not an integer >= 1`);
  }
}
