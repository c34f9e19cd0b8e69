export { adamWStep, initAdamWState, type AdamWOptions, type AdamWState } from './adamw.js';
export { learningRateAt, resolveWarmupSteps, LrSchedulerType, type LrScheduleOptions } from './schedule.js';
export { clipGlobalNorm } from './clip.js';
