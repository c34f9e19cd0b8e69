/**
 * A {@link Transport} over any message socket: the part of a WebSocket connection both roles share. It
 * parses every inbound frame through `tryParseMessage`, answers a refused frame with an `error` frame and a
 * close code (see ./close-codes.ts), applies send backpressure, and reports one close event that says why.
 * It never throws into the socket's callbacks. It does not import `ws` (shared/ must not): the coordinator
 * and worker adapters wire a `ws` WebSocket to it with {@link attachWebSocket}.
 */
import { ErrorCode, OrchestratorError, errorCodeOf } from '../errors.js';
import { encodeMessage } from '../codec.js';
import type { CloseHandler, MessageHandler, Transport, TransportCloseEvent } from '../transport.js';
import { makeErrorFrame } from './build.js';
import { CloseCode, closeCodeForError, truncateCloseReason } from './close-codes.js';
import type { ErrorFrame, Message } from './messages.js';
import { MsgKind, PROTOCOL_VERSION } from './messages.js';
import { ProtocolVersionError, tryParseMessage } from './parse.js';

/** Default send high-water mark: `send` waits for the OS when more than this many bytes are queued. */
export const DEFAULT_HIGH_WATER_MARK_BYTES = 4 * 1024 * 1024;
/** Default bound on inbound messages queued while no message handler is registered. */
export const DEFAULT_MAX_QUEUED_MESSAGES = 1024;

/** The socket operations a {@link SocketTransport} needs. */
export interface SocketSink {
  /** Writes one binary frame; `done` runs once it is handed to the OS, or with an error. */
  send(bytes: Uint8Array, done: (err?: Error) => void): void;
  close(code: number, reason: string): void;
  /** Drops the connection at once, without a closing handshake. */
  terminate(): void;
  /** Bytes queued and not yet handed to the OS. */
  bufferedAmount(): number;
}

/** Options of a {@link SocketTransport}. */
export interface SocketTransportOptions {
  /** Who is on the other side, for logs. */
  readonly peer: string;
  /** This side's role, in error messages. @default 'this side' */
  readonly localRole?: string;
  /** The peer's role, in error messages. @default 'peer' */
  readonly peerRole?: string;
  /** @default DEFAULT_HIGH_WATER_MARK_BYTES (4 MiB) */
  readonly highWaterMarkBytes?: number;
  /** @default DEFAULT_MAX_QUEUED_MESSAGES (1024) */
  readonly maxQueuedMessages?: number;
}

type State = 'open' | 'closing' | 'closed';
type Failure = NonNullable<TransportCloseEvent['error']>;

function closedError(peer: string, detail: string, cause?: unknown): OrchestratorError {
  return new OrchestratorError(ErrorCode.CONNECTION_CLOSED, `connection to ${peer} is closed: ${detail}`, { cause });
}

/** A Transport over a {@link SocketSink}; the adapter feeds it socket events through the `handle*` methods. */
export class SocketTransport implements Transport {
  readonly peer: string;
  readonly closed: Promise<TransportCloseEvent>;
  private state: State = 'open';
  private readonly localRole: string;
  private readonly peerRole: string;
  private readonly highWaterMarkBytes: number;
  private readonly maxQueuedMessages: number;
  private readonly messageHandlers: MessageHandler[] = [];
  private readonly closeHandlers: CloseHandler[] = [];
  private readonly inbox: Message[] = [];
  private readonly waitingSends = new Set<(err?: Error) => void>();
  /** Set when this side decided to close; wins over what the socket reports. */
  private localClose?: TransportCloseEvent;
  /** The last inbound frame, when it was an `error` frame (explains a close that follows). */
  private lastErrorFrame?: ErrorFrame;
  /** A socket-level error (reset, bad WebSocket framing), reported with the close. */
  private socketError?: Error;
  private closeEvent?: TransportCloseEvent;
  private resolveClosed!: (event: TransportCloseEvent) => void;

