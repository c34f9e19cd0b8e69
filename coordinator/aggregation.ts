import type { BatchStats } from '../shared/model/types.js';
import type { NamedTensors, TensorSpec } from '../shared/tensors.js';
import { sizeOf } from '../shared/tensors.js';

/** One worker's answer for its slice of a global batch: summed gradients and the counts behind them. */
export interface GradientContribution {
  readonly grads: NamedTensors;
  readonly stats: BatchStats;
}

/** Element-wise sum of several workers' gradient sums, and the sum of their counts. */
export interface SummedGradients {
  readonly gradSum: Map<string, Float64Array>;
  readonly stats: BatchStats;
}

/** All-zero batch statistics. */
export const EMPTY_STATS: BatchStats = { lossSum: 0, numSamples: 0, numLossItems: 0, numTokens: 0, numCorrect: 0 };

/** Adds two sets of batch statistics. */
export function addStats(a: BatchStats, b: BatchStats): BatchStats {
  return {
    lossSum: a.lossSum + b.lossSum,
    numSamples: a.numSamples + b.numSamples,
    numLossItems: a.numLossItems + b.numLossItems,
    numTokens: a.numTokens + b.numTokens,
    numCorrect: a.numCorrect + b.numCorrect,
  };
}

/**
 * Sums contributions in float64, in the order given (callers pass them sorted by slice so the sum is
 * deterministic whatever order the results arrived in). Pure: no I/O, no state.
 */
export function sumContributions(
  contributions: readonly GradientContribution[],
  manifest: readonly TensorSpec[],
): SummedGradients {
  const gradSum = new Map<string, Float64Array>();
  for (const spec of manifest) gradSum.set(spec.name, new Float64Array(sizeOf(spec.shape)));
  let stats = EMPTY_STATS;
  for (const contribution of contributions) {
    for (const [name, total] of gradSum) {
      const g = contribution.grads.get(name);
      if (!g) throw new Error(`sumContributions: contribution lacks "${name}"`);
      for (let i = 0; i < total.length; i++) total[i] += g[i];
    }
    stats = addStats(stats, contribution.stats);
  }
  return { gradSum, stats };
}

/**
 * Sums worker updates (θ_new − θ of each worker's own optimizer, `sparse_optimizer: worker`) weighted by each
 * contribution's loss-bearing items, in float64 in the order given: divided by the summed count it is the weighted
 * mean update, as gradients are weighted. Pure: no I/O, no state.
 */
export function sumWeightedUpdates(contributions: readonly GradientContribution[], manifest: readonly TensorSpec[]): SummedGradients {
  const summed = sumContributions([], manifest);
  let stats = EMPTY_STATS;
  for (const contribution of contributions) {
    const weight = contribution.stats.numLossItems;
    for (const [name, total] of summed.gradSum) {
      const u = contribution.grads.get(name);
      if (!u) throw new Error(`sumWeightedUpdates: contribution lacks "${name}"`);
      for (let i = 0; i < total.length; i++) total[i] += weight * u[i];
    }
    stats = addStats(stats, contribution.stats);
  }
  return { gradSum: summed.gradSum, stats };
}

/** Divides a gradient sum by the number of loss-bearing items, in place: the mean-loss gradient. */
export function scaleInPlace(grads: Map<string, Float64Array>, factor: number): void {
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] *= factor;
}
