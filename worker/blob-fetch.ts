/**
 * The worker's side of blob distribution: find the base model the coordinator names (`--model`, the announced
 * path, the local cache), or fetch it from the coordinator in byte ranges into the cache, resuming a partial
 * file left by an earlier session, and verify its SHA-256 before it is used.
 */
import { crc32 } from '../shared/checksum.js';
import { stat } from 'node:fs/promises';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { BlobStore, assertSha256Hex, sha256OfFile } from '../shared/blobs/blob-store.js';
import { ErrorCode, InputFileError, OrchestratorError, ProtocolError, RemoteError, TimeoutError } from '../shared/errors.js';
import { makeMessage } from '../shared/protocol/build.js';
import { CHUNK_HEADER_SLACK_BYTES, DEFAULT_CHUNK_SIZE_BYTES } from '../shared/protocol/chunking.js';
import type { Message, ModelRef } from '../shared/protocol/messages.js';
import { MsgKind } from '../shared/protocol/messages.js';
import { isHfModelDir } from '../shared/model/load-hf.js';
import { checkedHfFiles, hfDirMismatch, obtainHfDir } from './hf-dir-fetch.js';
import type { Transport } from '../shared/transport.js';

/**
 * Default cache folder of a worker: `~/.cache/swarmtune` (blobs go to its `blobs/` subfolder, shipped HF model
 * directories to `hf/<directory digest>/`, hard-linked to their blobs).
 */
export const DEFAULT_CACHE_DIR = join(os.homedir(), '.cache', 'swarmtune');
/**
 * Default bytes per `blob_request`: 4 MiB less the chunk header slack (4,128,768), so that each reply fits in
 * one frame under the transport's default chunk size and peers' default `maxPayload`.
 */
export const DEFAULT_BLOB_RANGE_BYTES = DEFAULT_CHUNK_SIZE_BYTES - CHUNK_HEADER_SLACK_BYTES;
/** Default requests in flight at once: one being answered while the next is on the way. */
export const DEFAULT_BLOB_REQUESTS_IN_FLIGHT = 2;
/** Default longest wait for one reply, in milliseconds. */
export const DEFAULT_BLOB_REPLY_TIMEOUT_MS = 60_000;

/** How the fetcher talks to the coordinator: send a frame; receive the next inbound one (`undefined`: closed). */
export interface BlobChannel {
  send(msg: Message): Promise<void>;
  /** @throws TimeoutError when nothing arrives within `timeoutMs` */
  receive(timeoutMs: number): Promise<Message | undefined>;
}

/** Options of {@link fetchBlob}. */
export interface FetchBlobOptions {
  readonly store: BlobStore;
  readonly channel: BlobChannel;
  /** Bytes per request. @default DEFAULT_BLOB_RANGE_BYTES */
  readonly rangeBytes?: number;
  /** @default DEFAULT_BLOB_REQUESTS_IN_FLIGHT (2) */
  readonly maxInFlight?: number;
  /** @default DEFAULT_BLOB_REPLY_TIMEOUT_MS (60 s) */
  readonly replyTimeoutMs?: number;
  /** Called after each range is written, with the bytes now in the partial file and the blob's size. */
  readonly onProgress?: (haveBytes: number, totalBytes: number) => void;
  readonly log?: (line: string) => void;
}

/** Where a blob came from and how much of it travelled. */
export interface FetchedBlob {
  readonly path: string;
  /** `cache`: already complete in the store; `fetched`: (some of it) received now. */
  readonly source: 'cache' | 'fetched';
  /** Bytes of the partial file a fetch started from (0: from scratch). */
  readonly resumedFromBytes: number;
  /** Bytes received in this call. */
  readonly fetchedBytes: number;
}

/**
 * Returns the path of the verified blob `sha256` in `store`, fetching what is missing from the coordinator:
 * ranges are appended to `<sha256>.partial` as they arrive (in order, up to `maxInFlight` requested ahead),
 * and after the last byte the whole file's SHA-256 is checked before it is renamed into place. A failure
 * keeps the partial, so that the next call (on a new connection) resumes from its length; a hash mismatch
 * deletes it.
 * @throws InputFileError E_BLOB_INTEGRITY (whole-file hash or a range's CRC-32); OrchestratorError E_BLOB_RANGE
 *   (a reply with other bytes than asked) or E_CONNECTION_CLOSED; RemoteError with the coordinator's code
 *   (E_BLOB_UNKNOWN: not announced); TimeoutError
 */
