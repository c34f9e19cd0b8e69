/**
 * Centered clipping (Karimireddy, He & Jaggi 2021, "Learning from History for Byzantine Robust Optimization"):
 * starting from a reference `v` (the previous round's global update, or zero), iterate
 * `v ← v + (1/n)·Σ_i clip_τ(x_i − v)` with `clip_τ(z) = z·min(1, τ/‖z‖)`, the norm taken over all aggregated
 * tensors together. One outlier moves `v` by at most `τ/n` per iteration, however large it is.
 */
import { ConfigError, ErrorCode, ShapeError } from '../../../shared/errors.js';
import type { TensorSpec } from '../../../shared/tensors.js';
import { sizeOf } from '../../../shared/tensors.js';
import type { NamedTensors64, WeightedUpdate } from '../types.js';
import { checkUpdates } from './validate.js';

/** Centered clipping's parameters. */
export interface CenteredClippingOptions {
  /** `τ`, the clipping radius in the deltas' L2 norm (all tensors together); > 0. */
  readonly radius: number;
  /** `L`, the number of iterations; integer ≥ 1. */
  readonly iterations: number;
  /** Starting point `v₀` (e.g. the previous global update); zero when absent. Not modified. */
  readonly start?: ReadonlyMap<string, Float64Array>;
}

/**
 * Centered clipping over the deltas, unweighted as in the paper.
 * @throws ConfigError E_CONFIG_INVALID for a non-positive radius or iteration count.
 * @throws ShapeError when `start` lacks a tensor or has the wrong size; see also {@link checkUpdates}.
 * @throws AggregationError E_AGGREGATION_ZERO_WEIGHT when there are no updates.
 */
export function centeredClipping(
  updates: readonly WeightedUpdate[],
  specs: readonly TensorSpec[],
  options: CenteredClippingOptions,
): NamedTensors64 {
  const { radius, iterations, start } = options;
  if (!(radius > 0) || !Number.isFinite(radius)) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `clipping_radius must be a positive number, got ${radius}`);
  }
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `clipping_iterations must be an integer ≥ 1, got ${iterations}`);
  }
  checkUpdates(updates, specs, 'centeredClipping');
  const v: NamedTensors64 = new Map();
  for (const { name, shape } of specs) {
    const size = sizeOf(shape);
    const s = start?.get(name);
    if (start && (!s || s.length !== size)) {
      throw new ShapeError(ErrorCode.TENSOR_SHAPE, `centeredClipping: start point tensor "${name}" is missing or not ${size} values`);
    }
    v.set(name, s ? Float64Array.from(s) : new Float64Array(size));
  }
  const n = updates.length;
  for (let iter = 0; iter < iterations; iter++) {
    const step: NamedTensors64 = new Map(specs.map(({ name, shape }) => [name, new Float64Array(sizeOf(shape))]));
    for (const update of updates) {
      let sq = 0;
      for (const { name } of specs) {
        const x = update.deltas.get(name)!;
        const c = v.get(name)!;
        for (let j = 0; j < x.length; j++) sq += (x[j] - c[j]) ** 2;
      }
      const norm = Math.sqrt(sq);
      const factor = norm > radius ? radius / norm : 1;
      for (const { name } of specs) {
        const x = update.deltas.get(name)!;
        const c = v.get(name)!;
        const acc = step.get(name)!;
        for (let j = 0; j < x.length; j++) acc[j] += (factor * (x[j] - c[j])) / n;
      }
    }
    for (const { name } of specs) {
      const c = v.get(name)!;
      const acc = step.get(name)!;
      for (let j = 0; j < c.length; j++) c[j] += acc[j];
    }
  }
  return v;
}
