/**
 * What crosses the wire for one federated client, on the coordinator's side: shipped examples, replies turned
 * into results or failures, stale replies told apart.
 */
import type { TokenizedItem } from '../../shared/data/types.js';
import type { ShippedExamples } from '../../shared/protocol/messages.js';
import { int32Blob } from '../../shared/codec.js';
import { TimeoutError, errorCodeOf } from '../../shared/errors.js';
import type { BatchStats } from '../../shared/model/types.js';
import type { ClientFailure, EvaluateResult } from './types.js';

/** Tokenized examples packed for the wire (`data_delivery: ship`). */
export function shipExamples(items: readonly TokenizedItem[]): ShippedExamples {
  const total = items.reduce((n, item) => n + item.ids.length, 0);
  const tokenIds = new Int32Array(total);
  const lengths = new Int32Array(items.length);
  let offset = 0;
  items.forEach((item, i) => {
    tokenIds.set(item.ids, offset);
    offset += item.ids.length;
    lengths[i] = item.ids.length;
  });
  const hasLabels = items.length > 0 && items.every((item) => item.label !== undefined);
  return {
    tokenIds: int32Blob('tokenIds', [total], tokenIds),
    lengths: int32Blob('lengths', [items.length], lengths),
    ...(hasLabels ? { labels: int32Blob('labels', [items.length], Int32Array.from(items, (item) => item.label!)) } : {}),
  };
}

/** A reply that answers another round or client than the request: dropped, never counted. */
export class StaleResultError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StaleResultError';
  }
}

/** A client's failure as data for the strategy: timeouts get `E_TIMEOUT`, the rest their error code. */
export function failureOf(clientId: string, err: unknown): ClientFailure {
  return { clientId, code: err instanceof TimeoutError ? 'E_TIMEOUT' : errorCodeOf(err), message: (err as Error).message };
}

export function toEvaluateResult(clientId: string, stats: BatchStats): EvaluateResult {
  const items = Math.max(1, stats.numLossItems);
  return { clientId, numExamples: stats.numSamples, loss: stats.lossSum / items, accuracy: stats.numCorrect / items };
}
