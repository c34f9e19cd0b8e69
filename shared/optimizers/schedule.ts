/** Learning-rate schedules, as Hugging Face `get_scheduler` defines them. */
export const LrSchedulerType = { LINEAR: 'linear', CONSTANT: 'constant' } as const;
export type LrSchedulerType = (typeof LrSchedulerType)[keyof typeof LrSchedulerType];

export interface LrScheduleOptions {
  readonly baseLearningRate: number;
  readonly type: LrSchedulerType;
  /** Optimizer steps of linear warm-up from 0. */
  readonly warmupSteps: number;
  /** Total optimizer steps of the run. */
  readonly totalSteps: number;
}

/**
 * Learning rate for the optimizer step with 0-based index `step` (HF's `current_step`): linear warm-up from 0
 * over `warmupSteps`, then constant or linear decay to 0 at `totalSteps`.
 */
export function learningRateAt(step: number, options: LrScheduleOptions): number {
  const { baseLearningRate, type, warmupSteps, totalSteps } = options;
  if (step < warmupSteps) return (baseLearningRate * step) / Math.max(1, warmupSteps);
  if (type === LrSchedulerType.CONSTANT) return baseLearningRate;
  return baseLearningRate * Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
}

/** Warm-up steps from HF's two knobs: an explicit count wins over the ratio. */
export function resolveWarmupSteps(warmupSteps: number, warmupRatio: number, totalSteps: number): number {
  return warmupSteps > 0 ? warmupSteps : Math.ceil(warmupRatio * totalSteps);
}
