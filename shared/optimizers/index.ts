export { adamWStep, initAdamWState, type AdamWOptions, type AdamWState } from './adamw.js';
export { learningRateAt, resolveWarmupSteps, LrSchedulerType, type LrScheduleOptions } from './schedule.js';
export { clipGlobalNorm } from './clip.js';
export { DEFAULT_SGD_OPTIONS, initSgdState, sgdStep, validateSgdOptions, type SgdOptions, type SgdState } from './sgd.js';
export type { WorkerAdamWSettings } from './worker-adamw-settings.js';
