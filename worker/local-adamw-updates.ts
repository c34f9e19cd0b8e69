/**
 * Worker-side AdamW for sparse (`topk`) results (`sparse_optimizer: worker`, "local preconditioning"): the worker
 * turns its own dense gradient into an AdamW update u = θ_new − θ and the coordinator adds the weighted mean of the
 * (compressed) updates linearly. Error feedback on u then telescopes exactly: over T steps the coordinator has added
 * Σ u − residual, whereas behind the coordinator's AdamW a residual held τ steps moves its weight by about one
 * lr-sized step, not τ (the normalisation of each coordinate undoes the accumulation).
 *
 * The moments live here, on the worker, and are not checkpointed: a worker that rejoins starts them afresh (its bias
 * correction counts its own updates, the learning rate follows the run's step index).
 */
import type { AdamWState, WorkerAdamWSettings } from '../shared/optimizers/index.js';
import { adamWStep, clipGlobalNorm, initAdamWState, learningRateAt } from '../shared/optimizers/index.js';
import type { NamedTensors, TensorSpec } from '../shared/tensors.js';

/** One worker's AdamW state, turning summed gradients into parameter updates. */
export class LocalAdamWUpdates {
  private readonly state: AdamWState;

  constructor(
    private readonly manifest: readonly TensorSpec[],
    private readonly settings: WorkerAdamWSettings,
  ) {
    this.state = initAdamWState(manifest);
  }

  /** Updates taken so far (the bias correction's t). */
  get localSteps(): number {
    return this.state.step;
  }

  /**
   * Momentum factor masking (DGC, Lin et al. 2018): zeroes the first moment of `name` at `indices`, the coordinates
   * whose accumulated update was just sent, so stale momentum does not keep refilling them.
   * @throws Error when `name` is not in the manifest or an index is out of range
   */
  maskFirstMoment(name: string, indices: ArrayLike<number>): void {
    const m = this.state.firstMoment.get(name);
    if (m === undefined) throw new Error(`LocalAdamWUpdates: no first moment for "${name}"`);
    for (let j = 0; j < indices.length; j++) {
      const i = indices[j];
      if (!(i >= 0 && i < m.length)) throw new Error(`LocalAdamWUpdates: index ${i} is outside "${name}" (${m.length} elements)`);
      m[i] = 0;
    }
  }

  /**
   * √v̂ of `name` (AdamW's bias-corrected second moment, the diagonal of the empirical Fisher of the mean gradient):
   * a displacement δ of coordinate i is worth about ½·v̂ᵢ·δ² of loss, so |δᵢ|·√v̂ᵢ ranks what to send.
   * Undefined before the first update.
   */
  fisherWeights(name: string): Float32Array | undefined {
    const v = this.state.secondMoment.get(name);
    if (v === undefined || this.state.secondMomentSteps === 0) return undefined;
    const correction = 1 - this.settings.adamw.beta2 ** this.state.secondMomentSteps;
    return Float32Array.from(v, (x) => Math.sqrt(x / correction));
  }

  /**
   * The AdamW update of optimizer step `step` (0-based, for the learning rate) from `gradSum`, the gradient of the
   * summed loss over `numLossItems` items: mean, clip, AdamW on a float64 copy of `params`, and the difference.
   * @throws Error when `numLossItems` is not positive or a tensor of the manifest is missing
   */
  update(step: number, params: NamedTensors, gradSum: NamedTensors, numLossItems: number): NamedTensors {
    if (!(numLossItems > 0)) throw new Error(`LocalAdamWUpdates: a result with ${numLossItems} loss-bearing items has no mean gradient`);
    const before = new Map<string, Float64Array>();
    const after = new Map<string, Float64Array>();
    const grads = new Map<string, Float64Array>();
    for (const spec of this.manifest) {
      const p = params.get(spec.name);
      const g = gradSum.get(spec.name);
      if (!p || !g) throw new Error(`LocalAdamWUpdates: no parameter or gradient for "${spec.name}"`);
      before.set(spec.name, Float64Array.from(p));
      after.set(spec.name, Float64Array.from(p));
      const mean = new Float64Array(g.length);
      for (let i = 0; i < g.length; i++) mean[i] = g[i] / numLossItems;
      grads.set(spec.name, mean);
    }
    clipGlobalNorm(grads, this.settings.maxGradNorm);
    adamWStep(after, grads, this.state, this.settings.adamw, learningRateAt(step, this.settings.schedule));
    const updates = new Map<string, Float32Array>();
    for (const [name, p] of after) {
      const p0 = before.get(name)!;
      const u = new Float32Array(p.length);
      for (let i = 0; i < u.length; i++) u[i] = p[i] - p0[i];
      updates.set(name, u);
    }
    return updates;
  }
}
