/**
 * Input checks shared by every aggregation rule: each update carries every tensor of the aggregated set with its
 * manifest size and only finite values; weights are finite and non-negative and do not sum to zero.
 */
import { AggregationError, ErrorCode, ShapeError } from '../../../shared/errors.js';
import type { TensorSpec } from '../../../shared/tensors.js';
import { sizeOf } from '../../../shared/tensors.js';
import type { WeightedUpdate } from '../types.js';

/**
 * Throw unless every update holds every tensor of `specs` with the right length and finite values.
 * Tensors an update holds beyond `specs` are ignored (e.g. LoRA A factors under freeze-A).
 * @throws AggregationError E_AGGREGATION_ZERO_WEIGHT when `updates` is empty.
 * @throws ShapeError E_TENSOR_NAME (missing tensor), E_TENSOR_SHAPE (wrong length), E_TENSOR_NON_FINITE, each naming
 *   the client and the tensor.
 */
export function checkUpdates(updates: readonly WeightedUpdate[], specs: readonly TensorSpec[], where: string): void {
  if (updates.length === 0) throw new AggregationError(ErrorCode.AGGREGATION_ZERO_WEIGHT, `${where}: no client updates to aggregate`);
  for (const update of updates) {
    for (const { name, shape } of specs) {
      const values = update.deltas.get(name);
      if (!values) throw new ShapeError(ErrorCode.TENSOR_NAME, `${where}: client "${update.clientId}" sent no tensor "${name}"`);
      const expected = sizeOf(shape);
      if (values.length !== expected) {
        throw new ShapeError(
          ErrorCode.TENSOR_SHAPE,
          `${where}: client "${update.clientId}" tensor "${name}" has ${values.length} values, expected ${expected} ([${shape.join(', ')}])`,
        );
      }
      for (let i = 0; i < values.length; i++) {
        if (!Number.isFinite(values[i])) {
          throw new ShapeError(
            ErrorCode.TENSOR_NON_FINITE,
            `${where}: client "${update.clientId}" tensor "${name}" holds ${values[i]} at index ${i}`,
          );
        }
      }
    }
  }
}

/**
 * The weights normalised to sum to 1 (float64).
 * @throws AggregationError E_AGGREGATION_ZERO_WEIGHT when there are none or they sum to zero.
 * @throws ShapeError E_TENSOR_NON_FINITE when a weight is negative or not finite, naming the client.
 */
export function normalisedWeights(updates: readonly WeightedUpdate[], where: string): Float64Array {
  let total = 0;
  for (const { clientId, weight } of updates) {
    if (!Number.isFinite(weight) || weight < 0) {
      throw new ShapeError(ErrorCode.TENSOR_NON_FINITE, `${where}: client "${clientId}" has weight ${weight}; expected a finite number ≥ 0`);
    }
    total += weight;
  }
  if (!(total > 0)) {
    throw new AggregationError(
      ErrorCode.AGGREGATION_ZERO_WEIGHT,
      `${where}: the ${updates.length} update(s) have total weight 0 (no examples or tokens): nothing to average`,
    );
  }
  return Float64Array.from(updates, (u) => u.weight / total);
}
