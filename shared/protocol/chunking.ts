/**
 * Chunked transfers: a frame whose encoding exceeds the sender's `chunkSizeBytes` travels as numbered
 * `chunk` frames `{ v, kind: 'chunk', transferId, index, count, totalBytes, crc32, data }`, each carrying a
 * CRC-32 (zlib polynomial) of its `data`, in order on one connection. The receiver reassembles them in bounded
 * memory ({@link ChunkReassembler}) and hands the whole frame to `parseMessage`; a `chunk` frame itself never
 * reaches a message handler. Chunks of different transfers may interleave; chunks of one transfer may not be
 * reordered (one TCP stream keeps them in order). A connection that closes mid-transfer discards it whole.
 *
 * `chunk` is a transport envelope, not a {@link Message} kind: a peer that does not know it refuses it as an
 * unknown kind, which only happens when a frame is bigger than that peer's `maxPayload` would have allowed.
 */
import { crc32 } from 'node:zlib';
import { z } from 'zod';
import { ErrorCode, OrchestratorError, ProtocolError } from '../errors.js';
import { PROTOCOL_VERSION } from './messages.js';

/** The `kind` of a chunk frame. */
export const CHUNK_KIND = 'chunk';
/** Default largest frame a sender emits before it chunks: 4 MiB. */
export const DEFAULT_CHUNK_SIZE_BYTES = 4 * 1024 * 1024;
/** Bytes of a chunk frame beyond its data (msgpack keys and numbers; 64 KiB of margin). */
export const CHUNK_HEADER_SLACK_BYTES = 64 * 1024;
/** Default cap on transfers being reassembled at once on one connection. */
export const DEFAULT_MAX_CONCURRENT_TRANSFERS = 4;
/** Default cap on the bytes reserved for reassembly on one connection: 512 MiB. */
export const DEFAULT_MAX_REASSEMBLY_BYTES = 512 * 1024 * 1024;

/** One decoded chunk frame; `data` is a view into the received frame. */
export interface ChunkFrame {
  readonly v: number;
  readonly kind: typeof CHUNK_KIND;
  /** Unique per sender and connection while the transfer lasts. */
  readonly transferId: number;
  /** 0-based position of this chunk. */
  readonly index: number;
  /** Chunks in the transfer (at least 1). */
  readonly count: number;
  /** Bytes of the whole reassembled frame. */
  readonly totalBytes: number;
  /** CRC-32 (zlib) of `data`, unsigned. */
  readonly crc32: number;
  readonly data: Uint8Array;
}

const uint = z.int().nonnegative();
const chunkSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  kind: z.literal(CHUNK_KIND),
  transferId: uint,
  index: uint,
  count: uint.min(1),
  totalBytes: uint,
  crc32: uint.max(0xffffffff),
  data: z.instanceof(Uint8Array),
});

/** Whether a decoded frame claims to be a chunk (checked in full by {@link parseChunkFrame}). */
export function isChunkLike(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === CHUNK_KIND;
}

/**
 * Checks a decoded frame as a chunk frame.
 * @throws ProtocolError E_PROTOCOL_MALFORMED naming the bad field.
 */
export function parseChunkFrame(value: unknown): ChunkFrame {
  const parsed = chunkSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ProtocolError(ErrorCode.PROTOCOL_MALFORMED, `invalid 'chunk' frame: ${issue.path.join('.') || '(frame)'}: ${issue.message}`);
  }
  return parsed.data as ChunkFrame;
}

/** CRC-32 (zlib polynomial) of `bytes`, unsigned. */
export function crc32Of(bytes: Uint8Array): number {
  return crc32(bytes) >>> 0;
}

// The chunk header as fixed msgpack bytes: map of 8, then the keys in order, numbers as uint32 / float64.
const KEY_BYTES = new Map<string, Uint8Array>(
  ['v', 'kind', 'transferId', 'index', 'count', 'totalBytes', 'crc32', 'data'].map((k) => [k, Buffer.from([0xa0 | k.length, ...Buffer.from(k)])]),
);
const KIND_BYTES = Buffer.from([0xa0 | CHUNK_KIND.length, ...Buffer.from(CHUNK_KIND)]);

function writeKey(out: Uint8Array, pos: number, key: string): number {
  const k = KEY_BYTES.get(key)!;
  out.set(k, pos);
  return pos + k.length;
}

function writeUint(view: DataView, pos: number, n: number): number {
  if (n <= 0xffffffff) {
    view.setUint8(pos, 0xce);
    view.setUint32(pos + 1, n);
    return pos + 5;
  }
  view.setUint8(pos, 0xcb);
  view.setFloat64(pos + 1, n);
  return pos + 9;
}

