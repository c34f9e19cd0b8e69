/**
 * The worker's side of the link: dial the coordinator with sub-protocol `swarmtune.v1`, wrap the socket as a
 * {@link Transport}, and watch liveness. ws answers the coordinator's pings by itself; a worker that hears no
 * ping (and no frame) for `pingTimeoutMs` treats the link as dead: it terminates the socket and the close
 * event carries code 4002 (HEARTBEAT_TIMEOUT) with error E_TIMEOUT.
 *
 * {@link connectWithRetry} retries the *initial* connection with jittered exponential backoff (for workers
 * started before the coordinator listens). A dropped connection is not re-dialled behind the caller's back:
 * the worker decides (see `isReconnectable` in shared/protocol/close-codes.ts) and rejoins with a new `hello`.
 */
import type { IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';
import { ErrorCode, OrchestratorError, ProtocolError } from '../shared/errors.js';
import { CloseCode } from '../shared/protocol/close-codes.js';
import { SUBPROTOCOL } from '../shared/protocol/messages.js';
import { CHUNK_HEADER_SLACK_BYTES, MAX_CHUNK_SIZE_BYTES, type ReassemblyLimits } from '../shared/protocol/chunking.js';
import { attachWebSocket } from '../shared/protocol/socket-transport.js';
import type { Transport } from '../shared/transport.js';
import { authHeaders, type ClientCredentials } from './auth-credentials.js';
import { describeTlsFailure } from './auth-tls.js';

/** Default for `pingTimeoutMs`: longer than the coordinator's default ping interval plus pong timeout. @default 30 s */
export const DEFAULT_PING_TIMEOUT_MS = 30_000;
/**
 * Largest inbound WebSocket message: the largest chunk size a run may set plus header slack (64 MiB + 64 KiB).
 * A worker learns the run's `chunk_size_bytes` only from `welcome`, after the socket is open, and ws fixes
 * `maxPayload` at connection time; so it accepts any allowed chunk size. Bigger messages travel chunked
 * (shared/protocol/chunking.ts), so a 1 GB model never needs a 1 GB frame.
 */
export const DEFAULT_MAX_PAYLOAD_BYTES = MAX_CHUNK_SIZE_BYTES + CHUNK_HEADER_SLACK_BYTES;
/** @default 10 s */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** Backoff between connection attempts. */
export interface ReconnectOptions {
  /** Delay before the first retry, before jitter. @default 200 */
  readonly initialDelayMs?: number;
  /** Cap on the delay, before jitter. @default 5000 */
  readonly maxDelayMs?: number;
  /** Attempts in all, the first included. @default 10 */
  readonly maxAttempts?: number;
}

/** One failed attempt, reported before waiting `delayMs` for the next. */
export interface RetryInfo {
  /** 1 for the first attempt that failed. */
  readonly attempt: number;
  readonly delayMs: number;
  readonly error: OrchestratorError;
}

/** Options of {@link connectWs} / {@link connectWithRetry}. */
export interface ConnectOptions {
  /** Silence (no ping, no frame) after which the link is declared dead; 0 disables. @default DEFAULT_PING_TIMEOUT_MS */
  readonly pingTimeoutMs?: number;
  /** Largest inbound frame. @default DEFAULT_MAX_PAYLOAD_BYTES */
  readonly maxPayloadBytes?: number;
  /** @default DEFAULT_HANDSHAKE_TIMEOUT_MS */
  readonly handshakeTimeoutMs?: number;
  /** Send high-water mark, in bytes. @default 4 MiB */
  readonly highWaterMarkBytes?: number;
  /** Outbound messages longer than this go chunked. @default DEFAULT_CHUNK_SIZE_BYTES (4 MiB) */
  readonly chunkSizeBytes?: number;
  /** Caps on inbound chunked transfers per connection. @default 4 transfers, 512 MiB */
  readonly reassembly?: ReassemblyLimits;
  /** A send waiting this long for the peer to read drops the connection (4005). @default 60 s */
  readonly sendStallTimeoutMs?: number;
  /** Bytes queued in the socket past which the connection is dropped as stalled. @default 64 MiB */
  readonly maxQueuedSendBytes?: number;
  /**
   * Mask client frames with a random key (RFC 6455 §5.3). Masking exists to stop a browser's script from
   * steering the bytes an HTTP proxy or cache on the path sees (cache poisoning); a worker is not a browser and
   * runs no untrusted script, and ws masks byte by byte in JS without `bufferutil`, so the default is a zero
   * mask (the frames stay RFC-valid; the data goes out unchanged, without a copy). Turn it on when a worker
   * talks through an intercepting HTTP proxy or middlebox that is not under the operator's control.
   * @default false
   */
  readonly maskFrames?: boolean;
  /** Credentials sent in the upgrade (bearer or signed headers, fresh per attempt). @default none */
  readonly credentials?: ClientCredentials;
  /** PEM certificate(s) of the authority to trust for `wss://` URLs, instead of the system store. @default system store */
  readonly ca?: string | Buffer;
  /** Retry the initial connection; absent: one attempt (connectWs) or the defaults (connectWithRetry). */
  readonly reconnect?: ReconnectOptions;
  /** Cancels the attempts (and the waits between them). */
  readonly signal?: AbortSignal;
  /** Called after each failed attempt that will be retried. */
  readonly onRetry?: (info: RetryInfo) => void;
}

const DEFAULT_RECONNECT: Required<ReconnectOptions> = { initialDelayMs: 200, maxDelayMs: 5_000, maxAttempts: 10 };

/**
 * Delay before retry number `retry` (0 for the first): `min(maxDelayMs, initialDelayMs · 2^retry)`, of which
 * the upper half is random ("equal jitter"), so that many workers do not dial in lockstep.
 */
export function backoffDelayMs(retry: number, options: ReconnectOptions = {}, random: () => number = Math.random): number {
  const { initialDelayMs, maxDelayMs } = { ...DEFAULT_RECONNECT, ...options };
  const base = Math.min(maxDelayMs, initialDelayMs * 2 ** retry);
  return Math.round(base / 2 + random() * (base / 2));
}

/** Network errors worth another attempt: the coordinator may not be listening yet. */
const RETRYABLE_NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

interface AttemptFailure {
  readonly error: OrchestratorError;
  readonly retryable: boolean;
}

function readBody(res: IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      if (size < maxBytes) chunks.push(chunk);
      size += chunk.length;
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8').slice(0, maxBytes).trim()));
    const partial = (): void => resolve(Buffer.concat(chunks).toString('utf8').slice(0, maxBytes).trim());
    res.on('error', partial);
    res.on('close', partial);
  });
}

