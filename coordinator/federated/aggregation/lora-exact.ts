/**
 * Exact LoRA aggregation (FedEx-LoRA, Singhal et al. 2024): averaging `A` and `B` separately is not the average
 * of the products, `B̄·Ā ≠ Σ w_i B_i·A_i`. The global adapter takes `Ā`, `B̄` and the difference
 * `R = s·(Σ w_i B_i·A_i − B̄·Ā)` (shape `[out, in]`) is folded into the frozen base weight, so that
 * `W + R + s·B̄·Ā = Σ w_i (W + s·B_i·A_i)`: the global layer equals the weighted mean of the client layers.
 */
import { ShapeError, ErrorCode } from '../../../shared/errors.js';
import type { TensorSpec } from '../../../shared/tensors.js';
import type { NamedTensors64, WeightedUpdate } from '../types.js';
import { loraModulesOf } from './lora-names.js';
import { checkUpdates, normalisedWeights } from './validate.js';

/** The residual of one LoRA module, to be added to its frozen base weight. */
export interface LoraResidual {
  /** Module path, e.g. `model.layers.0.self_attn.q_proj`. */
  readonly module: string;
  /** GGUF name of the base weight it folds into, e.g. `blk.0.attn_q.weight`. */
  readonly baseWeightName: string;
  /** `[out, in]`. */
  readonly shape: readonly [number, number];
  /** `s·(Σ w_i B_i·A_i − B̄·Ā)`, row-major. */
  readonly values: Float64Array;
}

/** Result of {@link exactLoraAggregate}. */
export interface ExactLoraResult {
  /** NEW global values (not deltas) of every LoRA factor in the aggregated set: `Ā`, `B̄`. */
  readonly values: NamedTensors64;
  /** One residual per LoRA module, in manifest order. */
  readonly residuals: LoraResidual[];
}

/** Add `coeff·B·A` (`B` `[out, r]`, `A` `[r, in]`) into `acc` `[out, in]`. */
function addProduct(acc: Float64Array, coeff: number, b: ArrayLike<number>, a: ArrayLike<number>, outF: number, r: number, inF: number): void {
  for (let o = 0; o < outF; o++) {
    const row = o * inF;
    for (let k = 0; k < r; k++) {
      const c = coeff * b[o * r + k];
      if (c === 0) continue;
      const ak = k * inF;
      for (let i = 0; i < inF; i++) acc[row + i] += c * a[ak + i];
    }
  }
}

/**
 * Exact aggregation of the LoRA modules among `specs`. Client factors are `current + delta` (float64).
 * @param current the global values every client started from (at least the LoRA factors of `specs`).
 * @param scale LoRA's `s` (`loraScale(spec)` in shared/adapters/lora.ts).
 * @throws AggregationError E_AGGREGATION_ZERO_WEIGHT for no updates or zero total weight; ShapeError for bad
 *   tensors or a `current` value missing or mis-sized.
 */
export function exactLoraAggregate(
  updates: readonly WeightedUpdate[],
  current: ReadonlyMap<string, Float64Array>,
  specs: readonly TensorSpec[],
  scale: number,
): ExactLoraResult {
  checkUpdates(updates, specs, 'exactLoraAggregate');
  const weights = normalisedWeights(updates, 'exactLoraAggregate');
  const values: NamedTensors64 = new Map();
  const residuals: LoraResidual[] = [];
  for (const { module, baseWeightName, a: aSpec, b: bSpec } of loraModulesOf(specs)) {
    const [r, inF] = aSpec.shape;
    const outF = bSpec.shape[0];
    const a0 = current.get(aSpec.name);
    const b0 = current.get(bSpec.name);
    if (!a0 || a0.length !== r * inF || !b0 || b0.length !== outF * r) {
      throw new ShapeError(ErrorCode.TENSOR_SHAPE, `exactLoraAggregate: current values of ${module} are missing or mis-sized`);
    }
    const aMean = new Float64Array(a0.length);
    const bMean = new Float64Array(b0.length);
    const mixed = new Float64Array(outF * inF);
    const ai = new Float64Array(a0.length);
    const bi = new Float64Array(b0.length);
    updates.forEach((update, n) => {
      const w = weights[n];
      if (w === 0) return;
      const da = update.deltas.get(aSpec.name)!;
      const db = update.deltas.get(bSpec.name)!;
      for (let j = 0; j < ai.length; j++) ai[j] = a0[j] + da[j];
      for (let j = 0; j < bi.length; j++) bi[j] = b0[j] + db[j];
      for (let j = 0; j < ai.length; j++) aMean[j] += w * ai[j];
      for (let j = 0; j < bi.length; j++) bMean[j] += w * bi[j];
      addProduct(mixed, w, bi, ai, outF, r, inF);
    });
    addProduct(mixed, -1, bMean, aMean, outF, r, inF);
    for (let j = 0; j < mixed.length; j++) mixed[j] *= scale;
    values.set(aSpec.name, aMean);
    values.set(bSpec.name, bMean);
    residuals.push({ module, baseWeightName, shape: [outF, inF], values: mixed });
  }
  return { values, residuals };
}