/** Bytes of a chunk frame's header (everything before the data bytes). At most 128. */
export const MAX_CHUNK_HEADER_BYTES = 128;

/**
 * Encodes one chunk frame of `data` (a slice of the whole frame): header, then `data` as a msgpack bin 32,
 * written into `into` when it is large enough (a view of its start is returned), else into a fresh buffer.
 */
export function encodeChunkFrame(
  transferId: number,
  index: number,
  count: number,
  totalBytes: number,
  data: Uint8Array,
  into?: Uint8Array,
): Uint8Array {
  const header = new Uint8Array(MAX_CHUNK_HEADER_BYTES);
  const view = new DataView(header.buffer);
  let pos = 0;
  header[pos++] = 0x88;
  pos = writeKey(header, pos, 'v');
  header[pos++] = PROTOCOL_VERSION;
  pos = writeKey(header, pos, 'kind');
  header.set(KIND_BYTES, pos);
  pos += KIND_BYTES.length;
  pos = writeKey(header, pos, 'transferId');
  pos = writeUint(view, pos, transferId);
  pos = writeKey(header, pos, 'index');
  pos = writeUint(view, pos, index);
  pos = writeKey(header, pos, 'count');
  pos = writeUint(view, pos, count);
  pos = writeKey(header, pos, 'totalBytes');
  pos = writeUint(view, pos, totalBytes);
  pos = writeKey(header, pos, 'crc32');
  pos = writeUint(view, pos, crc32Of(data));
  pos = writeKey(header, pos, 'data');
  header[pos++] = 0xc6;
  view.setUint32(pos, data.byteLength);
  pos += 4;
  const size = pos + data.byteLength;
  const out = into && into.byteLength >= size ? into.subarray(0, size) : Buffer.allocUnsafe(size);
  out.set(header.subarray(0, pos), 0);
  out.set(data, pos);
  return out;
}

/** Limits of a {@link ChunkReassembler}. */
export interface ReassemblyLimits {
  /** @default DEFAULT_MAX_CONCURRENT_TRANSFERS (4) */
  readonly maxConcurrentTransfers?: number;
  /** Bytes reserved for all transfers in progress together. @default DEFAULT_MAX_REASSEMBLY_BYTES (512 MiB) */
  readonly maxReassemblyBytes?: number;
}

/** A refused chunk: the error to report and the close code to close with. */
export class ChunkError extends OrchestratorError {
  /** WebSocket close code: 1007 for bad data, 1008 for a limit. */
  readonly closeCode: number;
  constructor(code: ErrorCode, closeCode: number, message: string) {
    super(code, message);
    this.name = 'ChunkError';
    this.closeCode = closeCode;
  }
}

interface Transfer {
  readonly buffer: Uint8Array;
  /** The whole allocation `buffer` views (larger when it came from the pool). */
  readonly backing: Uint8Array;
  readonly count: number;
  next: number;
  filled: number;
}

/**
 * Reassembles chunked transfers of one connection. Memory is reserved when a transfer's first chunk
 * arrives (`totalBytes`), bounded by the limits; a transfer is delivered only when every chunk arrived with
 * a matching CRC-32 and the sizes add up. Not thread-safe; one instance per connection.
 */
export class ChunkReassembler {
  private readonly transfers = new Map<number, Transfer>();
  /** Reassembly buffers handed back with {@link recycle}, reused for later transfers. */
  private readonly pool: Uint8Array[] = [];
  /** Which allocation each delivered frame views, for {@link recycle}. */
  private readonly delivered = new WeakMap<ArrayBufferLike, Uint8Array>();
  private reservedBytes = 0;
  private readonly maxConcurrentTransfers: number;
  private readonly maxReassemblyBytes: number;

  constructor(limits: ReassemblyLimits = {}) {
    this.maxConcurrentTransfers = limits.maxConcurrentTransfers ?? DEFAULT_MAX_CONCURRENT_TRANSFERS;
    this.maxReassemblyBytes = limits.maxReassemblyBytes ?? DEFAULT_MAX_REASSEMBLY_BYTES;
  }

  /** Transfers in progress. */
  get pendingTransfers(): number {
    return this.transfers.size;
  }

  /** Bytes reserved by transfers in progress. */
  get pendingBytes(): number {
    return this.reservedBytes;
  }

