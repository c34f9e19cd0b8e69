/**
 * The coordinator's WebSocket server: checks the sub-protocol in the HTTP upgrade, bounds frame size, turns
 * each connection into a {@link Transport} (every inbound frame through `parseMessage`), and keeps links
 * honest with ping/pong. It never throws inside a socket callback; a bad client is answered and closed while
 * the server and the other connections go on.
 *
 * Liveness: every `pingIntervalMs` the server pings each connection that has no ping outstanding; a
 * connection with no pong (and no inbound frame) within `pongTimeoutMs` of a ping is terminated and its
 * close handler gets code 4002 (HEARTBEAT_TIMEOUT) with error E_TIMEOUT. A dead link is thus detected within
 * `pingIntervalMs + pongTimeoutMs` (tests use 200/200: within 400 ms). The patience must exceed the time a
 * worker needs to upload its largest frame, since ws sends a pong only between frames.
 *
 * Busy-aware: a worker's event loop is blocked while it computes a step, so it cannot pong. While the
 * connection's busy check (`setBusyCheck`, set by the worker session: a request is outstanding) says yes, a
 * missed pong does not close the link; the deadline is re-armed and the request's own timeout bounds the wait.
 * A link blackholed during a request is thus closed within the request timeout + `pongTimeoutMs`. A deadline
 * timer that fires late (this loop was blocked) first gives inbound I/O one turn, so a pong already received
 * but not yet read is not mistaken for a missing one.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { ErrorCode } from '../shared/errors.js';
import { CloseCode } from '../shared/protocol/close-codes.js';
import { PROTOCOL_VERSION, SUBPROTOCOL } from '../shared/protocol/messages.js';
import { CHUNK_HEADER_SLACK_BYTES, DEFAULT_CHUNK_SIZE_BYTES, type ReassemblyLimits } from '../shared/protocol/chunking.js';
import { attachWebSocket, type SocketTransport } from '../shared/protocol/socket-transport.js';
import type { Transport } from '../shared/transport.js';
import { AUTH_REASON_HEADER } from '../shared/auth-signing.js';
import type { Authenticator } from './auth.js';
import type { TlsFiles } from './auth-settings.js';

/**
 * Largest inbound WebSocket frame: the default chunk size plus header slack (4 MiB + 64 KiB). Bigger messages
 * travel chunked (shared/protocol/chunking.ts), so a 1 GB model never needs a 1 GB frame; a peer's
 * `chunkSizeBytes` must not exceed this minus `CHUNK_HEADER_SLACK_BYTES`.
 */
export const DEFAULT_MAX_PAYLOAD_BYTES = DEFAULT_CHUNK_SIZE_BYTES + CHUNK_HEADER_SLACK_BYTES;
/** @default 10 s */
export const DEFAULT_PING_INTERVAL_MS = 10_000;
/** @default 10 s */
export const DEFAULT_PONG_TIMEOUT_MS = 10_000;
/** How long `close()` waits for clients to finish the closing handshake before dropping them. @default 2 s */
export const DEFAULT_CLOSE_GRACE_MS = 2_000;

/** Response header carrying the stable error code when an upgrade is refused. */
export const REFUSAL_CODE_HEADER = 'x-swarmtune-error-code';

/** A connection whose heartbeat can be told that the peer is busy (see the module comment). */
export interface BusyAwareLiveness {
  /** Installs the check the heartbeat asks when a pong is late: true holds the link open. @default always false */
  setBusyCheck(isBusy: () => boolean): void;
}

/** A worker connection as the server hands it over. */
export type ServerConnection = Transport &
  BusyAwareLiveness & {
    /** `address:port` of the worker's socket. */
    readonly remoteAddress: string;
    /** The credential it authenticated with (`AuthVerdict.identity`); absent without authentication. */
    readonly authIdentity?: string;
    /** Bytes read from and written to the socket so far (HTTP upgrade, framing and TLS included): the dashboard's table. */
    readonly wireBytes: () => { readonly inBytes: number; readonly outBytes: number };
  };