  constructor(
    private readonly sink: SocketSink,
    options: SocketTransportOptions,
  ) {
    this.peer = options.peer;
    this.localRole = options.localRole ?? 'this side';
    this.peerRole = options.peerRole ?? 'peer';
    this.highWaterMarkBytes = options.highWaterMarkBytes ?? DEFAULT_HIGH_WATER_MARK_BYTES;
    this.maxQueuedMessages = options.maxQueuedMessages ?? DEFAULT_MAX_QUEUED_MESSAGES;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  send(msg: Message): Promise<void> {
    if (this.state !== 'open') return Promise.reject(closedError(this.peer, `cannot send '${msg.kind}'`));
    let bytes: Uint8Array;
    try {
      bytes = encodeMessage(msg);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<void>((resolve, reject) => {
      let waiting = false;
      const settle = (err?: Error): void => {
        this.waitingSends.delete(settle);
        if (err) reject(closedError(this.peer, `'${msg.kind}' was not sent (${err.message})`, err));
        else resolve();
      };
      try {
        this.sink.send(bytes, (err) => {
          if (waiting) settle(err);
        });
      } catch (err) {
        settle(err as Error);
        return;
      }
      if (this.sink.bufferedAmount() <= this.highWaterMarkBytes) {
        resolve();
      } else {
        waiting = true;
        this.waitingSends.add(settle);
      }
    });
  }

  onMessage(handler: MessageHandler): () => void {
    this.messageHandlers.push(handler);
    if (this.inbox.length > 0) queueMicrotask(() => this.drain());
    return () => {
      const i = this.messageHandlers.indexOf(handler);
      if (i >= 0) this.messageHandlers.splice(i, 1);
    };
  }

  onClose(handler: CloseHandler): () => void {
    if (this.closeEvent) {
      const event = this.closeEvent;
      queueMicrotask(() => handler(event));
      return () => {};
    }
    this.closeHandlers.push(handler);
    return () => {
      const i = this.closeHandlers.indexOf(handler);
      if (i >= 0) this.closeHandlers.splice(i, 1);
    };
  }

  close(code: number = CloseCode.NORMAL, reason = ''): void {
    if (this.state !== 'open') return;
    this.beginClose({ code, reason: truncateCloseReason(reason), initiatedLocally: true });
    try {
      this.sink.close(code, truncateCloseReason(reason));
    } catch {
      // An invalid close code from a caller must not leave the socket half-open.
      this.sink.terminate();
    }
  }

  /** Drops the link without a closing handshake (dead peer), reporting `code`/`reason`/`error` to handlers. */
  abort(code: number, reason: string, error?: Failure): void {
    if (this.state === 'closed') return;
    if (!this.localClose) this.beginClose({ code, reason, initiatedLocally: true, error });
    this.sink.terminate();
  }

  /** Adapter entry point: one inbound frame. Never throws. */
  handleFrame(data: Uint8Array, isBinary: boolean): void {
    if (this.state !== 'open') return;
    try {
      if (!isBinary) {
        this.refuse(ErrorCode.PROTOCOL_MALFORMED, CloseCode.POLICY, 'text frames are not part of the protocol: frames are binary msgpack');
        return;
      }
      const result = tryParseMessage(data);
      if (!result.ok) {
        const { error } = result;
        const message =
          error instanceof ProtocolVersionError
            ? `protocol version mismatch: ${this.localRole} speaks v${PROTOCOL_VERSION}, ${this.peerRole} sent v${error.receivedVersion}`
            : error.message;
        this.refuse(error.code, closeCodeForError(error.code), message, result.id);
        return;
      }
      const msg = result.message;
      this.lastErrorFrame = msg.kind === MsgKind.ERROR ? msg : undefined;
      if (this.messageHandlers.length === 0 && this.inbox.length >= this.maxQueuedMessages) {
        this.refuse(ErrorCode.INTERNAL, CloseCode.INTERNAL, `${this.localRole} has no message handler and ${this.inbox.length} frames queued`);
        return;
      }
      this.inbox.push(msg);
      this.drain();
    } catch (err) {
      this.failInternally(err);
    }
  }

  /** Adapter entry point: a socket-level error (it is followed by {@link handleClose}). Never throws. */
  handleError(err: Error, closeCode?: number): void {
    this.socketError ??= err;
    if (closeCode !== undefined && this.state === 'open') {
      this.beginClose({
        code: closeCode,
        reason: truncateCloseReason(err.message),
        initiatedLocally: true,
        error: { code: ErrorCode.PROTOCOL_MALFORMED, message: `websocket: ${err.message}`, retryable: false },
      });
    }
  }

  /** Adapter entry point: the socket is closed. Never throws. */
  handleClose(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    let event: TransportCloseEvent;
    if (this.localClose) {
      event = this.localClose;
    } else {
      const frame = this.lastErrorFrame;
      const error: Failure | undefined = frame
        ? { code: frame.code, message: frame.message, retryable: frame.retryable }
        : this.socketError
          ? { code: ErrorCode.CONNECTION_CLOSED, message: this.socketError.message, retryable: true }
          : undefined;
      event = { code, reason: reason || (this.socketError?.message ?? ''), initiatedLocally: false, ...(error ? { error } : {}) };
    }
    this.closeEvent = event;
    for (const settle of [...this.waitingSends]) settle(new Error(`connection closed (${event.code})`));
    for (const handler of this.closeHandlers.splice(0)) {
      try {
        handler(event);
      } catch {
        // A close handler has nothing left to close; its failure must not reach the socket.
      }
    }
    this.resolveClosed(event);
  }

  private beginClose(event: TransportCloseEvent): void {
    this.localClose = event;
    this.state = 'closing';
  }

  private drain(): void {
    while (this.messageHandlers.length > 0 && this.inbox.length > 0 && this.state !== 'closed') {
      const msg = this.inbox.shift()!;
      for (const handler of [...this.messageHandlers]) {
        try {
          const out = handler(msg);
          if (out instanceof Promise) out.catch((err: unknown) => this.failInternally(err));
        } catch (err) {
          this.failInternally(err);
        }
      }
    }
  }

  /** Sends an `error` frame for a refused inbound frame, then closes with `closeCode`. */
  private refuse(code: string, closeCode: number, message: string, replyTo?: string): void {
    const frame = makeErrorFrame(new OrchestratorError(ErrorCode.INTERNAL, message), { replyTo });
    const errorFrame: ErrorFrame = { ...frame, code };
    try {
      this.sink.send(encodeMessage(errorFrame), () => {});
    } catch {
      // The close below still tells the peer; the error frame is a courtesy.
    }
    this.beginClose({
      code: closeCode,
      reason: truncateCloseReason(message),
      initiatedLocally: true,
      error: { code, message, retryable: false },
    });
    try {
      this.sink.close(closeCode, truncateCloseReason(message));
    } catch {
      this.sink.terminate();
    }
  }

  private failInternally(err: unknown): void {
    if (this.state !== 'open') return;
    const message = `${this.localRole} failed handling a frame from ${this.peer}: ${err instanceof Error ? err.message : String(err)}`;
    this.beginClose({
      code: CloseCode.INTERNAL,
      reason: truncateCloseReason(message),
      initiatedLocally: true,
      error: { code: errorCodeOf(err), message, retryable: true },
    });
    try {
      this.sink.close(CloseCode.INTERNAL, truncateCloseReason(message));
    } catch {
      this.sink.terminate();
    }
  }
}

/** The `ws` WebSocket surface {@link attachWebSocket} uses (structural, so shared/ needs no `ws` import). */
export interface WebSocketLike {
  readonly bufferedAmount: number;
  send(data: Uint8Array, cb: (err?: Error) => void): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: 'message', listener: (data: unknown, isBinary: boolean) => void): unknown;
  on(event: 'close', listener: (code: number, reason: Uint8Array) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/** ws error codes that mean the peer broke WebSocket framing, with the close code ws answers them with. */
const WS_ERROR_CLOSE_CODES: Readonly<Record<string, number>> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.TOO_BIG,
  WS_ERR_INVALID_UTF8: CloseCode.INVALID_DATA,
};

function toBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (Array.isArray(data)) return Buffer.concat(data as Uint8Array[]);
  return new Uint8Array(0);
}

/**
 * Wraps an open `ws` WebSocket as a {@link SocketTransport}, listening to its `message`, `error` and `close`
 * events (an `error` listener is always attached, so a socket error never crashes the process).
 */
export function attachWebSocket(ws: WebSocketLike, options: SocketTransportOptions): SocketTransport {
  const transport = new SocketTransport(
    {
      send: (bytes, done) => ws.send(bytes, done),
      close: (code, reason) => ws.close(code, reason),
      terminate: () => ws.terminate(),
      bufferedAmount: () => ws.bufferedAmount,
    },
    options,
  );
  ws.on('message', (data, isBinary) => transport.handleFrame(toBytes(data), isBinary));
  ws.on('error', (err) => {
    const wsCode = (err as { code?: unknown }).code;
    const closeCode = typeof wsCode === 'string' && wsCode.startsWith('WS_ERR_') ? (WS_ERROR_CLOSE_CODES[wsCode] ?? 1002) : undefined;
    transport.handleError(err, closeCode);
  });
  ws.on('close', (code, reason) => transport.handleClose(code, Buffer.from(reason).toString('utf8')));
  return transport;
}
