/**
 * Faults a test or a chaos drill injects into a real worker process through its environment, so that the
 * coordinator's handling of slow clients is exercised over real sockets and processes.
 *
 * `SWARMTUNE_FAULT_SLOW_FIT="round=R,delay_ms=D"`: the worker holds its `fit_result` for round R back by D
 * milliseconds after computing it (a straggler); other work goes on meanwhile.
 * `SWARMTUNE_FAULT_CRASH_FIT="round=R"`: the worker process kills itself with SIGKILL when the `fit_request` of
 * round R arrives (a machine lost mid-round: no close frame, no goodbye).
 * `SWARMTUNE_FAULT_NAN_RATE="P"` or `"P,seed=S"`: each gradient or fit result is replaced, with probability P
 * (seeded, @default seed 1), by NaN values of the same names and shapes (a worker with broken numerics).
 * `SWARMTUNE_FAULT_BLOCK_MS="D"`: every gradient request busy-waits D milliseconds synchronously before computing
 * (a step that blocks the event loop, so no ping is answered meanwhile). Unset: no fault.
 */
import { ConfigError, ErrorCode } from '../shared/errors.js';
import { float32Blob } from '../shared/codec.js';
import type { TensorBlob } from '../shared/protocol/messages.js';
import { mulberry32 } from '../shared/random.js';
import { sizeOf } from '../shared/tensors.js';

/** Environment variable naming the slow-fit fault. */
export const SLOW_FIT_ENV = 'SWARMTUNE_FAULT_SLOW_FIT';

/** Environment variable naming the crash-on-fit fault. */
export const CRASH_FIT_ENV = 'SWARMTUNE_FAULT_CRASH_FIT';

/** Environment variable naming the NaN-results fault. */
export const NAN_RATE_ENV = 'SWARMTUNE_FAULT_NAN_RATE';

/** Environment variable naming the blocking-step fault. */
export const BLOCK_MS_ENV = 'SWARMTUNE_FAULT_BLOCK_MS';

/** Faults injected into this worker's rounds and steps. */
export interface WorkerFaults {
  readonly slowFit?: SlowFitFault;
  /** Round whose `fit_request` makes the process SIGKILL itself. */
  readonly crashFitRound?: number;
  /** Results replaced by NaN tensors: probability per result in [0, 1] and the seed of the draws. */
  readonly nanResults?: { readonly rate: number; readonly seed: number };
  /** Milliseconds each gradient request blocks the event loop before computing. */
  readonly blockMs?: number;
}

/**
 * Every fault configured in `env`.
 * @throws ConfigError E_CONFIG_INVALID when a variable is set but malformed
 */
export function workerFaults(env: NodeJS.ProcessEnv = process.env): WorkerFaults {
  const crash = env[CRASH_FIT_ENV];
  let crashFitRound: number | undefined;
  if (crash !== undefined && crash !== '') {
    const match = /^round=(\d+)$/.exec(crash.trim());
    if (!match) throw new ConfigError(ErrorCode.CONFIG_INVALID, `${CRASH_FIT_ENV}="${crash}": expected "round=R" with an integer R >= 0`);
    crashFitRound = Number(match[1]);
  }
  return { slowFit: slowFitFault(env), crashFitRound, nanResults: nanResultsFault(env), blockMs: blockFault(env) };
}

/**
 * The blocking-step fault configured in `env`: milliseconds, if any.
 * @throws ConfigError E_CONFIG_INVALID when the variable is set but is not an integer >= 0
 */
export function blockFault(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env[BLOCK_MS_ENV];
  if (raw === undefined || raw === '') return undefined;
  if (!/^\s*\d+\s*$/.test(raw)) throw new ConfigError(ErrorCode.CONFIG_INVALID, `${BLOCK_MS_ENV}="${raw}": expected an integer number of milliseconds >= 0`);
  return Number(raw);
}

/** Busy-waits `durationMs` milliseconds without yielding: timers, pings and frames wait until it returns. */
export function blockEventLoop(durationMs: number): void {
  const until = performance.now() + durationMs;
  while (performance.now() < until) {
    // Spinning on purpose: the fault is a step that holds the event loop.
  }
}

/**
 * The NaN-results fault configured in `env`, if any.
 * @throws ConfigError E_CONFIG_INVALID when the variable is set but malformed
 */
export function nanResultsFault(env: NodeJS.ProcessEnv = process.env): WorkerFaults['nanResults'] {
  const raw = env[NAN_RATE_ENV];
  if (raw === undefined || raw === '') return undefined;
  const match = /^\s*([0-9.eE+-]+)\s*(?:,\s*seed=(\d+)\s*)?$/.exec(raw);
  const rate = match ? Number(match[1]) : Number.NaN;
  if (!match || !(rate >= 0 && rate <= 1)) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `${NAN_RATE_ENV}="${raw}": expected "P" or "P,seed=S" with P in [0, 1] and an integer S`);
  }
  return { rate, seed: match[2] === undefined ? 1 : Number(match[2]) };
}

/**
 * A draw per result: `poison(blobs)` returns `blobs` unchanged, or (with the fault's probability) NaN float32
 * tensors of the same names and shapes. No fault: always unchanged.
 */
export function nanPoisoner(fault: WorkerFaults['nanResults']): (blobs: readonly TensorBlob[]) => readonly TensorBlob[] {
  if (!fault || fault.rate === 0) return (blobs) => blobs;
  const rng = mulberry32(fault.seed);
  return (blobs) => (rng() < fault.rate ? blobs.map((b) => float32Blob(b.name, b.shape, new Float32Array(sizeOf(b.shape)).fill(Number.NaN))) : blobs);
}

/** A straggler fault: hold back the fit result of one round. */
export interface SlowFitFault {
  readonly round: number;
  readonly delayMs: number;
}

/**
 * The slow-fit fault configured in `env`, if any.
 * @throws ConfigError E_CONFIG_INVALID when the variable is set but malformed (naming it and the expected form)
 */
export function slowFitFault(env: NodeJS.ProcessEnv = process.env): SlowFitFault | undefined {
  const raw = env[SLOW_FIT_ENV];
  if (raw === undefined || raw === '') return undefined;
  const fields = Object.fromEntries(raw.split(',').map((pair) => pair.split('=').map((s) => s.trim())));
  const round = Number(fields.round);
  const delayMs = Number(fields.delay_ms);
  if (!Number.isInteger(round) || round < 0 || !Number.isFinite(delayMs) || delayMs < 0) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `${SLOW_FIT_ENV}="${raw}": expected "round=R,delay_ms=D" with integers R >= 0 and D >= 0`);
  }
  return { round, delayMs };
}
