/**
 * FedAvg's rule (McMahan et al. 2017): the weighted mean of client deltas, weights being examples or tokens.
 */
import type { TensorSpec } from '../../../shared/tensors.js';
import { sizeOf } from '../../../shared/tensors.js';
import type { NamedTensors64, WeightedUpdate } from '../types.js';
import { checkUpdates, normalisedWeights } from './validate.js';

/**
 * `Σ_i w_i·Δ_i / Σ_i w_i` per tensor of `specs`, accumulated in float64.
 * @throws AggregationError E_AGGREGATION_ZERO_WEIGHT when there are no updates or the weights sum to zero.
 * @throws ShapeError for a missing, mis-sized or non-finite tensor (see {@link checkUpdates}).
 */
export function weightedMean(updates: readonly WeightedUpdate[], specs: readonly TensorSpec[]): NamedTensors64 {
  checkUpdates(updates, specs, 'weightedMean');
  const weights = normalisedWeights(updates, 'weightedMean');
  return weightedMeanUnchecked(updates, weights, specs);
}

/** The weighted mean with weights already normalised and inputs already checked (internal to aggregation/). */
export function weightedMeanUnchecked(
  updates: readonly WeightedUpdate[],
  normalised: Float64Array,
  specs: readonly TensorSpec[],
): NamedTensors64 {
  const out: NamedTensors64 = new Map();
  for (const { name, shape } of specs) {
    const acc = new Float64Array(sizeOf(shape));
    updates.forEach((update, i) => {
      const w = normalised[i];
      if (w === 0) return;
      const values = update.deltas.get(name)!;
      for (let j = 0; j < acc.length; j++) acc[j] += w * values[j];
    });
    out.set(name, acc);
  }
  return out;
}
