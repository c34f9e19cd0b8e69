/**
 * A worker's life across connections (RELIABILITY.md S3 rejoin, S4): run a session; when the connection is lost
 * for a reason worth dialling again (`isReconnectable`: dropped, heartbeat timeout, stalled, coordinator going
 * away), wait a jittered backoff, dial again with {@link backoffDelayMs} between attempts, and rejoin under the
 * worker id the coordinator assigned, keeping the loaded model (worker/model-cache.ts). It ends on `stop`, on a
 * close not worth retrying (normal, quarantined 4006, replaced 4007, protocol errors), on a refusal (auth, TLS,
 * version: thrown by the dial), when the attempts or the patience run out, or when `signal` aborts.
 */
import { isReconnectable } from '../shared/protocol/close-codes.js';
import { describeClose, type Transport } from '../shared/transport.js';
import { ErrorCode, OrchestratorError } from '../shared/errors.js';
import { backoffDelayMs, type ReconnectOptions, type RetryInfo } from './transport-ws.js';
import type { WorkerOutcome } from './worker-runtime.js';

/** How hard a worker tries to get back after a lost connection. */
export interface RejoinPolicy {
  /** Dial attempts after each loss (0 disables rejoining). @default 20 */
  readonly maxAttempts?: number;
  /** Longest time spent getting back after one loss, in milliseconds (0: no limit beyond the attempts). @default 300_000 */
  readonly patienceMs?: number;
  /** Backoff delays (before jitter): first and cap, in milliseconds. @default 200, 5000 */
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
}

/** @see RejoinPolicy */
export const DEFAULT_REJOIN_POLICY: Required<RejoinPolicy> = { maxAttempts: 20, patienceMs: 300_000, initialDelayMs: 200, maxDelayMs: 5_000 };

/** What {@link runWithRejoin} needs from its caller. */
export interface RejoinDeps {
  /** Dials the coordinator, retrying per `reconnect`; rejects with the last error, or at once on a refusal. */
  readonly dial: (reconnect: ReconnectOptions, signal: AbortSignal, onRetry: (info: RetryInfo) => void) => Promise<Transport>;
  /** Runs one session on `transport`, rejoining under `workerId` when given. */
  readonly session: (transport: Transport, workerId: string | undefined) => Promise<WorkerOutcome>;
  /** Called with each open transport (so a signal handler can close it). */
  readonly onTransport?: (transport: Transport) => void;
  /** The id to join under first. @default a new id from the coordinator */
  readonly workerId?: string;
  /** The id the coordinator assigned in the last session's `welcome` (read after each session). */
  readonly assignedWorkerId: () => string | undefined;
  readonly log: (line: string) => void;
  /** Aborts a wait or a dial (shutdown). */
  readonly signal: AbortSignal;
  /** Jitter source. @default Math.random */
  readonly random?: () => number;
}

/** How {@link runWithRejoin} ended. */
export type RejoinOutcome =
  | { readonly kind: 'stopped'; readonly reason: string; readonly sessions: number }
  | { readonly kind: 'lost'; readonly why: string; readonly sessions: number }
  | { readonly kind: 'aborted'; readonly sessions: number };

/**
 * Runs sessions until one ends for good (see the module comment). `transport` is the first, already open
 * connection.
 * @throws what `dial` or `session` throw for a refusal (auth, TLS, version, quarantined id, model mismatch)
 */
export async function runWithRejoin(transport: Transport, policy: RejoinPolicy, deps: RejoinDeps): Promise<RejoinOutcome> {
  const { maxAttempts, patienceMs, initialDelayMs, maxDelayMs } = { ...DEFAULT_REJOIN_POLICY, ...policy };
  let current = transport;
  let workerId = deps.workerId;
  for (let sessions = 1; ; sessions++) {
    deps.onTransport?.(current);
    const outcome = await deps.session(current, workerId);
    workerId = deps.assignedWorkerId() ?? workerId;
    if (outcome.kind === 'stopped') return { kind: 'stopped', reason: outcome.reason, sessions };
    if (deps.signal.aborted) return { kind: 'aborted', sessions };
    const why = `connection to the coordinator ${describeClose(outcome.close)}`;
    if (!isReconnectable(outcome.close.code) || maxAttempts <= 0) return { kind: 'lost', why, sessions };
    deps.log(`${why}; rejoining${workerId !== undefined ? ` as ${workerId}` : ''} (up to ${maxAttempts} attempts${patienceMs > 0 ? ` within ${patienceMs} ms` : ''})`);
    const patience = patienceMs > 0 ? AbortSignal.timeout(patienceMs) : undefined;
    const signal = patience ? AbortSignal.any([deps.signal, patience]) : deps.signal;
    const reconnect = { maxAttempts, initialDelayMs, maxDelayMs };
    try {
      // A jittered pause first: workers cut off together must not all dial at the same instant.
      await pause(backoffDelayMs(0, reconnect, deps.random), signal);
      deps.log(`rejoin attempt 1 of ${maxAttempts}`);
      current = await deps.dial(reconnect, signal, ({ attempt, delayMs, error }) =>
        deps.log(`rejoin attempt ${attempt} of ${maxAttempts} failed: ${error.message}; attempt ${attempt + 1} in ${delayMs} ms`),
      );
    } catch (err) {
      if (deps.signal.aborted) return { kind: 'aborted', sessions };
      if (patience?.aborted) return { kind: 'lost', why: `${why}; no rejoin within ${patienceMs} ms`, sessions };
      if (err instanceof OrchestratorError && err.code === ErrorCode.CONNECT_FAILED) return { kind: 'lost', why: `${why}; rejoin failed: ${err.message}`, sessions };
      throw err;
    }
    deps.log(`reconnected to the coordinator; rejoining${workerId !== undefined ? ` as ${workerId}` : ''}`);
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
