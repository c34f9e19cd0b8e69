/**
 * Randomly initialised base weights for a {@link LlamaConfig}, built in memory: for tests and benchmarks that need a
 * model of a given shape and no file.
 */
import { mulberry32, randomNormal } from '../random.js';
import { expectedBaseShapes } from './llama-config.js';
import type { BaseWeights, LlamaConfig } from './types.js';

/** Options of {@link randomBaseWeights}. */
export interface RandomWeightsOptions {
  /** Standard deviation of every matrix (LLaMA's `initializer_range`). @default 0.02 */
  readonly std?: number;
  /** Also emit a separate `output.weight` (untied); when false the output projection is tied to the embedding. @default false */
  readonly untiedOutput?: boolean;
}

/**
 * Weights by GGUF name, deterministic in `seed`: matrices from N(0, std²), norm gains 1. Draws follow the
 * name order of `expectedBaseShapes`, so a given seed always gives the same model.
 */
export function randomBaseWeights(config: LlamaConfig, seed: number, options: RandomWeightsOptions = {}): BaseWeights {
  const std = options.std ?? 0.02;
  const rng = mulberry32(seed);
  const shapes = expectedBaseShapes(config);
  if (options.untiedOutput) shapes.set('output.weight', [config.vocabSize, config.dim]);
  const weights: BaseWeights = new Map();
  for (const [name, shape] of shapes) {
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith('norm.weight')) values.fill(1);
    else for (let i = 0; i < values.length; i++) values[i] = std * randomNormal(rng);
    weights.set(name, values);
  }
  return weights;
}
