/**
 * Seeded client sampling, as Flower's `configure_fit` sizes it: `max(floor(n·fraction), minClients)` of the
 * `n` available clients, none while fewer than `minAvailable` (or fewer than the sample size) are available.
 */
import type { Rng } from '../../shared/random.js';

/** How many clients a round samples. */
export interface SamplingOptions {
  /** Fraction of the available clients to sample, in [0, 1]. */
  readonly fraction: number;
  /** Lower bound on the sample size. */
  readonly minClients: number;
  /** No sample at all while fewer clients than this are available. */
  readonly minAvailable: number;
}

/** The sample size for `numAvailable` clients, or 0 when the round cannot start (not enough clients). */
export function sampleSize(numAvailable: number, options: SamplingOptions): number {
  const size = Math.max(Math.floor(numAvailable * options.fraction), options.minClients);
  if (numAvailable < options.minAvailable || numAvailable < size || size <= 0) return 0;
  return size;
}

/**
 * A uniform sample without replacement of the available client ids: the ids are sorted first, so the result
 * depends only on the set of ids and the state of `rng` (a partial Fisher–Yates shuffle draws `size` numbers).
 * @returns the sampled ids in draw order; empty when {@link sampleSize} is 0.
 */
export function sampleClients(available: readonly string[], options: SamplingOptions, rng: Rng): string[] {
  const ids = [...new Set(available)].sort();
  const size = sampleSize(ids.length, options);
  for (let i = 0; i < size; i++) {
    const j = i + Math.floor(rng() * (ids.length - i));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  return ids.slice(0, size);
}
