/**
 * FedBuff (Nguyen et al. 2022, "Federated Learning with Buffered Asynchronous Aggregation"): staleness weights and
 * the buffer that decides when to aggregate. Pure functions, no I/O, no tensors: the update type is opaque.
 *
 * A client trains from global version `base_version`; when its update arrives the server is at `version`, and
 * its staleness is `s = version − base_version` (server updates it missed). The server buffers arrivals and every
 * `K` of them aggregates `Δ = Σ_i w_i · g(s_i) · Δ_i / Σ_i w_i` (FedBuff's `(1/K) Σ g(s_i) Δ_i` when every w_i = 1),
 * then moves to `version + 1`. Since the version only moves at a flush, an arrival's staleness is the same when it
 * arrives and when it is aggregated.
 */
import { ConfigError, ErrorCode } from '../../shared/errors.js';

/**
 * How an update's weight falls with its staleness `s >= 0`:
 * - `constant`: `g(s) = 1`;
 * - `polynomial`: `g(s) = (1 + s)^-exponent` (FedBuff uses exponent 0.5, `1/sqrt(1 + s)`);
 * - `hinge`: `g(s) = 1` for `s <= cutoff`, else `1 / (slope · (s − cutoff) + 1)` (Xie et al. 2019, FedAsync;
 *   they used slope 10, cutoff 4).
 */
export type StalenessWeighting =
  | { readonly kind: 'constant' }
  | { readonly kind: 'polynomial'; readonly exponent: number }
  | { readonly kind: 'hinge'; readonly slope: number; readonly cutoff: number };

/** FedBuff's default: polynomial with exponent 0.5. */
export const FEDBUFF_WEIGHTING: StalenessWeighting = Object.freeze({ kind: 'polynomial', exponent: 0.5 });

/**
 * `g(staleness)` for a weighting (see {@link StalenessWeighting}); in (0, 1], 1 for a fresh update.
 *
 * @param staleness server versions missed, an integer >= 0.
 * @throws ConfigError E_CONFIG_INVALID for a negative or non-integer staleness or invalid weighting parameters.
 */
export function stalenessWeight(staleness: number, weighting: StalenessWeighting): number {
  if (!Number.isInteger(staleness) || staleness < 0) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `staleness ${staleness} must be an integer >= 0`);
  }
  checkWeighting(weighting);
  switch (weighting.kind) {
    case 'constant':
      return 1;
    case 'polynomial':
      return (1 + staleness) ** -weighting.exponent;
    case 'hinge':
      return staleness <= weighting.cutoff ? 1 : 1 / (weighting.slope * (staleness - weighting.cutoff) + 1);
  }
}

/** One client update as it reaches the buffer. */
export interface Arrival<U> {
  /** The update (a delta); opaque here. */
  readonly update: U;
  /** Its averaging weight before staleness: examples or tokens trained on, or 1 for plain FedBuff. Finite, >= 0. */
  readonly weight: number;
  /** Global version the client trained from. */
  readonly baseVersion: number;
}

/** Options of the buffer. */
export interface BufferOptions {
  /** K: arrivals per aggregation. Integer >= 1. */
  readonly bufferSize: number;
  /** @default {@link FEDBUFF_WEIGHTING} */
  readonly weighting?: StalenessWeighting;
  /** Arrivals staler than this are dropped, not buffered. Integer >= 0 or Infinity. @default Infinity */
  readonly maxStaleness?: number;
  /**
   * Denominator of the aggregation weights: `fedbuff` divides by `Σ w_i` (staleness shrinks the step, as in the
   * paper); `relative` by `Σ w_i · g(s_i)` (the weights sum to 1; staleness only shifts weight to fresher updates).
   * @default 'fedbuff'
   */
  readonly normalization?: 'fedbuff' | 'relative';
}

/** An arrival waiting in the buffer, with its staleness. */
export interface Buffered<U> extends Arrival<U> {
  readonly staleness: number;
}

/** The buffer between arrivals: the server's version and what waits. */
export interface BufferState<U> {
  readonly version: number;
  readonly pending: readonly Buffered<U>[];
}

/** One update's share in an aggregation. */
export interface Contribution<U> extends Buffered<U> {
  /** `g(staleness)`. */
  readonly stalenessWeight: number;
  /** The coefficient of this update in the aggregate. */
  readonly aggregationWeight: number;
}

/** An aggregation the buffer calls for: apply `Σ aggregationWeight · update` to go from `fromVersion` to `toVersion`. */
export interface Flush<U> {
  readonly fromVersion: number;
  readonly toVersion: number;
  readonly contributions: Contribution<U>[];
}

/** Why an arrival was not buffered. */
export type DropReason = 'too_stale' | 'future_version' | 'invalid_weight';

/** What one arrival does to the buffer. */
export type ArrivalOutcome<U> =
  | { readonly kind: 'buffered'; readonly state: BufferState<U> }
  | { readonly kind: 'aggregate'; readonly state: BufferState<U>; readonly flush: Flush<U> }
  | { readonly kind: 'dropped'; readonly state: BufferState<U>; readonly reason: DropReason; readonly staleness: number };

/** An empty buffer at `version`. */
export function emptyBuffer<U>(version = 0): BufferState<U> {
  return { version, pending: [] };
}

