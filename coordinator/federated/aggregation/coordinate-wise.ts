/**
 * Coordinate-wise robust rules: FedMedian (Yin et al. 2018) and FedTrimmedAvg (trimmed mean, `trim_fraction` of
 * the clients cut from each side per coordinate), both unweighted as in Flower's `aggregate_median` and
 * `aggregate_trimmed_avg`.
 */
import { ConfigError, ErrorCode } from '../../../shared/errors.js';
import type { TensorSpec } from '../../../shared/tensors.js';
import { sizeOf } from '../../../shared/tensors.js';
import type { NamedTensors64, WeightedUpdate } from '../types.js';
import { checkUpdates } from './validate.js';

/** Apply `reduce` to the sorted column of each coordinate (`column` holds one value per client, ascending). */
function perCoordinate(
  updates: readonly WeightedUpdate[],
  specs: readonly TensorSpec[],
  reduce: (sortedColumn: Float64Array) => number,
): NamedTensors64 {
  const out: NamedTensors64 = new Map();
  const column = new Float64Array(updates.length);
  for (const { name, shape } of specs) {
    const acc = new Float64Array(sizeOf(shape));
    const tensors = updates.map((u) => u.deltas.get(name)!);
    for (let j = 0; j < acc.length; j++) {
      for (let i = 0; i < tensors.length; i++) column[i] = tensors[i][j];
      column.sort();
      acc[j] = reduce(column);
    }
    out.set(name, acc);
  }
  return out;
}

/**
 * Coordinate-wise median of the deltas (mean of the two middle values for an even count), weights ignored.
 * @throws AggregationError E_AGGREGATION_ZERO_WEIGHT when there are no updates; ShapeError for bad tensors.
 */
export function coordinateMedian(updates: readonly WeightedUpdate[], specs: readonly TensorSpec[]): NamedTensors64 {
  checkUpdates(updates, specs, 'coordinateMedian');
  const n = updates.length;
  const mid = n >> 1;
  return perCoordinate(updates, specs, (c) => (n % 2 === 1 ? c[mid] : (c[mid - 1] + c[mid]) / 2));
}

/**
 * Coordinate-wise trimmed mean: per coordinate drop the `floor(trimFraction·n)` lowest and as many highest values,
 * average the rest (scipy's `trim_mean`, as Flower uses it), weights ignored.
 * @param trimFraction fraction cut from EACH side, in [0, 0.5).
 * @throws ConfigError E_CONFIG_INVALID for a fraction outside [0, 0.5).
 * @throws AggregationError E_AGGREGATION_ZERO_WEIGHT when there are no updates; ShapeError for bad tensors.
 */
export function trimmedMean(updates: readonly WeightedUpdate[], specs: readonly TensorSpec[], trimFraction: number): NamedTensors64 {
  if (!(trimFraction >= 0 && trimFraction < 0.5)) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `trim_fraction must be in [0, 0.5), got ${trimFraction}`);
  }
  checkUpdates(updates, specs, 'trimmedMean');
  const cut = Math.floor(trimFraction * updates.length);
  const kept = updates.length - 2 * cut;
  return perCoordinate(updates, specs, (c) => {
    let sum = 0;
    for (let i = cut; i < c.length - cut; i++) sum += c[i];
    return sum / kept;
  });
}
