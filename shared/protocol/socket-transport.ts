/**
 * A {@link Transport} over any message socket: the part of a WebSocket connection both roles share. It
 * parses every inbound frame through `tryParseMessage`, answers a refused frame with an `error` frame and a
 * close code (see ./close-codes.ts), applies send backpressure, and reports one close event that says why.
 * It never throws into the socket's callbacks.
 *
 * Large frames: a frame longer than `chunkSizeBytes` goes as chunk frames (./chunking.ts) and inbound chunks
 * are reassembled under per-connection caps before the whole frame meets `parseMessage`. Sends run in order,
 * one at a time; each waits while the socket buffer is over the high-water mark, and a peer that reads nothing
 * for `sendStallTimeoutMs` (or lets `maxQueuedSendBytes` pile up) is dropped with 4005, so a stalled peer holds
 * at most about high-water mark + one chunk of this process's memory. Large frames are encoded into a
 * process-wide pool of reused buffers (at most two, each at most 256 MiB, kept after use) with tensor data
 * 8-aligned; a receiver that calls {@link SocketTransport.release} lets the next transfer reuse its memory. It does not import `ws` (shared/ must not): the coordinator
 * and worker adapters wire a `ws` WebSocket to it with {@link attachWebSocket}.
 */
import { ErrorCode, OrchestratorError, ProtocolError, errorCodeOf } from '../errors.js';
import { decodeFrame, encodeMessage, encodeMessageInto } from '../codec.js';
import type { CloseHandler, MessageHandler, Transport, TransportCloseEvent } from '../transport.js';
import { makeErrorFrame } from './build.js';
import { CloseCode, closeCodeForError, truncateCloseReason } from './close-codes.js';
import type { ErrorFrame, Message } from './messages.js';
import { MsgKind, PROTOCOL_VERSION } from './messages.js';
import { ProtocolVersionError, tryParseDecoded, tryParseMessage, type ParseResult } from './parse.js';
import {
  ChunkError,
  ChunkReassembler,
  DEFAULT_CHUNK_SIZE_BYTES,
  encodeChunkFrame,
  isChunkLike,
  parseChunkFrame,
  type ReassemblyLimits,
} from './chunking.js';

/** Default send high-water mark: `send` waits for the OS when more than this many bytes are queued. */
export const DEFAULT_HIGH_WATER_MARK_BYTES = 4 * 1024 * 1024;
/** Default bound on inbound messages queued while no message handler is registered. */
export const DEFAULT_MAX_QUEUED_MESSAGES = 1024;
/** Default time a send may wait for the peer to read before the connection is dropped as stalled: 60 s. */
export const DEFAULT_SEND_STALL_TIMEOUT_MS = 60_000;
/** Default cap on bytes queued in the socket and not yet handed to the OS: 64 MiB. */
export const DEFAULT_MAX_QUEUED_SEND_BYTES = 64 * 1024 * 1024;
/** Largest encode buffer kept between sends (process-wide, one per concurrent large send): 256 MiB. */
const MAX_RETAINED_SCRATCH_BYTES = 256 * 1024 * 1024;