/**
 * Offer one arrival to the buffer: drop it (from a version the server has not reached, staler than
 * `maxStaleness`, or with a weight that is not finite and >= 0), buffer it, or — when it is the K-th — return the
 * aggregation and the next, empty state at `version + 1`. The input state is not modified.
 *
 * @throws ConfigError E_CONFIG_INVALID for invalid options.
 */
export function offerArrival<U>(state: BufferState<U>, arrival: Arrival<U>, options: BufferOptions): ArrivalOutcome<U> {
  const { bufferSize, weighting, maxStaleness } = resolveOptions(options);
  const staleness = state.version - arrival.baseVersion;
  if (!Number.isInteger(arrival.baseVersion) || staleness < 0) return { kind: 'dropped', state, reason: 'future_version', staleness };
  if (staleness > maxStaleness) return { kind: 'dropped', state, reason: 'too_stale', staleness };
  if (!Number.isFinite(arrival.weight) || arrival.weight < 0) return { kind: 'dropped', state, reason: 'invalid_weight', staleness };
  const pending = [...state.pending, { ...arrival, staleness }];
  if (pending.length < bufferSize) return { kind: 'buffered', state: { version: state.version, pending } };
  const flush = aggregationWeights(pending, weighting, options.normalization ?? 'fedbuff', state.version);
  return { kind: 'aggregate', state: emptyBuffer(state.version + 1), flush };
}

/**
 * Fold a sequence of arrivals through {@link offerArrival}: every aggregation in order, the drops, and the final state.
 */
export function replayArrivals<U>(
  arrivals: Iterable<Arrival<U>>,
  options: BufferOptions,
  initial: BufferState<U> = emptyBuffer(),
): { state: BufferState<U>; flushes: Flush<U>[]; dropped: { arrival: Arrival<U>; reason: DropReason; staleness: number }[] } {
  let state = initial;
  const flushes: Flush<U>[] = [];
  const dropped: { arrival: Arrival<U>; reason: DropReason; staleness: number }[] = [];
  for (const arrival of arrivals) {
    const outcome = offerArrival(state, arrival, options);
    state = outcome.state;
    if (outcome.kind === 'aggregate') flushes.push(outcome.flush);
    else if (outcome.kind === 'dropped') dropped.push({ arrival, reason: outcome.reason, staleness: outcome.staleness });
  }
  return { state, flushes, dropped };
}

/**
 * The coefficients of buffered updates: `w_i · g(s_i) / D`, `D = Σ w_i` (`fedbuff`) or `Σ w_i · g(s_i)`
 * (`relative`). When `D` is 0 (every weight 0) every coefficient is 0: the aggregate is no change.
 */
export function aggregationWeights<U>(
  pending: readonly Buffered<U>[],
  weighting: StalenessWeighting,
  normalization: 'fedbuff' | 'relative',
  version: number,
): Flush<U> {
  const discounted = pending.map((item) => ({ item, g: stalenessWeight(item.staleness, weighting) }));
  const denominator = discounted.reduce((sum, { item, g }) => sum + (normalization === 'fedbuff' ? item.weight : item.weight * g), 0);
  const contributions = discounted.map(({ item, g }) => ({
    ...item,
    stalenessWeight: g,
    aggregationWeight: denominator > 0 ? (item.weight * g) / denominator : 0,
  }));
  return { fromVersion: version, toVersion: version + 1, contributions };
}

function resolveOptions(options: BufferOptions): { bufferSize: number; weighting: StalenessWeighting; maxStaleness: number } {
  const { bufferSize } = options;
  if (!Number.isInteger(bufferSize) || bufferSize < 1) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `FedBuff buffer size (async_buffer_size) ${bufferSize} must be an integer >= 1`);
  }
  const maxStaleness = options.maxStaleness ?? Infinity;
  if (!(maxStaleness === Infinity || (Number.isInteger(maxStaleness) && maxStaleness >= 0))) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `FedBuff max staleness ${maxStaleness} must be an integer >= 0 or Infinity`);
  }
  const weighting = options.weighting ?? FEDBUFF_WEIGHTING;
  checkWeighting(weighting);
  return { bufferSize, weighting, maxStaleness };
}

function checkWeighting(weighting: StalenessWeighting): void {
  const bad = (what: string): never => {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `staleness weighting ${weighting.kind}: ${what}`);
  };
  switch (weighting.kind) {
    case 'constant':
      return;
    case 'polynomial':
      if (!Number.isFinite(weighting.exponent) || weighting.exponent < 0) bad(`exponent ${weighting.exponent} must be finite and >= 0`);
      return;
    case 'hinge':
      if (!Number.isFinite(weighting.slope) || weighting.slope < 0) bad(`slope ${weighting.slope} must be finite and >= 0`);
      if (!Number.isFinite(weighting.cutoff) || weighting.cutoff < 0) bad(`cutoff ${weighting.cutoff} must be finite and >= 0`);
      return;
    default:
      throw new ConfigError(ErrorCode.CONFIG_INVALID, `unknown staleness weighting ${JSON.stringify((weighting as { kind: unknown }).kind)}: expected constant, polynomial or hinge`);
  }
}