/** A mask of four zero bytes: ws then sends the payload as is (see `maskFrames`). */
function zeroMask(mask: Uint8Array): void {
  mask.fill(0);
}

function connectOnce(url: string, options: ConnectOptions): Promise<Transport> {
  return new Promise<Transport>((resolve, reject) => {
    let settled = false;
    let ws: WebSocket;
    const fail = (failure: AttemptFailure): void => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      try {
        ws?.terminate();
      } catch {
        // Already closed: nothing to release.
      }
      reject(failure);
    };
    const onAbort = (): void =>
      fail({ error: new OrchestratorError(ErrorCode.CONNECT_FAILED, `connecting to ${url} was cancelled`), retryable: false });
    try {
      ws = new WebSocket(url, [SUBPROTOCOL], {
        perMessageDeflate: false,
        maxPayload: options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
        handshakeTimeout: options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
        ...(options.maskFrames ? {} : { generateMask: zeroMask }),
        ...(options.credentials ? { headers: authHeaders(options.credentials, url) } : {}),
        ...(options.ca !== undefined ? { ca: options.ca } : {}),
      });
    } catch (err) {
      fail({ error: new OrchestratorError(ErrorCode.CONNECT_FAILED, `cannot connect to ${url}: ${(err as Error).message}`, { cause: err }), retryable: false });
      return;
    }
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });

    let refused = false;
    const onError = (err: Error): void => {
      // Once the coordinator answered the upgrade with an HTTP error, its body is the better explanation.
      if (refused) return;
      const code = (err as NodeJS.ErrnoException).code;
      const tls = describeTlsFailure(err, url);
      if (tls) return fail({ error: tls, retryable: false });
      const retryable = (code !== undefined && RETRYABLE_NET_CODES.has(code)) || /timed out/i.test(err.message);
      fail({ error: new OrchestratorError(ErrorCode.CONNECT_FAILED, `cannot connect to ${url}: ${err.message}`, { cause: err }), retryable });
    };
    ws.on('error', onError);
    ws.on('unexpected-response', (_req, res) => {
      refused = true;
      void readBody(res, 4096).then((body) => {
        const status = res.statusCode ?? 0;
        const remoteCode = res.headers['x-swarmtune-error-code'];
        const message = `coordinator at ${url} refused the connection (HTTP ${status}): ${body || res.statusMessage || 'no reason given'}`;
        const error =
          remoteCode === ErrorCode.PROTOCOL_VERSION
            ? new ProtocolError(ErrorCode.PROTOCOL_VERSION, message)
            : status === 401 || remoteCode === ErrorCode.AUTH_FAILED
              ? new OrchestratorError(ErrorCode.AUTH_FAILED, message)
              : new OrchestratorError(ErrorCode.CONNECT_FAILED, message);
        fail({ error, retryable: status >= 500 });
      });
    });
    ws.on('open', () => {
      if (settled) return;
      if (ws.protocol !== SUBPROTOCOL) {
        fail({ error: new ProtocolError(ErrorCode.PROTOCOL_VERSION, `coordinator at ${url} accepted sub-protocol '${ws.protocol}', expected ${SUBPROTOCOL}`), retryable: false });
        return;
      }
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      ws.off('error', onError);
      const transport = attachWebSocket(ws, {
        peer: url,
        localRole: 'worker',
        peerRole: 'coordinator',
        highWaterMarkBytes: options.highWaterMarkBytes,
        chunkSizeBytes: options.chunkSizeBytes,
        reassembly: options.reassembly,
        sendStallTimeoutMs: options.sendStallTimeoutMs,
        maxQueuedSendBytes: options.maxQueuedSendBytes,
      });
      watchPings(ws, transport, url, options.pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS);
      resolve(transport);
    });
  });
}

