/**
 * A worker process lets its old generation grow to twice what survived the last full GC before V8 starts
 * collecting it again (V8's `--heap-growing-percent=100`), instead of V8's own factor, which it derives from
 * how fast the collector ran and can fall to 1.1.
 *
 * Why: V8 starts incremental marking as soon as the room left below the old generation's limit is no more than
 * the young generation's capacity, and a worker's young generation grows to its maximum (33.6 MB on Node 20)
 * within seconds of receiving tensors. A worker holding tfjs and stories260K keeps about 57 MB alive; with the
 * factor V8 chose (about 1.4) the limit sat at 80-90 MB, 23-33 MB of room, so marking started again right
 * after each full GC, which found nothing to free: `--trace-incremental-marking` showed a marking cycle every
 * two or three 10 MB round trips, and the worker's CPU per round trip rose from about 9 to 15-21 ms. With the
 * factor at 2: no marking cycle once the model was loaded, in 400 round trips. Tensors live outside the JS heap
 * (typed arrays, wasm memory), so doubling the heap's limit costs little memory: tens of MB for this model.
 *
 * Unlike the coordinator (coordinator/gc-settings.ts), a worker keeps incremental marking: tfjs's tensors then
 * trigger atomic full GCs, and bench:train was slower without it.
 *
 * `SWARMTUNE_HEAP_GROWING_PERCENT=N` sets another percent (0: V8's own factor).
 */
import { setFlagsFromString } from 'node:v8';
import { ConfigError, ErrorCode } from '../shared/errors.js';

/** The environment variable that sets the percent (0 keeps V8's own heuristic). */
export const HEAP_GROWING_PERCENT_ENV = 'SWARMTUNE_HEAP_GROWING_PERCENT';

/** Growth of the old generation's limit over its live size after a full GC, in percent, for a worker. */
export const DEFAULT_WORKER_HEAP_GROWING_PERCENT = 100;

/** V8 caps its own factor at 4 (300%); more than that only defers collection at the cost of memory. */
const MAX_HEAP_GROWING_PERCENT = 300;

/**
 * The percent {@link HEAP_GROWING_PERCENT_ENV} asks for, or the default.
 * @throws ConfigError E_CONFIG_INVALID, naming the variable, when it is not an integer from 0 to 300.
 */
export function workerHeapGrowingPercent(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[HEAP_GROWING_PERCENT_ENV];
  if (raw === undefined || raw === '') return DEFAULT_WORKER_HEAP_GROWING_PERCENT;
  const percent = Number(raw);
  if (!Number.isInteger(percent) || percent < 0 || percent > MAX_HEAP_GROWING_PERCENT) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `${HEAP_GROWING_PERCENT_ENV} must be an integer from 0 (V8's own factor) to ${MAX_HEAP_GROWING_PERCENT}, got "${raw}"`);
  }
  return percent;
}

/**
 * Applies the worker's heap growing percent to this process. Call once, at the start of a worker process,
 * before it loads anything large; returns the percent applied (0: V8's own factor kept).
 */
export function applyWorkerGcSettings(env: NodeJS.ProcessEnv = process.env): number {
  const percent = workerHeapGrowingPercent(env);
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
  return percent;
}