/** Options of {@link startWsServer}. */
export interface WsServerOptions {
  /** Interface to listen on. @default '127.0.0.1' */
  readonly host?: string;
  /** TCP port; 0 picks a free one (see `WsServer.port`). */
  readonly port: number;
  /** Largest inbound frame; a bigger one closes the connection with 1009. @default DEFAULT_MAX_PAYLOAD_BYTES */
  readonly maxPayloadBytes?: number;
  /** @default DEFAULT_PING_INTERVAL_MS */
  readonly pingIntervalMs?: number;
  /** @default DEFAULT_PONG_TIMEOUT_MS */
  readonly pongTimeoutMs?: number;
  /** Send high-water mark per connection, in bytes. @default 4 MiB */
  readonly highWaterMarkBytes?: number;
  /** @default DEFAULT_CLOSE_GRACE_MS */
  readonly closeGraceMs?: number;
  /** Outbound messages longer than this go chunked. @default DEFAULT_CHUNK_SIZE_BYTES (4 MiB) */
  readonly chunkSizeBytes?: number;
  /** Caps on inbound chunked transfers per connection. @default 4 transfers, 512 MiB */
  readonly reassembly?: ReassemblyLimits;
  /** A send waiting this long for the peer to read drops the connection (4005). @default 60 s */
  readonly sendStallTimeoutMs?: number;
  /** Bytes queued in the socket past which the connection is dropped as stalled. @default 64 MiB */
  readonly maxQueuedSendBytes?: number;
  /** Checks each upgrade's credentials before anything else; a refusal answers HTTP 401. @default none (all pass) */
  readonly authenticator?: Authenticator;
  /** Certificate and key: listen with TLS (`wss://`). @default plain `ws://` */
  readonly tls?: TlsFiles;
  /** Plain HTTP requests (not upgrades), e.g. `/metrics`: return true when answered; the rest get 426. @default none */
  readonly onHttpRequest?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Called once per accepted connection, synchronously in the upgrade; a throw closes that connection (1011). */
  readonly onConnection: (conn: ServerConnection) => void;
}

/** A listening server. */
export interface WsServer {
  /** The port actually bound. */
  readonly port: number;
  /** `ws://host:port` for workers to dial. */
  readonly url: string;
  /** Closes every connection (1001, then dropped after the grace period) and stops listening. Idempotent. */
  close(): Promise<void>;
}

function offeredProtocols(req: IncomingMessage): string[] {
  const header = req.headers['sec-websocket-protocol'];
  if (typeof header !== 'string') return [];
  return header
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
}

/** Answers an upgrade request with an HTTP error and a readable body, then drops the socket. */
function refuseUpgrade(socket: Duplex, status: number, statusText: string, code: string, message: string, headers: Readonly<Record<string, string>> = {}): void {
  const body = `${message}\n`;
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${statusText}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `${REFUSAL_CODE_HEADER}: ${code}\r\n` +
      extra +
      '\r\n' +
      body,
  );
}

/** Heartbeat of one connection: `stop` ends it, `setBusyCheck` installs the session's busy check. */
interface Heartbeat extends BusyAwareLiveness {
  stop(): void;
}

/** Starts ping/pong liveness for one connection. */
function startHeartbeat(ws: WebSocket, transport: SocketTransport, pingIntervalMs: number, pongTimeoutMs: number): Heartbeat {
  let isBusy: () => boolean = () => false;
  let awaitingPong = false;
  let deadline: NodeJS.Timeout | undefined;
  let judging: NodeJS.Immediate | undefined;
  const alive = (): void => {
    awaitingPong = false;
    clearTimeout(deadline);
    clearImmediate(judging);
    deadline = undefined;
    judging = undefined;
  };
  const judge = (): void => {
    judging = undefined;
    if (!awaitingPong) return;
    // A busy peer cannot pong while it computes; its request's timeout bounds the wait, so re-arm instead.
    if (isBusy()) {
      deadline = setTimeout(expire, pongTimeoutMs);
      return;
    }
    const message = `heartbeat timeout: no pong from ${transport.peer} within ${pongTimeoutMs} ms of a ping`;
    transport.abort(CloseCode.HEARTBEAT_TIMEOUT, message, { code: ErrorCode.TIMEOUT, message, retryable: true });
  };
  // The timer may fire late after this loop was blocked; the poll phase before setImmediate reads a waiting pong.
  const expire = (): void => {
    deadline = undefined;
    judging = setImmediate(judge);
  };
  const interval = setInterval(() => {
    if (awaitingPong) return;
    try {
      ws.ping();
    } catch {
      return;
    }
    awaitingPong = true;
    deadline = setTimeout(expire, pongTimeoutMs);
  }, pingIntervalMs);
  ws.on('pong', alive);
  ws.on('message', alive);
  return {
    stop: () => {
      clearInterval(interval);
      alive();
    },
    setBusyCheck: (check) => {
      isBusy = check;
    },
  };
}

/**
 * Starts the coordinator's WebSocket server.
 * @throws Error (from `listen`) when the port is taken or the host cannot be bound.
 */
