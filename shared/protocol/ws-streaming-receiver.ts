/**
 * Makes `ws`'s Receiver hand the payload of a message's later frames over piece by piece, as each socket read
 * delivers it, instead of waiting until a frame is whole and joining the reads that hold it into fresh memory.
 *
 * `ws` reads the socket 64 KiB at a time and only parses a frame's payload once all of it is buffered; a frame
 * that spans reads is then copied into a new Buffer of its size. For a tensor that is one extra copy of most of
 * its bytes into memory touched for the first time (page faults), and by the time a 4 MiB frame is whole its
 * first reads have left the cache. Measured with plain `ws` echoing 10 MB on this machine: 0.5-0.7 of raw TCP's
 * round-trip throughput with 32 KiB fragments, 0.35-0.75 with one frame; 0.85-1.15 with this (100 MB: 1.0).
 *
 * Only continuation frames of a binary message whose first frame was already taken whole are streamed (so the
 * first fragment, which carries a chunk header or the start of a message, always arrives complete), and only
 * when `wantsPieces` says the message's fragment list takes pieces; every other frame goes through `ws`'s own
 * code. The pieces are views of the socket's reads (no copy), unmasked in place when the peer masks. A read that
 * falls wholly inside such a frame skips ws's Writable machinery too (`receiver.write` is wrapped): about 0.4 ms
 * less CPU per process per 10 MB round trip here. And when the fragment list can say where the frame's bytes go
 * (a chunk's reassembly buffer: {@link LandingFragmentList}), the next socket read can land there directly
 * (the returned {@link ReadLanding}, installed on the socket by ./socket-read-landing.ts). This
 * relies on private fields of `ws` 8's Receiver; they are checked at run time and, when absent, nothing is
 * changed (correct, only slower).
 */
import type { ReadLanding } from './socket-read-landing.js';

/** A fragment list that knows where its message's next bytes go (./fragment-sink.ts). */
export interface LandingFragmentList {
  landing(maxBytes: number): Uint8Array | undefined;
  takeLanded(view: Uint8Array, n: number): boolean;
}

function isLandingList(list: unknown): list is LandingFragmentList {
  const l = list as Partial<LandingFragmentList> | null | undefined;
  return typeof l?.landing === 'function' && typeof l.takeLanded === 'function';
}

/** The private surface of ws 8's Receiver this relies on. */
interface StreamableReceiver {
  _buffers: Uint8Array[];
  _bufferedBytes: number;
  _payloadLength: number;
  _totalPayloadLength: number;
  _messageLength: number;
  _maxFragments: number;
  _numFragments: number;
  _fragments: unknown;
  _opcode: number;
  _compressed: boolean;
  _masked: boolean;
  _mask: Uint8Array | undefined;
  _loop: boolean;
  _state: number;
  _errored: boolean;
  readonly writableLength: number;
  write(chunk: Uint8Array, encoding?: unknown, cb?: unknown): boolean;
  consume(n: number): Uint8Array;
  getData(cb: (err?: Error) => void): void;
  dataMessage(cb: (err?: Error) => void): void;
  createError(type: ErrorConstructor, message: string, prefix: boolean, statusCode: number, errorCode: string): Error;
}

const BINARY_OPCODE = 2;
/** ws 8's Receiver state while it reads a frame's payload. */
const GET_DATA = 4;

const NUMBER_FIELDS = ['_bufferedBytes', '_payloadLength', '_totalPayloadLength', '_messageLength', '_opcode', '_maxFragments', '_numFragments', '_state', 'writableLength'] as const;
const BOOLEAN_FIELDS = ['_compressed', '_masked', '_errored'] as const;
const METHODS = ['consume', 'getData', 'dataMessage', 'createError', 'write'] as const;

function isStreamable(receiver: unknown): receiver is StreamableReceiver {
  const r = receiver as Record<string, unknown> | null | undefined;
  return (
    !!r &&
    Array.isArray(r._buffers) &&
    NUMBER_FIELDS.every((k) => typeof r[k] === 'number') &&
    BOOLEAN_FIELDS.every((k) => typeof r[k] === 'boolean') &&
    METHODS.every((k) => typeof r[k] === 'function')
  );
}

/** XORs `piece`, which starts `offset` bytes into a frame's payload, with the frame's 4-byte `mask`, in place. */
function unmaskAt(piece: Uint8Array, mask: Uint8Array, offset: number): void {
  for (let i = 0; i < piece.length; i++) piece[i] ^= mask[(offset + i) & 3];
}