/** Ping watchdogs by transport, for {@link extendPingTimeout}. */
const pingWatchdogs = new WeakMap<Transport, (pingTimeoutMs: number) => void>();

/**
 * Raises the worker's ping patience to `pingTimeoutMs` (never lowers it) and restarts the wait: the
 * coordinator's heartbeat timers, learnt in `welcome`, may ping less often than this side's default assumes.
 * No effect on a transport without a watchdog (not from {@link connectWs}, or `pingTimeoutMs: 0`).
 */
export function extendPingTimeout(transport: Transport, pingTimeoutMs: number): void {
  pingWatchdogs.get(transport)?.(pingTimeoutMs);
}

function watchPings(ws: WebSocket, transport: ReturnType<typeof attachWebSocket>, url: string, initialPingTimeoutMs: number): void {
  if (initialPingTimeoutMs <= 0) return;
  let pingTimeoutMs = initialPingTimeoutMs;
  let timer: NodeJS.Timeout | undefined;
  let judging: NodeJS.Immediate | undefined;
  const expired = (): void => {
    const message = `heartbeat timeout: no ping from the coordinator at ${url} within ${pingTimeoutMs} ms`;
    transport.abort(CloseCode.HEARTBEAT_TIMEOUT, message, { code: ErrorCode.TIMEOUT, message, retryable: true });
  };
  const arm = (): void => {
    clearTimeout(timer);
    clearImmediate(judging);
    judging = undefined;
    // After a step blocked this loop the timer fires before queued pings are read; the poll phase that runs
    // before setImmediate reads them (and re-arms), so only a real silence expires.
    timer = setTimeout(() => (judging = setImmediate(expired)), pingTimeoutMs);
  };
  arm();
  ws.on('ping', arm);
  ws.on('message', arm);
  pingWatchdogs.set(transport, (ms) => {
    if (ms <= pingTimeoutMs) return;
    pingTimeoutMs = ms;
    arm();
  });
  transport.onClose(() => {
    clearTimeout(timer);
    clearImmediate(judging);
  });
}

function wait(ms: number, signal: AbortSignal | undefined, url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new OrchestratorError(ErrorCode.CONNECT_FAILED, `connecting to ${url} was cancelled`));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Opens a connection to the coordinator at `url` (`ws://host:port`). With `options.reconnect`, failed
 * attempts that may succeed later (refused, reset, timed out, HTTP 5xx) are retried with
 * {@link backoffDelayMs}; a refusal (HTTP 4xx, wrong sub-protocol) fails at once.
 * @throws ProtocolError E_PROTOCOL_VERSION when the coordinator speaks another protocol version;
 *   OrchestratorError E_CONNECT_FAILED otherwise (the message names the URL and the last cause).
 */
export async function connectWs(url: string, options: ConnectOptions = {}): Promise<Transport> {
  const reconnect = options.reconnect ? { ...DEFAULT_RECONNECT, ...options.reconnect } : undefined;
  const maxAttempts = Math.max(1, reconnect?.maxAttempts ?? 1);
  for (let attempt = 1; ; attempt++) {
    try {
      return await connectOnce(url, options);
    } catch (caught) {
      const { error, retryable } = caught as AttemptFailure;
      if (!retryable || attempt >= maxAttempts) {
        if (attempt > 1 && error.code === ErrorCode.CONNECT_FAILED) {
          throw new OrchestratorError(ErrorCode.CONNECT_FAILED, `${error.message} (gave up after ${attempt} attempts)`, { cause: error });
        }
        throw error;
      }
      const delayMs = backoffDelayMs(attempt - 1, reconnect);
      options.onRetry?.({ attempt, delayMs, error });
      await wait(delayMs, options.signal, url);
    }
  }
}

/** {@link connectWs} with retries on by default (`reconnect` fields default to 200 ms, 5 s, 10 attempts). */
export function connectWithRetry(url: string, options: ConnectOptions = {}): Promise<Transport> {
  return connectWs(url, { ...options, reconnect: options.reconnect ?? {} });
}
