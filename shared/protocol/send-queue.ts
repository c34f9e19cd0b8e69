/**
 * The send side of a {@link SocketTransport}: frames go out in order, one message at a time, with
 * backpressure. A frame is encoded as segments (`encodeMessageSegments`: the structure, then each large
 * tensor's bytes as a view of the caller's array) and never packed whole: a frame up to `chunkSizeBytes` goes
 * as one WebSocket message, a longer one as chunk frames (./chunking.ts) whose data are views of those
 * segments.
 *
 * A message longer than {@link WS_FIRST_FRAGMENT_BYTES} goes as WebSocket fragments: a first one of at most
 * that size, then each remaining segment whole (a view of a tensor: no copy, one frame header per segment),
 * in one corked burst. A chunk frame goes as its header alone, then its data in fragments of at most
 * {@link SEND_PIECE_BYTES}, each handed to the socket before it is checksummed (the kernel's copy brings it
 * into cache, so the CRC-32 reads it from there instead of memory), then its trailer with the CRC-32. The
 * receiver streams later fragments piece by piece as its socket reads them (./ws-streaming-receiver.ts) and
 * copies each piece once, into a reused reassembly buffer: `ws` never joins a multi-megabyte frame into
 * fresh memory.
 *
 * Backpressure: each write resolves at once while the socket buffer is under the high-water mark, else when
 * it reached the OS; a wait past `sendStallTimeoutMs`, or a buffer over `maxQueuedSendBytes`, reports a stall
 * (the transport drops the peer with 4005). A send resolves only once the socket has taken all its bytes,
 * since they are views of the caller's tensors: do not mutate those until the send resolves.
 */
import { crc32 } from '../checksum.js';
import { ErrorCode, OrchestratorError } from '../errors.js';
import { encodeMessageSegments } from '../codec.js';
import type { Message } from './messages.js';
import { encodeChunkHeader, encodeChunkTrailer } from './chunking.js';

/** Default send high-water mark: `send` waits for the OS when more than this many bytes are queued. */
export const DEFAULT_HIGH_WATER_MARK_BYTES = 4 * 1024 * 1024;
/** Default time a send may wait for the peer to read before the connection is dropped as stalled: 60 s. */
export const DEFAULT_SEND_STALL_TIMEOUT_MS = 60_000;
/** Default cap on bytes queued in the socket and not yet handed to the OS: 64 MiB. */
export const DEFAULT_MAX_QUEUED_SEND_BYTES = 64 * 1024 * 1024;
/**
 * Largest first WebSocket fragment of a message: 32 KiB. The receiver takes a message's first fragment whole
 * (it decides how the rest is handled: a chunk header, or the start of a message), so it stays small.
 */
export const WS_FIRST_FRAGMENT_BYTES = 32 * 1024;

/** The socket operations a {@link SocketTransport} needs. */
export interface SocketSink {
  /** Writes one binary frame; `done` runs once it is handed to the OS, or with an error. */
  send(bytes: Uint8Array, done: (err?: Error) => void): void;
  /**
   * Writes one binary message as WebSocket fragments, in one synchronous burst; `done` runs once the last is
   * handed to the OS, or with an error. Optional: without it, the parts are joined and sent with `send`.
   */
  sendFragments?(parts: readonly Uint8Array[], done: (err?: Error) => void): void;
  /**
   * Writes one WebSocket fragment of a binary message now (not corked: the socket copies it at once when the
   * OS takes it); `fin` marks the message's last, and `done` runs once that one is handed to the OS, or with
   * an error. Optional, with {@link sendFragments}: without it, a chunk's data is checksummed before it is sent.
   */
  sendFragment?(bytes: Uint8Array, fin: boolean, done?: (err?: Error) => void): void;
  close(code: number, reason: string): void;
  /** Drops the connection at once, without a closing handshake. */
  terminate(): void;
  /** Bytes queued and not yet handed to the OS. */
  bufferedAmount(): number;
}

/** Settings of a {@link SendQueue}. */
export interface SendQueueOptions {
  readonly peer: string;
  readonly peerRole: string;
  readonly highWaterMarkBytes: number;
  /** Initial chunk size; {@link SendQueue.chunkSizeBytes} changes it for later sends. */
  readonly chunkSizeBytes: number;
  readonly sendStallTimeoutMs: number;
  readonly maxQueuedSendBytes: number;
  /** Whether the connection still takes sends. */
  readonly isOpen: () => boolean;
  /** Called once the peer is taken as stalled, with what happened; it must close the connection. */
  readonly onStall: (detail: string) => void;
}

