/**
 * The coordinator's side of blob distribution: it answers `blob_request` frames on worker connections with byte
 * ranges of the blobs it announced (the run's base model; tokenized data shards when `data.delivery` is `ship`),
 * read from disk one range at a time. Requests for other hashes, or for ranges outside a blob, get an `error`
 * frame and the connection stays open.
 */
import { crc32 } from '../shared/checksum.js';
import { open, type FileHandle } from 'node:fs/promises';
import { ErrorCode, OrchestratorError } from '../shared/errors.js';
import { assertSha256Hex } from '../shared/blobs/blob-store.js';
import { makeErrorFrame, makeMessage } from '../shared/protocol/build.js';
import type { BlobRequest, Message } from '../shared/protocol/messages.js';
import { MsgKind } from '../shared/protocol/messages.js';
import type { Transport } from '../shared/transport.js';

/**
 * Longest range one request may ask for: 16 MiB. Larger replies would still travel (the transport chunks
 * them) but cost the coordinator that much memory per connection; workers ask for about 4 MiB.
 */
export const MAX_BLOB_RANGE_BYTES = 16 * 1024 * 1024;
/** Default cap on `blob_request`s queued per connection; more are refused with E_TRANSFER_LIMIT (retryable). */
export const DEFAULT_MAX_QUEUED_BLOB_REQUESTS = 8;

/** Options of a {@link BlobServer}. */
export interface BlobServerOptions {
  /** @default DEFAULT_MAX_QUEUED_BLOB_REQUESTS (8) */
  readonly maxQueuedRequests?: number;
}

interface ServedBlob {
  readonly path: string;
  readonly handle: FileHandle;
  readonly totalBytes: number;
}

/**
 * Serves announced blobs over worker connections. Memory: one range buffer per connection being answered
 * (requests on a connection are answered in order, one at a time); never a whole file.
 */
export class BlobServer {
  private readonly blobs = new Map<string, ServedBlob>();
  private readonly maxQueuedRequests: number;

  constructor(options: BlobServerOptions = {}) {
    this.maxQueuedRequests = options.maxQueuedRequests ?? DEFAULT_MAX_QUEUED_BLOB_REQUESTS;
  }

  /**
   * Announces `path` under `sha256` (the caller has hashed it). The file stays open until {@link close}, so
   * it is served even if it is renamed or unlinked meanwhile; a file whose size changes is refused. Serving
   * the same hash again is a no-op.
   * @throws OrchestratorError E_BLOB_UNKNOWN for a malformed hash; the fs error when the file cannot be opened
   */
  async serveBlob(sha256: string, path: string): Promise<void> {
    assertSha256Hex(sha256, `serveBlob(${path})`);
    if (this.blobs.has(sha256)) return;
    const handle = await open(path, 'r');
    const { size } = await handle.stat();
    this.blobs.set(sha256, { path, handle, totalBytes: size });
  }

  /** Whether `sha256` is announced. */
  isServed(sha256: string): boolean {
    return this.blobs.has(sha256);
  }

  /**
   * Answers `blob_request` frames arriving on `transport` (and ignores every other kind); returns the function
   * that stops listening.
   */
  attach(transport: Transport): () => void {
    const queue: BlobRequest[] = [];
    let isBusy = false;
    // One read buffer per connection, reused: the transport has encoded a reply once its send resolves, and
    // fresh multi-MiB buffers cost their page faults on every range.
    let scratch = Buffer.alloc(0);
    const pump = async (): Promise<void> => {
      isBusy = true;
      try {
        for (let req = queue.shift(); req && transport.isOpen; req = queue.shift()) {
          if (scratch.byteLength < Math.min(req.length, MAX_BLOB_RANGE_BYTES)) scratch = Buffer.allocUnsafe(Math.min(req.length, MAX_BLOB_RANGE_BYTES));
          await this.answer(transport, req, scratch);
        }
      } finally {
        isBusy = false;
      }
    };
    transport.onClose(() => {
      scratch = Buffer.alloc(0);
    });
    return transport.onMessage((msg: Message) => {
      if (msg.kind !== MsgKind.BLOB_REQUEST) return;
      if (queue.length >= this.maxQueuedRequests) {
        const err = new OrchestratorError(ErrorCode.TRANSFER_LIMIT, `blob request ${msg.id}: more than ${this.maxQueuedRequests} requests queued on this connection`);
        void transport.send(makeErrorFrame(err, { replyTo: msg.id, retryable: true })).catch(() => undefined);
        return;
      }
      queue.push(msg);
      if (!isBusy) void pump();
    });
  }

  /** Closes every served file. */
  async close(): Promise<void> {
    const blobs = [...this.blobs.values()];
    this.blobs.clear();
    await Promise.all(blobs.map((b) => b.handle.close().catch(() => undefined)));
  }

  private async answer(transport: Transport, req: BlobRequest, scratch: Buffer): Promise<void> {
    let reply: Message;
    try {
      const blob = this.blobs.get(req.sha256);
      if (!blob) throw new OrchestratorError(ErrorCode.BLOB_UNKNOWN, `blob ${req.sha256} is not served by this coordinator (it serves ${this.blobs.size} announced blob(s))`);
      const data = await readRange(blob, req, scratch);
      reply = makeMessage(MsgKind.BLOB_RESULT, {
        replyTo: req.id,
        sha256: req.sha256,
        offset: req.offset,
        totalBytes: blob.totalBytes,
        crc32: crc32(data) >>> 0,
        data,
      });
    } catch (err) {
      reply = makeErrorFrame(err, { replyTo: req.id, retryable: false });
    }
    await transport.send(reply).catch(() => undefined);
  }
}

/** Reads the bytes a request asks for, cut at the end of the blob, into the start of `scratch`. */
async function readRange(blob: ServedBlob, req: BlobRequest, scratch: Buffer): Promise<Uint8Array> {
  const where = `blob ${req.sha256} (${blob.path})`;
  if (req.length < 1 || req.length > MAX_BLOB_RANGE_BYTES) {
    throw new OrchestratorError(ErrorCode.BLOB_RANGE, `${where}: range length ${req.length} outside 1..${MAX_BLOB_RANGE_BYTES} bytes`);
  }
  if (req.offset > blob.totalBytes) {
    throw new OrchestratorError(ErrorCode.BLOB_RANGE, `${where}: offset ${req.offset} is past the end of the blob (${blob.totalBytes} bytes)`);
  }
  const { size } = await blob.handle.stat();
  if (size !== blob.totalBytes) {
    throw new OrchestratorError(ErrorCode.BLOB_UNKNOWN, `${where}: the file changed size on disk (${blob.totalBytes} → ${size} bytes) since it was announced`);
  }
  const length = Math.min(req.length, blob.totalBytes - req.offset);
  const data = scratch.subarray(0, length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await blob.handle.read(data, filled, length - filled, req.offset + filled);
    if (bytesRead === 0) throw new OrchestratorError(ErrorCode.BLOB_RANGE, `${where}: file ended at ${req.offset + filled} of ${blob.totalBytes} bytes`);
    filled += bytesRead;
  }
  return data;
}