/** The mask of the frame being read, when the peer masks with a non-zero one (a zero mask changes nothing). */
function nonZeroMask(receiver: StreamableReceiver): Uint8Array | undefined {
  const mask = receiver._mask;
  return receiver._masked && mask && (mask[0] | mask[1] | mask[2] | mask[3]) !== 0 ? mask : undefined;
}

/**
 * Streams continuation frames of `receiver` (a ws Receiver) into its fragment list when `wantsPieces(list)`.
 * Returns where the socket's next read may land, for ./socket-read-landing.ts, or undefined when the receiver
 * could not be changed (ws's internals differ; it keeps its own behaviour).
 */
export function streamContinuationFrames(receiver: unknown, wantsPieces: (fragments: unknown) => boolean): ReadLanding | undefined {
  if (!isStreamable(receiver)) return undefined;
  const wholeFrame = receiver.getData;
  /** Whether a frame is being streamed, and how many of its payload bytes were handed over so far. */
  let streaming = false;
  let frameOffset = 0;
  receiver.getData = function getData(this: StreamableReceiver, cb: (err?: Error) => void): void {
    if (!streaming) {
      const streamable = this._payloadLength > 0 && this._opcode === BINARY_OPCODE && !this._compressed && wantsPieces(this._fragments);
      if (!streamable) {
        wholeFrame.call(this, cb);
        return;
      }
      // ws's own limit on fragments per message, with its own error (it closes 1008).
      if (this._maxFragments > 0 && ++this._numFragments > this._maxFragments) {
        cb(this.createError(RangeError, 'Too many message fragments', false, 1008, 'WS_ERR_TOO_MANY_BUFFERED_PARTS'));
        return;
      }
      streaming = true;
      frameOffset = 0;
    }
    const mask = nonZeroMask(this);
    const fragments = this._fragments as { push(piece: Uint8Array): unknown };
    while (this._payloadLength > 0 && this._bufferedBytes > 0) {
      // Never more than the first buffered read holds: consume then returns a view, not a copy.
      const piece = this.consume(Math.min(this._payloadLength, this._buffers[0].length));
      if (mask) unmaskAt(piece, mask, frameOffset);
      frameOffset += piece.length;
      this._payloadLength -= piece.length;
      fragments.push(piece);
    }
    if (this._payloadLength > 0) {
      this._loop = false;
      return;
    }
    streaming = false;
    // As ws's getData does once a frame's payload is taken: the mask is a view that pins a socket read.
    this._mask = undefined;
    this._messageLength = this._totalPayloadLength;
    this.dataMessage(cb);
  };
  /** Whether a frame is being streamed with nothing buffered or pending: the socket's next bytes are its payload. */
  const idleInsideFrame = (r: StreamableReceiver): boolean =>
    streaming && r._state === GET_DATA && r._bufferedBytes === 0 && !r._errored && r.writableLength === 0;
  // A socket read that falls wholly inside the frame being streamed goes straight to the fragment list, without
  // ws's Writable machinery (a write, its callback and a nextTick per 64 KiB read). Anything else (the read
  // that ends the frame, a receiver with bytes or writes pending) takes ws's own path.
  const write = receiver.write;
  receiver.write = function writeRead(this: StreamableReceiver, chunk: Uint8Array, encoding?: unknown, cb?: unknown): boolean {
    if (!idleInsideFrame(this) || !(chunk instanceof Uint8Array) || chunk.length >= this._payloadLength) {
      return write.call(this, chunk, encoding, cb);
    }
    const mask = nonZeroMask(this);
    if (mask) unmaskAt(chunk, mask, frameOffset);
    frameOffset += chunk.length;
    this._payloadLength -= chunk.length;
    (this._fragments as { push(piece: Uint8Array): unknown }).push(chunk);
    if (typeof cb === 'function') queueMicrotask(cb as () => void);
    return true;
  };
  /**
   * Whether the socket's next bytes may land in place: {@link idleInsideFrame}, with more than the frame's last
   * byte to come (that one goes through ws, which ends the frame). Masked frames are left to ws (they would
   * need unmasking in place).
   */
  const readsInsideFrame = (r: StreamableReceiver): boolean => idleInsideFrame(r) && r._payloadLength > 1 && !nonZeroMask(r);
  return {
    next(): Uint8Array | undefined {
      const list = receiver._fragments;
      return readsInsideFrame(receiver) && isLandingList(list) ? list.landing(receiver._payloadLength - 1) : undefined;
    },
    landed(view: Uint8Array, n: number): boolean {
      const list = receiver._fragments;
      if (!readsInsideFrame(receiver) || n >= receiver._payloadLength || !isLandingList(list) || !list.takeLanded(view, n)) return false;
      frameOffset += n;
      receiver._payloadLength -= n;
      return true;
    },
  };
}
