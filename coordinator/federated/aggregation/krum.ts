/**
 * Krum and Multi-Krum (Blanchard et al. 2017, "Machine Learning with Adversaries: Byzantine Tolerant Gradient
 * Descent"): score each update by the sum of squared L2 distances (over all aggregated tensors) to its
 * `n − f − 2` nearest other updates; Krum returns the best-scored update, Multi-Krum the weighted mean of the
 * `m` best. Follows Flower's `aggregate_krum` (at least one neighbour is used when `n − f − 2 < 1`).
 */
import { ConfigError, ErrorCode } from '../../../shared/errors.js';
import type { TensorSpec } from '../../../shared/tensors.js';
import type { NamedTensors64, WeightedUpdate } from '../types.js';
import { checkUpdates, normalisedWeights } from './validate.js';
import { weightedMeanUnchecked } from './weighted-mean.js';

/** What Krum chose, for the round's metrics. */
export interface KrumResult {
  readonly aggregate: NamedTensors64;
  /** Ids of the kept updates, best score first. */
  readonly selected: readonly string[];
  /** Krum score of every update, in input order. */
  readonly scores: Float64Array;
}

/** Squared L2 distance between two updates over `specs`, in float64. */
function squaredDistance(a: WeightedUpdate, b: WeightedUpdate, specs: readonly TensorSpec[]): number {
  let sum = 0;
  for (const { name } of specs) {
    const x = a.deltas.get(name)!;
    const y = b.deltas.get(name)!;
    for (let j = 0; j < x.length; j++) {
      const d = x[j] - y[j];
      sum += d * d;
    }
  }
  return sum;
}

/**
 * Krum scores: for each update, the sum of its `max(1, n − f − 2)` smallest squared distances to the others
 * (fewer when there are fewer others).
 */
export function krumScores(updates: readonly WeightedUpdate[], specs: readonly TensorSpec[], numByzantine: number): Float64Array {
  const n = updates.length;
  const dist = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) dist[i * n + j] = dist[j * n + i] = squaredDistance(updates[i], updates[j], specs);
  }
  const numClosest = Math.min(n - 1, Math.max(1, n - numByzantine - 2));
  const scores = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const others: number[] = [];
    for (let j = 0; j < n; j++) if (j !== i) others.push(dist[i * n + j]);
    others.sort((p, q) => p - q);
    for (let k = 0; k < numClosest; k++) scores[i] += others[k];
  }
  return scores;
}

/**
 * Multi-Krum: the weighted mean of the `numToKeep` best-scored updates (lowest score; ties by input order);
 * `numToKeep` 1 (or 0, Flower's "plain Krum") returns the best update itself, unweighted.
 * @param numByzantine `f`, the number of Byzantine clients tolerated (integer ≥ 0).
 * @param numToKeep `m`, clamped to the number of updates.
 * @throws ConfigError E_CONFIG_INVALID for a negative or non-integer `f` or `m`.
 * @throws AggregationError E_AGGREGATION_ZERO_WEIGHT when there are no updates or the kept ones weigh 0;
 *   ShapeError for bad tensors.
 */
export function multiKrum(
  updates: readonly WeightedUpdate[],
  specs: readonly TensorSpec[],
  numByzantine: number,
  numToKeep: number,
): KrumResult {
  if (!Number.isInteger(numByzantine) || numByzantine < 0) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `num_byzantine must be an integer ≥ 0, got ${numByzantine}`);
  }
  if (!Number.isInteger(numToKeep) || numToKeep < 0) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `num_to_keep must be an integer ≥ 0, got ${numToKeep}`);
  }
  checkUpdates(updates, specs, 'multiKrum');
  const scores = krumScores(updates, specs, numByzantine);
  const order = updates.map((_, i) => i).sort((p, q) => scores[p] - scores[q] || p - q);
  const keep = Math.min(updates.length, Math.max(1, numToKeep));
  const kept = order.slice(0, keep).map((i) => updates[i]);
  const aggregate =
    keep === 1
      ? new Map(specs.map(({ name }) => [name, Float64Array.from(kept[0].deltas.get(name)!)]))
      : weightedMeanUnchecked(kept, normalisedWeights(kept, 'multiKrum'), specs);
  return { aggregate, selected: kept.map((u) => u.clientId), scores };
}

/** Krum: the single best-scored update. See {@link multiKrum}. */
export function krum(updates: readonly WeightedUpdate[], specs: readonly TensorSpec[], numByzantine: number): KrumResult {
  return multiKrum(updates, specs, numByzantine, 1);
}
