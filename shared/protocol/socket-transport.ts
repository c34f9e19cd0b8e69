/**
 * A {@link Transport} over any message socket: the part of a WebSocket connection both roles share. It
 * parses every inbound frame through `tryParseMessage`, answers a refused frame with an `error` frame and a
 * close code (see ./close-codes.ts), and reports one close event that says why. It never throws into the
 * socket's callbacks.
 *
 * Sends go through a {@link SendQueue} (./send-queue.ts: order, chunking, backpressure, stall detection: a
 * stalled peer holds at most about high-water mark + one chunk of this process's memory). Inbound chunks and
 * fragmented messages are reassembled under per-connection caps (./chunk-reassembler.ts) before the whole frame
 * meets `parseMessage`; a receiver that calls {@link SocketTransport.release} once it copied a message's tensors
 * out lets the next transfer reuse that memory. It does not import `ws` (shared/ must not): the coordinator and
 * worker adapters wire a `ws` WebSocket to it with `attachWebSocket` (./ws-attach.ts).
 */
import { ErrorCode, OrchestratorError, ProtocolError, errorCodeOf } from '../errors.js';
import { decodeFrame, encodeMessage } from '../codec.js';
import type { CloseHandler, MessageHandler, Transport, TransportCloseEvent } from '../transport.js';
import { makeErrorFrame } from './build.js';
import { CloseCode, closeCodeForError, truncateCloseReason } from './close-codes.js';
import type { ErrorFrame, Message } from './messages.js';
import { MsgKind, PROTOCOL_VERSION } from './messages.js';
import { ProtocolVersionError, tryParseDecoded, tryParseMessage, type ParseResult } from './parse.js';
import {
  DEFAULT_CHUNK_SIZE_BYTES,
  MAX_CHUNK_SIZE_BYTES,
  MIN_CHUNK_SIZE_BYTES,
  isChunkLike,
  parseChunkFrame,
  parseFragmentedChunk,
  readChunkHeaderFragment,
} from './chunking.js';
import { FragmentSink } from './fragment-sink.js';
import { ChunkError, ChunkReassembler, type ReassemblyLimits } from './chunk-reassembler.js';
import {
  DEFAULT_HIGH_WATER_MARK_BYTES,
  DEFAULT_MAX_QUEUED_SEND_BYTES,
  DEFAULT_SEND_STALL_TIMEOUT_MS,
  SendQueue,
  closedError,
  type SocketSink,
} from './send-queue.js';

export { DEFAULT_HIGH_WATER_MARK_BYTES, DEFAULT_MAX_QUEUED_SEND_BYTES, DEFAULT_SEND_STALL_TIMEOUT_MS, type SocketSink };
export { attachWebSocket, type WebSocketLike } from './ws-attach.js';

/** Default bound on inbound messages queued while no message handler is registered. */
export const DEFAULT_MAX_QUEUED_MESSAGES = 1024;
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

/** A Transport over a {@link SocketSink}; the adapter feeds it socket events through the `handle*` methods. */
export class SocketTransport implements Transport {
  readonly peer: string;
  readonly closed: Promise<TransportCloseEvent>;
  private state: State = 'open';
  private readonly localRole: string;
  private readonly peerRole: string;
  private readonly highWaterMarkBytes: number;
  private readonly maxQueuedMessages: number;
  private readonly reassembler: ChunkReassembler;
  private readonly sendQueue: SendQueue;
  /** Reassembled frames by the message decoded from them, for {@link release}. */
  private readonly reassembled = new WeakMap<Message, Uint8Array>();
  private readonly messageHandlers: MessageHandler[] = [];
  private readonly closeHandlers: CloseHandler[] = [];
  private readonly inbox: Message[] = [];
  private streamedChunkCount = 0;
  private landedByteCount = 0;
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
    this.reassembler = new ChunkReassembler(options.reassembly);
    this.sendQueue = new SendQueue(sink, {
      peer: this.peer,
      peerRole: this.peerRole,
      highWaterMarkBytes: this.highWaterMarkBytes,
      chunkSizeBytes: options.chunkSizeBytes ?? DEFAULT_CHUNK_SIZE_BYTES,
      sendStallTimeoutMs: options.sendStallTimeoutMs ?? DEFAULT_SEND_STALL_TIMEOUT_MS,
      maxQueuedSendBytes: options.maxQueuedSendBytes ?? DEFAULT_MAX_QUEUED_SEND_BYTES,
      isOpen: () => this.state === 'open',
      onStall: (detail) => this.stall(detail),
    });
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  send(msg: Message): Promise<void> {
    if (this.state !== 'open') return Promise.reject(closedError(this.peer, `cannot send '${msg.kind}'`));
    return this.sendQueue.send(msg);
  }

  /**
   * Changes the chunk size of later sends (a worker learns the run's from `welcome`).
   * @throws OrchestratorError E_CONFIG_INVALID when outside [MIN_CHUNK_SIZE_BYTES, MAX_CHUNK_SIZE_BYTES].
   */
  setChunkSizeBytes(chunkSizeBytes: number): void {
    if (!Number.isSafeInteger(chunkSizeBytes) || chunkSizeBytes < MIN_CHUNK_SIZE_BYTES || chunkSizeBytes > MAX_CHUNK_SIZE_BYTES) {
      throw new OrchestratorError(
        ErrorCode.CONFIG_INVALID,
        `chunk size ${chunkSizeBytes} for the link to ${this.peer} is outside [${MIN_CHUNK_SIZE_BYTES}, ${MAX_CHUNK_SIZE_BYTES}] bytes`,
      );
    }
    this.sendQueue.chunkSizeBytes = chunkSizeBytes;
  }