// Encode buffers reused across large sends: a fresh 100 MB buffer per frame costs ~0.3 s of page faults here.
const scratchPool: Uint8Array[] = [];
function takeScratch(): Uint8Array {
  return scratchPool.pop() ?? Buffer.allocUnsafeSlow(64 * 1024);
}
function returnScratch(scratch: Uint8Array): void {
  if (scratch.byteLength <= MAX_RETAINED_SCRATCH_BYTES && scratchPool.length < 2) scratchPool.push(scratch);
}

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
  /**
   * A frame whose encoding is longer goes as chunk frames of at most this many data bytes (see ./chunking.ts).
   * Must not exceed the peer's `maxPayloadBytes` minus `CHUNK_HEADER_SLACK_BYTES`.
   * @default DEFAULT_CHUNK_SIZE_BYTES (4 MiB)
   */
  readonly chunkSizeBytes?: number;
  /** Limits on inbound chunked transfers (concurrent transfers, reassembly bytes). */
  readonly reassembly?: ReassemblyLimits;
  /**
   * How long one send may wait for the socket buffer to fall under the high-water mark; past it the peer is
   * taken as stalled and the connection dropped (close code 4005, E_SEND_STALLED). @default 60 s
   */
  readonly sendStallTimeoutMs?: number;
  /** Bytes queued in the socket past which the connection is dropped at once as stalled. @default 64 MiB */
  readonly maxQueuedSendBytes?: number;
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
  private readonly chunkSizeBytes: number;
  private readonly sendStallTimeoutMs: number;
  private readonly maxQueuedSendBytes: number;
  private readonly reassembler: ChunkReassembler;
  private nextTransferId = 0;
  /** Chunk frame buffers the socket has finished writing, reused for the next chunks. */
  private readonly chunkBuffers: Uint8Array[] = [];
  /** Reassembled frames by the message decoded from them, for {@link release}. */
  private readonly reassembled = new WeakMap<Message, Uint8Array>();
  /** Sends run one after another, so that a chunked frame and a later small one keep their order. */
  private sendTail: Promise<void> = Promise.resolve();
  private pendingSends = 0;
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
    this.chunkSizeBytes = options.chunkSizeBytes ?? DEFAULT_CHUNK_SIZE_BYTES;
    this.sendStallTimeoutMs = options.sendStallTimeoutMs ?? DEFAULT_SEND_STALL_TIMEOUT_MS;
    this.maxQueuedSendBytes = options.maxQueuedSendBytes ?? DEFAULT_MAX_QUEUED_SEND_BYTES;
    this.reassembler = new ChunkReassembler(options.reassembly);
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  send(msg: Message): Promise<void> {
    if (this.state !== 'open') return Promise.reject(closedError(this.peer, `cannot send '${msg.kind}'`));
    // With nothing in flight the frame goes to the socket synchronously; otherwise it waits its turn.
    const run = this.pendingSends === 0 ? this.sendNow(msg) : this.sendTail.then(() => this.sendNow(msg));
    this.pendingSends++;
    const done = (): void => {
      this.pendingSends--;
    };
    this.sendTail = run.then(done, done);
    return run;
  }

  /** Inbound transfers being reassembled, and the bytes they reserve (for tests and metrics). */
  get reassemblyState(): { readonly transfers: number; readonly bytes: number } {
    return { transfers: this.reassembler.pendingTransfers, bytes: this.reassembler.pendingBytes };
  }

  private async sendNow(msg: Message): Promise<void> {
    if (this.state !== 'open') throw closedError(this.peer, `cannot send '${msg.kind}'`);
    let scratch = takeScratch();
    try {
      const bytes = encodeMessageInto(msg, scratch);
      if (bytes.buffer !== scratch.buffer) scratch = Buffer.from(bytes.buffer);
      if (bytes.byteLength <= this.chunkSizeBytes) {
        // A copy, since the scratch is reused while the socket may still hold the frame.
        await this.writeFrame(Buffer.from(bytes), msg.kind);
        return;
      }
      const count = Math.ceil(bytes.byteLength / this.chunkSizeBytes);
      const transferId = this.nextTransferId++;
      for (let i = 0; i < count; i++) {
        if (this.state !== 'open') throw closedError(this.peer, `'${msg.kind}' cut after ${i} of ${count} chunks`);
        const data = bytes.subarray(i * this.chunkSizeBytes, Math.min(bytes.byteLength, (i + 1) * this.chunkSizeBytes));
        const into = this.chunkBuffers.pop();
        const frame = encodeChunkFrame(transferId, i, count, bytes.byteLength, data, into);
        const reusable = frame.buffer === into?.buffer ? into : frame.byteLength === frame.buffer.byteLength ? frame : undefined;
        await this.writeFrame(frame, msg.kind, () => {
          if (reusable && this.chunkBuffers.length < 4) this.chunkBuffers.push(reusable);
        });
      }
    } finally {
      returnScratch(scratch);
    }
  }

  /**
   * Hands one frame to the socket; resolves at once while the socket buffer is under the high-water mark,
   * else when this frame reached the OS. A wait longer than the stall timeout, or a buffer over the queue cap,
   * drops the connection (4005).
   */
  private writeFrame(bytes: Uint8Array, kind: string, written?: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let waiting = false;
      let timer: NodeJS.Timeout | undefined;
      const settle = (err?: Error): void => {
        this.waitingSends.delete(settle);
        clearTimeout(timer);
        if (err) reject(closedError(this.peer, `'${kind}' was not sent (${err.message})`, err));
        else resolve();
      };
      try {
        this.sink.send(bytes, (err) => {
          if (!err) written?.();
          if (waiting) settle(err);
        });
      } catch (err) {
        settle(err as Error);
        return;
      }
      const queued = this.sink.bufferedAmount();
      if (queued <= this.highWaterMarkBytes) {
        resolve();
        return;
      }
      waiting = true;
      this.waitingSends.add(settle);
      if (queued > this.maxQueuedSendBytes) {
        this.stall(`${queued} bytes queued for ${this.peer}, over the cap of ${this.maxQueuedSendBytes}`);
        return;
      }
      timer = setTimeout(
        () => this.stall(`${this.peerRole} ${this.peer} read nothing for ${this.sendStallTimeoutMs} ms with ${this.sink.bufferedAmount()} bytes queued`),
        this.sendStallTimeoutMs,
      );
    });
  }

  private stall(detail: string): void {
    const message = `send stalled: ${detail}`;
    this.abort(CloseCode.SEND_STALLED, truncateCloseReason(message), { code: ErrorCode.SEND_STALLED, message, retryable: true });
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
      let value: unknown;
      try {
        value = decodeFrame(data);
      } catch (err) {
        this.handleParsed({ ok: false, error: err as ProtocolError });
        return;
      }
      if (isChunkLike(value)) {
        this.handleChunk(value);
        return;
      }
      this.handleParsed(tryParseDecoded(value));
    } catch (err) {
      this.failInternally(err);
    }
  }

  private handleChunk(value: unknown): void {
    let whole: Uint8Array | undefined;
    try {
      whole = this.reassembler.accept(parseChunkFrame(value));
    } catch (err) {
      const closeCode = err instanceof ChunkError ? err.closeCode : CloseCode.INVALID_DATA;
      const error = err as OrchestratorError;
      this.refuse(error.code, closeCode, `${error.message} (from ${this.peer})`);
      return;
    }
    if (!whole) return;
    const result = tryParseMessage(whole);
    if (result.ok) this.reassembled.set(result.message, whole);
    this.handleParsed(result);
  }

  /**
   * Declares that nothing references `msg`'s bytes any more (tensor views from `blobToFloat32` included): when
   * it came chunked, its reassembly buffer is reused for a later transfer instead of allocating fresh memory.
   * Optional; a message never released is garbage-collected as usual. Releasing a message whose views are
   * still in use corrupts them.
   */
  release(msg: Message): void {
    const frame = this.reassembled.get(msg);
    if (!frame) return;
    this.reassembled.delete(msg);
    this.reassembler.recycle(frame);
  }

  private handleParsed(result: ParseResult): void {
    if (this.state !== 'open') return;
    try {
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
    // A transfer cut by the close is discarded whole: none of it reaches a handler.
    this.reassembler.discardAll();
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