/** An error for a send on (or cut by) a closed connection. */
export function closedError(peer: string, detail: string, cause?: unknown): OrchestratorError {
  return new OrchestratorError(ErrorCode.CONNECTION_CLOSED, `connection to ${peer} is closed: ${detail}`, { cause });
}

/**
 * The WebSocket fragments of a message made of `parts` (views, no copy): a first fragment of at most
 * {@link WS_FIRST_FRAGMENT_BYTES}, then each remaining part whole.
 */
function fragment(parts: readonly Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const part of parts) {
    if (part.byteLength === 0) continue;
    if (out.length === 0 && part.byteLength > WS_FIRST_FRAGMENT_BYTES) {
      out.push(part.subarray(0, WS_FIRST_FRAGMENT_BYTES), part.subarray(WS_FIRST_FRAGMENT_BYTES));
    } else {
      out.push(part);
    }
  }
  return out;
}

/**
 * Largest data fragment of a chunk frame: 2 MiB, the size of one core's L2 cache here, so that a piece the
 * socket just copied is mostly still in cache when it is checksummed. Smaller pieces cost more in `writev`
 * calls than they save: in one interleaved run after another on this machine (`ws_vs_tcp` at 10 MB), 2 MiB
 * pieces beat 4 MiB ones in five runs of six and 1 MiB ones in all three, and 256 KiB ones were the slowest.
 */
export const SEND_PIECE_BYTES = 2 * 1024 * 1024;

/** Data bytes of each chunk of a `total`-byte frame: `chunkSizeBytes` each, the last one what is left. */
export function chunkSizes(total: number, chunkSizeBytes: number): number[] {
  const sizes: number[] = [];
  for (let left = total; left > 0; left -= chunkSizeBytes) sizes.push(Math.min(chunkSizeBytes, left));
  return sizes;
}

/** Ordered, backpressured sends over one {@link SocketSink}. */
export class SendQueue {
  private nextTransferId = 0;
  /** Sends run one after another, so that a chunked frame and a later small one keep their order. */
  private sendTail: Promise<void> = Promise.resolve();
  private pendingSends = 0;
  private readonly waitingSends = new Set<(err?: Error) => void>();
  /** A frame whose encoding is longer goes as chunk frames of at most this many data bytes. */
  chunkSizeBytes: number;

  constructor(
    private readonly sink: SocketSink,
    private readonly options: SendQueueOptions,
  ) {
    this.chunkSizeBytes = options.chunkSizeBytes;
  }

  /** Queues `msg`; resolves once the socket took all its bytes. @throws OrchestratorError E_CONNECTION_CLOSED */
  send(msg: Message): Promise<void> {
    // With nothing in flight the frame goes to the socket synchronously; otherwise it waits its turn.
    const run = this.pendingSends === 0 ? this.sendNow(msg) : this.sendTail.then(() => this.sendNow(msg));
    this.pendingSends++;
    const done = (): void => {
      this.pendingSends--;
    };
    this.sendTail = run.then(done, done);
    return run;
  }

  /** Fails every send waiting on the socket (the connection closed). */
  failAll(detail: string): void {
    for (const settle of [...this.waitingSends]) settle(new Error(detail));
  }

  private async sendNow(msg: Message): Promise<void> {
    const { peer } = this.options;
    const chunkSizeBytes = this.chunkSizeBytes;
    if (!this.options.isOpen()) throw closedError(peer, `cannot send '${msg.kind}'`);
    const segments = encodeMessageSegments(msg);
    let total = 0;
    for (const s of segments) total += s.byteLength;
    if (total <= chunkSizeBytes) {
      // Only views of the caller's tensors (more than one segment) must be written out before resolving.
      await this.write(this.sendParts(segments), msg.kind, segments.length > 1);
      return;
    }
    const sizes = chunkSizes(total, chunkSizeBytes);
    const count = sizes.length;
    const transferId = this.nextTransferId++;
    const cursor = { seg: 0, at: 0 };
    for (let i = 0; i < count; i++) {
      if (!this.options.isOpen()) throw closedError(peer, `'${msg.kind}' cut after ${i} of ${count} chunks`);
      const header = encodeChunkHeader(transferId, i, count, total, sizes[i]);
      const pieces = takePieces(segments, cursor, sizes[i]);
      await this.write(this.sendChunk(header, pieces), msg.kind, i === count - 1);
    }
  }