  /** The chunk size of sends, in bytes. */
  get chunkSizeBytes(): number {
    return this.sendQueue.chunkSizeBytes;
  }

  /** Inbound transfers being reassembled, and the bytes they reserve (for tests and metrics). */
  get reassemblyState(): { readonly transfers: number; readonly bytes: number } {
    return { transfers: this.reassembler.pendingTransfers, bytes: this.reassembler.pendingBytes };
  }

  /** Inbound chunks so far streamed into reassembly fragment by fragment (./fragment-sink.ts), for tests and metrics. */
  get streamedChunks(): number {
    return this.streamedChunkCount;
  }

  /** Inbound chunk data bytes so far read straight into reassembly (./socket-read-landing.ts), for tests and metrics. */
  get bytesLandedInPlace(): number {
    return this.landedByteCount;
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

  /**
   * Adapter entry point: one inbound frame (`joined`: `data` came from the reassembler, to be recycled by
   * {@link release}). Never throws.
   */
  handleFrame(data: Uint8Array, isBinary: boolean, joined = false): void {
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
      const result = tryParseDecoded(value);
      if (result.ok && joined) this.reassembled.set(result.message, data);
      this.handleParsed(result);
    } catch (err) {
      this.failInternally(err);
    }
  }

  /**
   * Adapter entry point: one inbound message that arrived as WebSocket fragments (ws `binaryType`
   * 'fragments'). A chunk frame is read without joining its fragments; another message is joined into a
   * reassembly buffer that {@link release} hands back. Never throws.
   */
  handleFragments(fragments: readonly Uint8Array[], isBinary: boolean): void {
    if (this.state !== 'open') return;
    if (fragments.length <= 1 || !isBinary) {
      this.handleFrame(fragments.length === 1 ? fragments[0] : Buffer.concat(fragments), isBinary);
      return;
    }
    try {
      const chunk = parseFragmentedChunk(fragments);
      if (chunk) this.handleChunk(chunk.head, chunk.parts);
      else this.handleFrame(this.reassembler.join(fragments), true, true);
    } catch (err) {
      this.failInternally(err);
    }
  }

  private handleChunk(value: unknown, parts?: readonly Uint8Array[]): void {
    let whole: Uint8Array | undefined;
    try {
      whole = this.reassembler.accept(parseChunkFrame(value), parts);
    } catch (err) {
      this.refuseChunk(err);
      return;
    }
    if (whole) this.deliverWhole(whole);
  }

  private refuseChunk(err: unknown): void {
    const closeCode = err instanceof ChunkError ? err.closeCode : CloseCode.INVALID_DATA;
    const error = err as OrchestratorError;
    this.refuse(error.code, closeCode, `${error.message} (from ${this.peer})`);
  }

  private deliverWhole(whole: Uint8Array): void {
    const result = tryParseMessage(whole);
    if (result.ok) this.reassembled.set(result.message, whole);
    this.handleParsed(result);
  }

  /**
   * A list for `ws` to collect the next inbound message's fragments in, streaming a chunk's data into this
   * transport's reassembly as it arrives (see ./fragment-sink.ts); the message then comes to
   * {@link handleFragmentSink}. `isBinary` tells whether the message being received is binary.
   */
  createFragmentSink(isBinary: () => boolean): FragmentSink {
    return new FragmentSink({
      isBinary,
      begin: (first) => {
        if (this.state !== 'open') return undefined;
        const read = readChunkHeaderFragment(first);
        return read && this.reassembler.begin(read.head, read.dataBytes, true);
      },
      add: (progress, part) => this.reassembler.add(progress, part),
      landing: (progress, maxBytes) => this.reassembler.landing(progress, maxBytes),
      addLanded: (progress, view, n) => {
        const taken = this.reassembler.addLanded(progress, view, n);
        if (taken) this.landedByteCount += n;
        return taken;
      },
    });
  }

  /** Adapter entry point: one inbound message collected by a {@link createFragmentSink} sink. Never throws. */
  handleFragmentSink(sink: FragmentSink, isBinary: boolean): void {
    if (!sink.isStreamed) {
      this.handleFragments(sink, isBinary);
      return;
    }
    if (this.state !== 'open') return;
    try {
      let whole: Uint8Array | undefined;
      try {
        if (sink.error !== undefined) throw sink.error;
        whole = this.reassembler.finish(sink.progress!);
        this.streamedChunkCount++;
      } catch (err) {
        this.refuseChunk(err);
        return;
      }
      if (whole) this.deliverWhole(whole);
    } catch (err) {
      this.failInternally(err);
    }
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
    this.sendQueue.failAll(`connection closed (${event.code})`);
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

/**
 * {@link SocketTransport.release} for any {@link Transport}: hands `msg`'s reassembly memory back when the
 * transport is a SocketTransport, does nothing otherwise. Call it once `msg`'s tensors were copied out.
 */
export function releaseMessage(transport: Transport, msg: Message): void {
  if (transport instanceof SocketTransport) transport.release(msg);
}

/**
 * {@link SocketTransport.setChunkSizeBytes} for any {@link Transport} (no-op for other transports).
 * @throws OrchestratorError E_CONFIG_INVALID when the size is out of bounds.
 */
export function setChunkSize(transport: Transport, chunkSizeBytes: number): void {
  if (transport instanceof SocketTransport) transport.setChunkSizeBytes(chunkSizeBytes);
}
