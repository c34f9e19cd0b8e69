/**
 * Reassembly of chunked transfers (./chunking.ts) on one connection, in bounded memory: memory is reserved
 * when a transfer's first chunk arrives, every chunk's CRC-32 is checked, and a transfer is delivered whole
 * or not at all. Delivered frames can be handed back ({@link ChunkReassembler.recycle}) so that the next
 * transfer lands in memory already touched instead of fresh pages.
 */
import { ErrorCode, OrchestratorError } from '../errors.js';
import { crc32, crc32Copy } from '../checksum.js';
import { CHUNK_TRAILER_BYTES, DEFAULT_MAX_CONCURRENT_TRANSFERS, DEFAULT_MAX_REASSEMBLY_BYTES, readChunkTrailer, type ChunkFrame } from './chunking.js';

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

/** One chunk being taken part by part ({@link ChunkReassembler.begin}); opaque to callers. */
export interface ChunkInProgress {
  readonly chunk: ChunkFrame;
  readonly transfer: Transfer;
  /** Data bytes the chunk declares. */
  readonly dataBytes: number;
  /** Where the next part lands in the transfer's buffer. */
  at: number;
  /** CRC-32 of the parts so far. */
  crc: number;
  /** The chunk's trailer, when its CRC-32 comes after the data (streamed parts); undefined: `chunk.crc32` holds it. */
  readonly trailer?: Uint8Array;
  /** Trailer bytes received so far. */
  trailerFilled: number;
}

interface Transfer {
  readonly buffer: Uint8Array;
  /** The whole allocation `buffer` views (larger when it came from the pool). */
  readonly backing: Uint8Array;
  readonly count: number;
  next: number;
  filled: number;
}

