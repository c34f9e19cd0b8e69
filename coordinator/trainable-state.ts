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
  ) {
    this.manifest = manifest;
    this.params = new Map(manifest.map((spec) => [spec.name, Float64Array.from(initial.get(spec.name)!)]));
    this.optimizerState = initAdamWState(manifest);
  }

  /** Number of optimizer steps applied so far. */
  get step(): number {
    return this.optimizerState.step;
  }

  /** Float32 copies of the current weights, as workers compute with them. */
  paramsFloat32(): NamedTensors {
    return new Map([...this.params].map(([name, p]) => [name, Float32Array.from(p)]));
  }

  /**
   * Applies one optimizer step from a global gradient sum: mean over the loss-bearing items of the whole
   * global batch (so N workers with batch b equal one process with batch N·b), clip, AdamW.
   */
  applyGradients(summed: SummedGradients): StepReport {
    const { gradSum, stats } = summed;
    if (stats.numLossItems <= 0) throw new Error('applyGradients: the global batch has no loss-bearing items');
    const step = this.optimizerState.step;
    scaleInPlace(gradSum, 1 / stats.numLossItems);
    const frozen = step >= this.freezeSecondMomentAtStep;
    const gradNorm = clipGlobalNorm(gradSum, this.maxGradNorm);
    const learningRate = learningRateAt(step, this.schedule);
    adamWStep(this.params, gradSum, this.optimizerState, this.optimizer, learningRate, frozen);
    this.version += 1;
    return { step, learningRate, gradNorm, loss: stats.lossSum / stats.numLossItems };
  }
}
