import type { AdamWOptions } from './adamw.js';
import type { LrScheduleOptions } from './schedule.js';

/**
 * What a worker needs to step AdamW exactly as the coordinator would (`sparse_optimizer: worker`): the run's AdamW
 * hyper-parameters, learning-rate schedule and clipping. The coordinator sends it in `welcome`
 * (`settings.worker_adamw`); plain JSON data.
 */
export interface WorkerAdamWSettings {
  readonly adamw: AdamWOptions;
  readonly schedule: LrScheduleOptions;
  /** Global-norm clipping of the worker's own mean gradient; 0 or less disables it. */
  readonly maxGradNorm: number;
  /**
   * Compute each gradient at θ + this worker's own error-feedback residual (the virtual iterate that dense AdamW
   * would have reached), not at θ, so a coordinate waiting for its slot is not pushed past its optimum.
   * @default false
   */
  readonly lookahead?: boolean;
  /** Send the whole update plus residual (dense fp32) at the run's last step, so no residual is left behind. @default false */
  readonly finalFlush?: boolean;
  /** Zero AdamW's first moment at the coordinates a result sent (DGC's momentum factor masking). @default false */
  readonly momentumMasking?: boolean;
  /** Multiply every error-feedback residual by this after each result (1 keeps them whole). In [0, 1]. @default 1 */
  readonly residualDecay?: number;
  /** Rank topk entries by |δ|·√v̂ of this worker's AdamW (`fisher`) rather than by |δ|. @default 'magnitude' */
  readonly selection?: 'magnitude' | 'fisher';
}