export async function startWsServer(options: WsServerOptions): Promise<WsServer> {
  const host = options.host ?? '127.0.0.1';
  const pingIntervalMs = options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
  const pongTimeoutMs = options.pongTimeoutMs ?? DEFAULT_PONG_TIMEOUT_MS;
  const closeGraceMs = options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS;
  const transports = new Map<WebSocket, SocketTransport>();

  const onPlainRequest = (req: IncomingMessage, res: ServerResponse): void => {
    try {
      if (options.onHttpRequest?.(req, res)) return;
    } catch {
      // A failing route must not take the server down; the client gets the default answer below.
      if (res.headersSent) return void res.destroy();
    }
    res.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', Upgrade: 'websocket', Connection: 'close' });
    res.end(`swarmtune coordinator: connect with a WebSocket client and sub-protocol ${SUBPROTOCOL}\n`);
  };
  const http: Server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, onPlainRequest) : createServer(onPlainRequest);
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
    perMessageDeflate: false,
    clientTracking: true,
    handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });

  const accept = (ws: WebSocket, req: IncomingMessage, authIdentity: string | undefined): void => {
    const remoteAddress = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    const transport = attachWebSocket(ws, {
      peer: remoteAddress,
      localRole: 'coordinator',
      peerRole: 'worker',
      highWaterMarkBytes: options.highWaterMarkBytes,
      chunkSizeBytes: options.chunkSizeBytes,
      reassembly: options.reassembly,
      sendStallTimeoutMs: options.sendStallTimeoutMs,
      maxQueuedSendBytes: options.maxQueuedSendBytes,
    });
    transports.set(ws, transport);
    const heartbeat = startHeartbeat(ws, transport, pingIntervalMs, pongTimeoutMs);
    transport.onClose(() => {
      heartbeat.stop();
      transports.delete(ws);
    });
    try {
      options.onConnection(Object.assign(transport, { remoteAddress, setBusyCheck: heartbeat.setBusyCheck, wireBytes: () => ({ inBytes: req.socket.bytesRead, outBytes: req.socket.bytesWritten }) }, authIdentity === undefined ? {} : { authIdentity }));
    } catch (err) {
      transport.close(CloseCode.INTERNAL, `coordinator failed to accept the connection: ${(err as Error).message}`);
    }
  };

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // A reset during the handshake must not become an unhandled 'error'.
    socket.on('error', () => socket.destroy());
    try {
      // Credentials first: an unauthenticated peer learns nothing of the run, not even its protocol version.
      const verdict = options.authenticator?.check(req);
      if (verdict && !verdict.ok) {
        refuseUpgrade(socket, 401, 'Unauthorized', ErrorCode.AUTH_FAILED, verdict.message, {
          'WWW-Authenticate': verdict.challenge,
          [AUTH_REASON_HEADER]: verdict.reason,
        });
        return;
      }
      const offered = offeredProtocols(req);
      if (!offered.includes(SUBPROTOCOL)) {
        const other = offered.find((p) => p.startsWith('swarmtune.'));
        if (other) {
          refuseUpgrade(socket, 400, 'Bad Request', ErrorCode.PROTOCOL_VERSION,
            `protocol version mismatch: coordinator speaks ${SUBPROTOCOL} (v${PROTOCOL_VERSION}), client offered ${offered.join(', ')}`);
        } else {
          refuseUpgrade(socket, 400, 'Bad Request', ErrorCode.PROTOCOL_MALFORMED,
            `sub-protocol ${SUBPROTOCOL} required; client offered ${offered.length > 0 ? offered.join(', ') : 'none'}`);
        }
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => accept(ws, req, verdict?.ok ? verdict.identity : undefined));
    } catch (err) {
      refuseUpgrade(socket, 500, 'Internal Server Error', ErrorCode.INTERNAL, `coordinator failed the upgrade: ${(err as Error).message}`);
    }
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  // After listening, server errors (e.g. EMFILE on accept) are reported per connection, never thrown.
  http.on('error', () => {});

  const port = (http.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;

  const close = (): Promise<void> => {
    closing ??= (async () => {
      const pending = [...transports.values()].map((t) => t.closed);
      for (const t of transports.values()) t.close(CloseCode.GOING_AWAY, 'coordinator shutting down');
      let grace: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(pending), new Promise((r) => (grace = setTimeout(r, closeGraceMs)))]);
      clearTimeout(grace);
      for (const ws of wss.clients) ws.terminate();
      await Promise.all([...transports.values()].map((t) => t.closed));
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
    })();
    return closing;
  };

  return { port, url: `${options.tls ? 'wss' : 'ws'}://${urlHost}:${port}`, close };
}