export async function fetchBlob(sha256: string, options: FetchBlobOptions): Promise<FetchedBlob> {
  assertSha256Hex(sha256, 'fetchBlob');
  const { store, channel } = options;
  const log = options.log ?? (() => undefined);
  const rangeBytes = options.rangeBytes ?? DEFAULT_BLOB_RANGE_BYTES;
  const maxInFlight = Math.max(1, options.maxInFlight ?? DEFAULT_BLOB_REQUESTS_IN_FLIGHT);
  const replyTimeoutMs = options.replyTimeoutMs ?? DEFAULT_BLOB_REPLY_TIMEOUT_MS;

  const found = await store.lookup(sha256);
  if (found.status === 'hit') return { path: found.path, source: 'cache', resumedFromBytes: 0, fetchedBytes: 0 };
  if (found.status === 'corrupt') log(`cached blob ${sha256} failed its sha256 check: deleted, fetching it again`);

  const partial = await store.openPartial(sha256);
  try {
    // Another process sharing the cache may have completed it while this one waited for the lock.
    const again = await store.lookup(sha256);
    if (again.status === 'hit') {
      await partial.discard();
      return { path: again.path, source: 'cache', resumedFromBytes: 0, fetchedBytes: 0 };
    }

    let resumedFromBytes = partial.lengthBytes;
    if (resumedFromBytes > 0) log(`resuming blob ${sha256} from byte ${resumedFromBytes}`);
    let totalBytes: number | undefined;
    let nextOffset = partial.lengthBytes;
    const inFlight: { readonly id: string; readonly offset: number }[] = [];
    const requestNext = async (): Promise<void> => {
      const req = makeMessage(MsgKind.BLOB_REQUEST, { sha256, offset: nextOffset, length: rangeBytes });
      inFlight.push({ id: req.id, offset: nextOffset });
      nextOffset += rangeBytes;
      await channel.send(req);
    };

    await requestNext();
    while (inFlight.length > 0) {
      const expected = inFlight[0];
      const msg = await channel.receive(replyTimeoutMs);
      const where = `blob ${sha256} at byte ${expected.offset}`;
      if (msg === undefined) {
        throw new OrchestratorError(ErrorCode.CONNECTION_CLOSED, `${where}: the connection closed with ${partial.lengthBytes} bytes kept in ${partial.partialPath}`);
      }
      if (msg.kind === MsgKind.ERROR && msg.replyTo === expected.id) {
        // A partial longer than the blob (the coordinator's file changed): start over from byte 0.
        if (msg.code === ErrorCode.BLOB_RANGE && expected.offset === resumedFromBytes && resumedFromBytes > 0 && totalBytes === undefined) {
          log(`${where}: ${msg.message}; discarding the partial file and starting over`);
          await partial.reset();
          resumedFromBytes = 0;
          nextOffset = 0;
          inFlight.length = 0;
          await requestNext();
          continue;
        }
        throw new RemoteError(msg.code, `${where}: the coordinator refused: ${msg.message}`, msg.retryable);
      }
      if (msg.kind !== MsgKind.BLOB_RESULT || msg.replyTo !== expected.id) {
        throw new ProtocolError(ErrorCode.PROTOCOL_UNEXPECTED, `${where}: expected the blob_result answering ${expected.id}, got ${msg.kind}${'replyTo' in msg && msg.replyTo ? ` answering ${msg.replyTo}` : ''}`);
      }
      inFlight.shift();
      totalBytes ??= msg.totalBytes;
      const wantBytes = Math.max(0, Math.min(rangeBytes, totalBytes - expected.offset));
      if (msg.sha256 !== sha256 || msg.offset !== expected.offset || msg.totalBytes !== totalBytes || msg.data.byteLength !== wantBytes) {
        throw new OrchestratorError(
          ErrorCode.BLOB_RANGE,
          `${where}: reply holds ${msg.data.byteLength} bytes at ${msg.offset} of ${msg.totalBytes} (blob ${msg.sha256}), expected ${wantBytes} bytes at ${expected.offset} of ${totalBytes}`,
        );
      }
      if ((crc32(msg.data) >>> 0) !== msg.crc32) {
        throw new InputFileError(ErrorCode.BLOB_INTEGRITY, `${where}: ${msg.data.byteLength} bytes fail their CRC-32 check`);
      }
      await partial.append(msg.data);
      options.onProgress?.(partial.lengthBytes, totalBytes);
      while (inFlight.length < maxInFlight && nextOffset < totalBytes) await requestNext();
    }
    const path = await partial.commit();
    log(`blob ${sha256}: ${totalBytes} bytes verified${resumedFromBytes ? ` (resumed from byte ${resumedFromBytes})` : ''} → ${path}`);
    return { path, source: 'fetched', resumedFromBytes, fetchedBytes: (totalBytes ?? 0) - resumedFromBytes };
  } finally {
    await partial.close();
  }
}