/** Data bytes the chunk declares that have not come yet. */
function dataBytesLeft(progress: ChunkInProgress): number {
  return progress.transfer.filled + progress.dataBytes - progress.at;
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
   * Takes one chunk (its data is `parts` concatenated when given, else `chunk.data`); returns the whole
   * frame when it was the last one, else undefined.
   * @throws ChunkError E_CHUNK_CHECKSUM (1007) for a CRC mismatch, E_PROTOCOL_MALFORMED (1007) for a chunk
   *   out of order or sizes that do not add up, E_TRANSFER_LIMIT (1008) when a limit would be exceeded.
   *   The transfer concerned is discarded in every case.
   */
  accept(chunk: ChunkFrame, parts?: readonly Uint8Array[]): Uint8Array | undefined {
    const data = parts ?? [chunk.data];
    let dataBytes = 0;
    for (const part of data) dataBytes += part.byteLength;
    const progress = this.begin(chunk, dataBytes);
    for (const part of data) this.add(progress, part);
    return this.finish(progress);
  }

  /**
   * Starts taking one chunk whose `dataBytes` data bytes will come in parts ({@link add}, then {@link finish}):
   * the incremental form of {@link accept}, for data checked and copied while it is still in cache. With
   * `crcInTrailer`, the parts go on past the data with the chunk's trailer (./chunking.ts), whose CRC-32 is
   * checked instead of `chunk.crc32`. Reserves the transfer's memory on its first chunk.
   * @throws ChunkError as {@link accept} (limits, order, sizes); the transfer is discarded.
   */
  begin(chunk: ChunkFrame, dataBytes: number, crcInTrailer = false): ChunkInProgress {
    const { transferId, index, count, totalBytes } = chunk;
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
    if (transfer.filled + dataBytes > totalBytes || (index === count - 1 && transfer.filled + dataBytes !== totalBytes)) {
      throw this.fail(transferId, ErrorCode.PROTOCOL_MALFORMED, 1007, `chunk ${index}/${count} of transfer ${transferId}: sizes do not add up to ${totalBytes} bytes`);
    }
    const trailer = crcInTrailer ? new Uint8Array(CHUNK_TRAILER_BYTES) : undefined;
    return { chunk, transfer, dataBytes, at: transfer.filled, crc: 0, trailer, trailerFilled: 0 };
  }

  /**
   * Checksums and copies the next part of a chunk started with {@link begin}; with a trailer, bytes past the
   * data are the trailer's.
   * @throws ChunkError E_PROTOCOL_MALFORMED (1007) when the parts exceed the chunk's declared bytes.
   */
  add(progress: ChunkInProgress, part: Uint8Array): void {
    const { chunk, transfer, trailer } = progress;
    const dataLeft = dataBytesLeft(progress);
    let data = part;
    if (part.byteLength > dataLeft) {
      const extra = part.byteLength - dataLeft;
      if (!trailer || progress.trailerFilled + extra > trailer.byteLength) {
        throw this.fail(chunk.transferId, ErrorCode.PROTOCOL_MALFORMED, 1007, `chunk ${chunk.index}/${chunk.count} of transfer ${chunk.transferId}: more data than its ${progress.dataBytes} declared bytes`);
      }
      trailer.set(part.subarray(dataLeft), progress.trailerFilled);
      progress.trailerFilled += extra;
      data = part.subarray(0, dataLeft);
    }
    // Checksum and copy part by part while each part is still in cache; nothing is delivered before the check.
    progress.crc = crc32Copy(transfer.buffer, progress.at, data, progress.crc);
    progress.at += data.byteLength;
  }

  /**
   * Where the chunk's next data bytes go, at most `maxBytes` of them: a view of the transfer's buffer that a
   * socket read may land in directly ({@link addLanded} then takes them), instead of a read buffer that
   * {@link add} copies from. Undefined when no data bytes are left (the trailer is not data).
   */
  landing(progress: ChunkInProgress, maxBytes: number): Uint8Array | undefined {
    const bytes = Math.min(dataBytesLeft(progress), maxBytes);
    return bytes > 0 ? progress.transfer.buffer.subarray(progress.at, progress.at + bytes) : undefined;
  }

  /**
   * Takes the first `n` bytes of `view`, a {@link landing} of this chunk that a read filled in place: checksums
   * them (still in cache from the kernel's copy). Returns false, taking nothing, when `view` is not where the
   * chunk's next data bytes go or holds fewer than `n` (the caller then has bytes to deliver some other way).
   */
  addLanded(progress: ChunkInProgress, view: Uint8Array, n: number): boolean {
    const { buffer } = progress.transfer;
    if (view.buffer !== buffer.buffer || view.byteOffset !== buffer.byteOffset + progress.at || n > view.byteLength || n > dataBytesLeft(progress)) return false;
    progress.crc = crc32(view.subarray(0, n), progress.crc);
    progress.at += n;
    return true;
  }

  /**
   * Ends a chunk started with {@link begin}: checks its size and CRC-32; returns the whole frame when it was
   * the transfer's last chunk, else undefined.
   * @throws ChunkError E_PROTOCOL_MALFORMED (1007) when fewer bytes came than declared, E_CHUNK_CHECKSUM (1007)
   *   for a CRC mismatch; the transfer is discarded.
   */
  finish(progress: ChunkInProgress): Uint8Array | undefined {
    const { chunk, transfer } = progress;
    const { transferId, index, count } = chunk;
    if (progress.at !== transfer.filled + progress.dataBytes) {
      throw this.fail(transferId, ErrorCode.PROTOCOL_MALFORMED, 1007, `chunk ${index}/${count} of transfer ${transferId}: ${progress.at - transfer.filled} data bytes of ${progress.dataBytes} declared`);
    }
    let expected = chunk.crc32;
    if (progress.trailer) {
      const fromTrailer = progress.trailerFilled === progress.trailer.byteLength ? readChunkTrailer(progress.trailer) : undefined;
      if (fromTrailer === undefined) {
        throw this.fail(transferId, ErrorCode.PROTOCOL_MALFORMED, 1007, `chunk ${index}/${count} of transfer ${transferId}: its data is not followed by a crc32 trailer`);
      }
      expected = fromTrailer;
    }
    if (progress.crc !== expected) {
      throw this.fail(transferId, ErrorCode.CHUNK_CHECKSUM, 1007, `chunk ${index}/${count} of transfer ${transferId}: CRC-32 ${progress.crc.toString(16)} does not match ${expected.toString(16)}`);
    }
    transfer.filled = progress.at;
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

  /**
   * Joins the fragments of one message into a buffer from the pool (or a fresh one), delivered as if it were
   * a one-chunk transfer: {@link recycle} hands it back. Not counted against the caps (the socket's
   * `maxPayload` bounds it).
   */
  join(parts: readonly Uint8Array[]): Uint8Array {
    let totalBytes = 0;
    for (const part of parts) totalBytes += part.byteLength;
    const backing = this.allocate(totalBytes);
    const buffer = backing.subarray(0, totalBytes);
    let at = 0;
    for (const part of parts) {
      buffer.set(part, at);
      at += part.byteLength;
    }
    this.delivered.set(buffer.buffer, backing);
    return buffer;
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
