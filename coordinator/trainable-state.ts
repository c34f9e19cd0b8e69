import type { AdamWOptions, AdamWState, LrScheduleOptions } from '../shared/optimizers/index.js';
import { adamWStep, clipGlobalNorm, initAdamWState, learningRateAt } from '../shared/optimizers/index.js';
import type { NamedTensors, TensorSpec } from '../shared/tensors.js';
import type { SummedGradients } from './aggregation.js';
import { scaleInPlace } from './aggregation.js';

/** What one optimizer step did, for the metrics log. */
export interface StepReport {
  /** 0-based index of the step just applied. */
  readonly step: number;
  readonly learningRate: number;
  /** Global L2 norm of the mean gradient before clipping. */
  readonly gradNorm: number;
  /** Mean loss over the global batch, in nats. */
  readonly loss: number;
}

/** {@link TrainableState} as data (what a checkpoint stores). */
export interface TrainableStateSnapshot {
  readonly version: number;
  readonly params: Readonly<Record<string, Float64Array>>;
  readonly adamw: {
    readonly step: number;
    readonly secondMomentSteps: number;
    readonly m: Readonly<Record<string, Float64Array>>;
    readonly v: Readonly<Record<string, Float64Array>>;
  };
}

/**
 * The single writer of the global trainable state: float64 master weights, AdamW moments, the step counter
 * and the learning-rate schedule. Workers see float32 copies of the weights.
 */
export class TrainableState {
  readonly manifest: readonly TensorSpec[];
  readonly params: Map<string, Float64Array>;
  readonly optimizerState: AdamWState;
  /** Incremented on every change of `params`, so workers can tell whether theirs are current. */
  version = 0;

  constructor(
    manifest: readonly TensorSpec[],
    initial: NamedTensors,
    private readonly optimizer: AdamWOptions,
    private readonly schedule: LrScheduleOptions,
    private readonly maxGradNorm: number,
    /**
     * Optimizer step index from which AdamW's second moment is frozen ({@link adamWStep}'s 1-bit-Adam mode), for
     * sparse gradients with error feedback. @default Infinity (never)
     */
    private readonly freezeSecondMomentAtStep = Number.POSITIVE_INFINITY,
    /**
     * `adamw`: results are gradient sums and this state steps AdamW on their mean. `updates` (`sparse_optimizer:
     * worker`): results are the workers' own AdamW updates, already multiplied by their loss-bearing item counts
     * ({@link sumWeightedUpdates}), and their weighted mean is added as it is. @default 'adamw'
     */
    readonly updateRule: 'adamw' | 'updates' = 'adamw',
  ) {
    this.manifest = manifest;
    this.params = new Map(manifest.map((spec) => [spec.name, Float64Array.from(initial.get(spec.name)!)]));
    this.optimizerState = initAdamWState(manifest);
  }

  /** Number of optimizer steps applied so far. */
  get step(): number {
    return this.optimizerState.step;
  }

  /** A copy of everything that defines the state (float64 weights, AdamW moments and counters, version), for checkpoints. */
  exportState(): TrainableStateSnapshot {
    const copy = (m: Map<string, Float64Array>) => Object.fromEntries([...m].map(([name, v]) => [name, Float64Array.from(v)]));
    const o = this.optimizerState;
    return { version: this.version, params: copy(this.params), adamw: { step: o.step, secondMomentSteps: o.secondMomentSteps, m: copy(o.firstMoment), v: copy(o.secondMoment) } };
  }

  /**
   * Puts back a state from {@link exportState} (read from a checkpoint), value for value.
   * @throws Error when a tensor is missing or has another length than the manifest says
   */
  restoreState(snapshot: TrainableStateSnapshot): void {
    const fill = (target: Map<string, Float64Array>, source: Readonly<Record<string, ArrayLike<number>>>, what: string) => {
      for (const [name, values] of target) {
        const saved = source[name];
        if (!saved || saved.length !== values.length) throw new Error(`restoreState: ${what} "${name}" is missing or has ${saved?.length} values, expected ${values.length}`);
        values.set(saved);
      }
    };
    fill(this.params, snapshot.params, 'parameter');
    fill(this.optimizerState.firstMoment, snapshot.adamw.m, 'AdamW first moment');
    fill(this.optimizerState.secondMoment, snapshot.adamw.v, 'AdamW second moment');
    this.optimizerState.step = snapshot.adamw.step;
    this.optimizerState.secondMomentSteps = snapshot.adamw.secondMomentSteps;
    this.version = snapshot.version;
  }

  /** Float32 copies of the current weights, as workers compute with them. */
  paramsFloat32(): NamedTensors {
    return new Map([...this.params].map(([name, p]) => [name, Float32Array.from(p)]));
  }

  /**
   * Applies one optimizer step from a global gradient sum: mean over the loss-bearing items of the whole
   * global batch (so N workers with batch b equal one process with batch N·b), clip, AdamW. With `updateRule`
   * `updates` the sum is of item-weighted worker updates instead: their weighted mean is added linearly.
   */
  applyGradients(summed: SummedGradients): StepReport {
    const { gradSum, stats } = summed;
    if (stats.numLossItems <= 0) throw new Error('applyGradients: the global batch has no loss-bearing items');
    const step = this.optimizerState.step;
    scaleInPlace(gradSum, 1 / stats.numLossItems);
    if (this.updateRule === 'updates') return this.applyUpdates(summed, step);
    const frozen = step >= this.freezeSecondMomentAtStep;
    const gradNorm = clipGlobalNorm(gradSum, this.maxGradNorm);
    const learningRate = learningRateAt(step, this.schedule);
    adamWStep(this.params, gradSum, this.optimizerState, this.optimizer, learningRate, frozen);
    this.version += 1;
    return { step, learningRate, gradNorm, loss: stats.lossSum / stats.numLossItems };
  }

  /**
   * θ ← θ + the weighted mean update (already scaled), linearly, so that error feedback's delayed mass moves each
   * weight as much as it would have on time. The moments live on the workers: the step counter advances, the
   * coordinator's stay zero. Its report's `gradNorm` is the L2 norm of the applied update (no gradient is seen here)
   * and `learningRate` the schedule's rate for the step.
   */
  private applyUpdates(summed: SummedGradients, step: number): StepReport {
    let sumOfSquares = 0;
    for (const [name, p] of this.params) {
      const u = summed.gradSum.get(name)!;
      for (let i = 0; i < p.length; i++) {
        p[i] += u[i];
        sumOfSquares += u[i] * u[i];
      }
    }
    this.optimizerState.step += 1;
    this.version += 1;
    const { stats } = summed;
    return { step, learningRate: learningRateAt(step, this.schedule), gradNorm: Math.sqrt(sumOfSquares), loss: stats.lossSum / stats.numLossItems };
  }
}