/** Options of {@link obtainModelFile}. */
export interface ObtainModelOptions extends Omit<FetchBlobOptions, 'store'> {
  /** `--model`: use this file whatever the coordinator names (its hash is checked when it is loaded). */
  readonly overridePath?: string;
  /** @default DEFAULT_CACHE_DIR */
  readonly cacheDir?: string;
}

/**
 * The local path of the base model `ref`: `overridePath` if given; else `ref.path` when that file (or HF
 * directory, file by file) exists here with the right SHA-256; else the cache, fetching the model from the
 * coordinator when it is absent or partial (an HF directory: worker/hf-dir-fetch.ts, `<cacheDir>/hf/<sha256>/`).
 * @throws as {@link fetchBlob} and `obtainHfDir`; ProtocolError E_PROTOCOL_MALFORMED for an unsafe file list;
 *   InputFileError E_MODEL_FILE for an HF directory that is not here and that the coordinator does not ship
 */
export async function obtainModelFile(ref: ModelRef, options: ObtainModelOptions): Promise<{ path: string; source: 'override' | 'announced' | FetchedBlob['source'] }> {
  if (options.overridePath !== undefined) return { path: resolve(options.overridePath), source: 'override' };
  const log = options.log ?? (() => undefined);
  const announced = resolve(ref.path);
  const cacheDir = options.cacheDir ?? DEFAULT_CACHE_DIR;
  if (ref.format === 'hf') {
    if (ref.files === undefined) {
      // A coordinator that does not ship this directory: the sha256 of what is there is checked when it is loaded.
      if (isHfModelDir(announced)) return { path: announced, source: 'announced' };
      throw new InputFileError(ErrorCode.MODEL_FILE, `the run's model is the Hugging Face directory ${ref.path}, which is not on this machine and which the coordinator does not ship: copy it here and pass --model DIR`);
    }
    const files = checkedHfFiles({ ...ref, files: ref.files });
    if (isHfModelDir(announced)) {
      const why = await hfDirMismatch(announced, files);
      if (why === undefined) return { path: announced, source: 'announced' };
      log(`model directory ${announced}: ${why}: using the cache instead`);
    }
    const store = BlobStore.inCacheDir(cacheDir);
    const dir = await obtainHfDir(ref.sha256, files, { cacheDir, log, fetchFile: (file) => fetchBlob(file.sha256, { ...options, store }) });
    return { path: dir.path, source: dir.source };
  }
  if (await isFile(announced)) {
    const actual = await sha256OfFile(announced);
    if (actual === ref.sha256) return { path: announced, source: 'announced' };
    log(`model ${announced} has sha256 ${actual}, the run uses ${ref.sha256}: using the cache instead`);
  }
  const store = BlobStore.inCacheDir(cacheDir);
  const fetched = await fetchBlob(ref.sha256, { ...options, store });
  return { path: fetched.path, source: fetched.source };
}

/**
 * A {@link BlobChannel} over a transport for callers that do not read the transport themselves (tests, a
 * fetch outside the session loop): it queues every inbound frame until received. Call `dispose` when done.
 */
export function transportBlobChannel(transport: Transport): BlobChannel & { dispose(): void } {
  const frames: Message[] = [];
  let waiter: ((msg: Message | undefined) => void) | undefined;
  let isClosed = false;
  const wake = (msg: Message | undefined): boolean => {
    const w = waiter;
    waiter = undefined;
    w?.(msg);
    return w !== undefined;
  };
  const offMessage = transport.onMessage((msg) => {
    if (!wake(msg)) frames.push(msg);
  });
  const offClose = transport.onClose(() => {
    isClosed = true;
    wake(undefined);
  });
  return {
    send: (msg) => transport.send(msg),
    receive: (timeoutMs) => {
      const queued = frames.shift();
      if (queued) return Promise.resolve(queued);
      if (isClosed) return Promise.resolve(undefined);
      return new Promise((resolveNext, reject) => {
        const timer = setTimeout(() => {
          waiter = undefined;
          reject(new TimeoutError(`no frame from ${transport.peer} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiter = (msg) => {
          clearTimeout(timer);
          resolveNext(msg);
        };
      });
    },
    dispose: () => {
      offMessage();
      offClose();
    },
  };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