  /**
   * What sends one chunk frame (`header`, the data `pieces`, the trailer): each piece is checksummed right
   * after the socket took it, while it is in cache, when the sink writes single fragments; else all of them
   * first, and the frame goes as one message.
   */
  private sendChunk(header: Uint8Array, pieces: readonly Uint8Array[]): (done: (err?: Error) => void) => void {
    const { sink } = this;
    if (sink.sendFragment) {
      const sendFragment = sink.sendFragment.bind(sink);
      return (done) => {
        sendFragment(header, false);
        let crc = 0;
        for (const piece of pieces) {
          sendFragment(piece, false);
          crc = crc32(piece, crc);
        }
        sendFragment(encodeChunkTrailer(crc), true, done);
      };
    }
    let crc = 0;
    for (const piece of pieces) crc = crc32(piece, crc);
    return this.sendParts([header, ...pieces, encodeChunkTrailer(crc)]);
  }

  /** What sends the concatenation of `parts` as one message: whole when short, else as fragments (or joined). */
  private sendParts(parts: readonly Uint8Array[]): (done: (err?: Error) => void) => void {
    const { sink } = this;
    if (parts.length === 1 && parts[0].byteLength <= WS_FIRST_FRAGMENT_BYTES) return (done) => sink.send(parts[0], done);
    if (sink.sendFragments) return (done) => sink.sendFragments!(fragment(parts), done);
    return (done) => sink.send(parts.length === 1 ? parts[0] : Buffer.concat(parts), done);
  }

  /**
   * Hands one message to the socket (`send` writes it, calling back once it reached the OS); resolves at once
   * while the socket buffer is under the high-water mark and `untilWritten` is false, else when the message
   * reached the OS. A wait longer than the stall timeout, or a buffer over the queue cap, reports a stall.
   */
  private write(send: (done: (err?: Error) => void) => void, kind: string, untilWritten: boolean): Promise<void> {
    const { peer, peerRole, highWaterMarkBytes, maxQueuedSendBytes, sendStallTimeoutMs } = this.options;
    return new Promise<void>((resolve, reject) => {
      let waiting = false;
      let timer: NodeJS.Timeout | undefined;
      const settle = (err?: Error): void => {
        this.waitingSends.delete(settle);
        clearTimeout(timer);
        if (err) reject(closedError(peer, `'${kind}' was not sent (${err.message})`, err));
        else resolve();
      };
      const done = (err?: Error): void => {
        if (waiting) settle(err);
      };
      try {
        send(done);
      } catch (err) {
        settle(err as Error);
        return;
      }
      const queued = this.sink.bufferedAmount();
      if (queued <= highWaterMarkBytes && (!untilWritten || queued === 0)) {
        resolve();
        return;
      }
      waiting = true;
      this.waitingSends.add(settle);
      if (queued > maxQueuedSendBytes) {
        this.options.onStall(`${queued} bytes queued for ${peer}, over the cap of ${maxQueuedSendBytes}`);
        return;
      }
      timer = setTimeout(
        () => this.options.onStall(`${peerRole} ${peer} read nothing for ${sendStallTimeoutMs} ms with ${this.sink.bufferedAmount()} bytes queued`),
        sendStallTimeoutMs,
      );
    });
  }
}

/**
 * The next `bytes` bytes of `segments` from `cursor` (which moves on), as views of at most
 * {@link SEND_PIECE_BYTES} each.
 */
function takePieces(segments: readonly Uint8Array[], cursor: { seg: number; at: number }, bytes: number): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  for (let need = bytes; need > 0; ) {
    const s = segments[cursor.seg];
    const take = Math.min(need, s.byteLength - cursor.at, SEND_PIECE_BYTES);
    if (take > 0) pieces.push(s.subarray(cursor.at, cursor.at + take));
    need -= take;
    cursor.at += take;
    if (cursor.at === s.byteLength) {
      cursor.seg++;
      cursor.at = 0;
    }
  }
  return pieces;
}
