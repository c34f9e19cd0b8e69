/**
 * A tiny classification model and client examples for the federated worker tests (not a test file itself).
 */
import type { TokenizedItem } from '../../../shared/data/types.js';
import { randomBaseWeights } from '../../../shared/model/random-weights.js';
import { TaskModel } from '../../../shared/model/task-model.js';
import { mulberry32 } from '../../../shared/random.js';
import type { NamedTensors } from '../../../shared/tensors.js';
import type { LocalTrainingOptions } from '../../../worker/local-training.js';
import { modelSpec, tinyConfig, withNonZeroB } from '../shared/model/tiny-models.js';

export const CONFIG = tinyConfig();
/** Padding id of the fixture's examples. */
export const PAD_ID = 0;

/** A fresh model over the same seeded base (seed 3): independent copies compute the same values. */
export function makeModel(): TaskModel {
  return TaskModel.create(CONFIG, randomBaseWeights(CONFIG, 3), modelSpec('classification'));
}

/** Global values with non-zero LoRA B, so that every tensor (A included) has a gradient. */
export function globalValues(model: TaskModel, seed = 1): NamedTensors {
  return withNonZeroB(model.initTrainable(seed), seed + 100);
}

/** `n` seeded classification items, 3 to 10 tokens long, labels in 0..2. */
export function makeExamples(n: number, seed: number): TokenizedItem[] {
  const rng = mulberry32(seed);
  return Array.from({ length: n }, () => {
    const length = 3 + Math.floor(rng() * 8);
    const ids = Int32Array.from({ length }, () => 1 + Math.floor(rng() * (CONFIG.vocabSize - 1)));
    return { ids, label: Math.floor(rng() * 3) };
  });
}

/** Plain SGD, one epoch, no clipping, no proximal term. */
export function sgdConfig(overrides: Partial<LocalTrainingOptions> = {}): LocalTrainingOptions {
  return {
    localEpochs: 1,
    learningRate: 0.1,
    batchSize: 4,
    optimizer: 'sgd',
    momentum: 0,
    weightDecay: 0,
    proximalMu: 0,
    maxGradNorm: 0,
    seed: 7,
    ...overrides,
  };
}