  /**
   * Takes one chunk; returns the whole frame when it was the last one, else undefined.
   * @throws ChunkError E_CHUNK_CHECKSUM (1007) for a CRC mismatch, E_PROTOCOL_MALFORMED (1007) for a chunk
   *   out of order or sizes that do not add up, E_TRANSFER_LIMIT (1008) when a limit would be exceeded.
   *   The transfer concerned is discarded in every case.
   */
  accept(chunk: ChunkFrame): Uint8Array | undefined {
    const { transferId, index, count, totalBytes, data } = chunk;
    let transfer = this.transfers.get(transferId);
    if (!transfer) {
      if (index !== 0) throw this.fail(transferId, ErrorCode.PROTOCOL_MALFORMED, 1007, `chunk ${index} of unknown transfer ${transferId} (expected chunk 0 first)`);
      if (this.transfers.size >= this.maxConcurrentTransfers) {
        throw this.fail(transferId, ErrorCode.TRANSFER_LIMIT, 1008, `transfer ${transferId} would exceed ${this.maxConcurrentTransfers} concurrent transfers`);
      }
      if (this.reservedBytes + totalBytes > this.maxReassemblyBytes) {
        throw this.fail(
          transferId,
          ErrorCode.TRANSFER_LIMIT,
          1008,
          `transfer ${transferId} of ${totalBytes} bytes would exceed the reassembly cap of ${this.maxReassemblyBytes} bytes (${this.reservedBytes} in use)`,
        );
      }
      const backing = this.allocate(totalBytes);
      transfer = { buffer: backing.subarray(0, totalBytes), backing, count, next: 0, filled: 0 };
      this.transfers.set(transferId, transfer);
      this.reservedBytes += totalBytes;
    }
    if (index !== transfer.next || count !== transfer.count || totalBytes !== transfer.buffer.byteLength) {
      throw this.fail(transferId, ErrorCode.PROTOCOL_MALFORMED, 1007, `chunk ${index}/${count} of transfer ${transferId} out of order or inconsistent (expected chunk ${transfer.next}/${transfer.count} of ${transfer.buffer.byteLength} bytes)`);
    }
    if (transfer.filled + data.byteLength > totalBytes || (index === count - 1 && transfer.filled + data.byteLength !== totalBytes)) {
      throw this.fail(transferId, ErrorCode.PROTOCOL_MALFORMED, 1007, `chunk ${index}/${count} of transfer ${transferId}: sizes do not add up to ${totalBytes} bytes`);
    }
    const actual = crc32Of(data);
    if (actual !== chunk.crc32) {
      throw this.fail(transferId, ErrorCode.CHUNK_CHECKSUM, 1007, `chunk ${index}/${count} of transfer ${transferId}: CRC-32 ${actual.toString(16)} does not match ${chunk.crc32.toString(16)}`);
    }
    transfer.buffer.set(data, transfer.filled);
    transfer.filled += data.byteLength;
    transfer.next++;
    if (transfer.next < count) return undefined;
    this.release(transferId);
    this.delivered.set(transfer.buffer.buffer, transfer.backing);
    return transfer.buffer;
  }

  /**
   * Hands back the memory of a frame this reassembler delivered, for reuse by a later transfer: a fresh
   * 100 MB buffer costs about 0.3 s of page faults here, a reused one nothing. Only call it once nothing
   * references the frame's bytes (decoded tensor views included); frames never recycled are simply
   * garbage-collected. Bytes it did not deliver are ignored.
   */
  recycle(frame: Uint8Array): void {
    const backing = this.delivered.get(frame.buffer);
    if (!backing) return;
    this.delivered.delete(frame.buffer);
    if (backing.byteLength > this.maxReassemblyBytes || this.pool.includes(backing)) return;
    this.pool.push(backing);
    // Keep the two largest.
    this.pool.sort((a, b) => b.byteLength - a.byteLength);
    this.pool.length = Math.min(this.pool.length, 2);
  }

  /** Discards every transfer in progress (the connection closed). */
  discardAll(): void {
    this.transfers.clear();
    this.reservedBytes = 0;
  }

  /** A plain Uint8Array (not a Buffer): decoded byte strings then come back as plain views too. */
  private allocate(totalBytes: number): Uint8Array {
    let best = -1;
    for (let i = 0; i < this.pool.length; i++) {
      if (this.pool[i].byteLength >= totalBytes && (best < 0 || this.pool[i].byteLength < this.pool[best].byteLength)) best = i;
    }
    if (best >= 0) return this.pool.splice(best, 1)[0];
    // A Buffer of 4 KiB or more has an ArrayBuffer of its own (offset 0): tensor data 8-aligned in the frame stays aligned.
    const buf = Buffer.allocUnsafe(totalBytes);
    return new Uint8Array(buf.buffer, buf.byteOffset, totalBytes);
  }

  private release(transferId: number): void {
    const transfer = this.transfers.get(transferId);
    if (!transfer) return;
    this.transfers.delete(transferId);
    this.reservedBytes -= transfer.buffer.byteLength;
  }

  private fail(transferId: number, code: ErrorCode, closeCode: number, message: string): ChunkError {
    this.release(transferId);
    return new ChunkError(code, closeCode, message);
  }
}
