/**
 * A content-addressed cache of blobs (base models, tokenized data shards) on disk:
 * `<root>/<sha256>` holds a complete blob, verified before it was renamed into place; `<root>/<sha256>.partial`
 * holds the first bytes of one being fetched (its length is where a fetch resumes); `<root>/<sha256>.lock` names
 * the process writing the partial, so that two workers sharing a cache never append to the same file.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, InputFileError, OrchestratorError, TimeoutError } from '../errors.js';

/** Lower-case hex SHA-256: the only names the store accepts (they become file names). */
export const SHA256_HEX_PATTERN = /^[0-9a-f]{64}$/;

/** Default longest wait for another process's lock on the same partial blob: 10 minutes. */
export const DEFAULT_LOCK_TIMEOUT_MS = 600_000;
/** How often a waiting process looks whether the lock holder has finished, in milliseconds. */
const LOCK_POLL_MS = 250;

/**
 * Throws unless `sha256` is lower-case hex SHA-256.
 * @throws OrchestratorError E_BLOB_UNKNOWN naming `where`
 */
export function assertSha256Hex(sha256: string, where: string): void {
  if (!SHA256_HEX_PATTERN.test(sha256)) {
    throw new OrchestratorError(ErrorCode.BLOB_UNKNOWN, `${where}: ${JSON.stringify(sha256.slice(0, 80))} is not a lower-case hex SHA-256`);
  }
}

/** Feeds the bytes of `path` (all of it) into `hash`, streaming: never the whole file in memory. */
async function hashFileInto(hash: Hash, path: string): Promise<void> {
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
}

/** Lower-case hex SHA-256 of a file, streamed. @throws the fs error when the file cannot be read */
export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  await hashFileInto(hash, path);
  return hash.digest('hex');
}

/** What {@link BlobStore.lookup} found. `corrupt`: a complete blob was there but failed its hash and was deleted. */
export type BlobLookup = { readonly status: 'hit'; readonly path: string } | { readonly status: 'miss' | 'corrupt' };

/** Options of {@link BlobStore.openPartial}. */
export interface OpenPartialOptions {
  /** Longest wait for another live process holding the blob's lock. @default DEFAULT_LOCK_TIMEOUT_MS */
  readonly lockTimeoutMs?: number;
}

/** The content-addressed blob cache under one folder (see the module comment for the layout). */
export class BlobStore {
  /** @param root the folder blobs live in (created on first write), e.g. `<cacheDir>/blobs` */
  constructor(readonly root: string) {}

  /** The store of a swarmtune cache folder: its `blobs/` subfolder. */
  static inCacheDir(cacheDir: string): BlobStore {
    return new BlobStore(join(cacheDir, 'blobs'));
  }

  /** Path of the complete blob (whether or not it exists). @throws OrchestratorError E_BLOB_UNKNOWN for a bad hash */
  pathOf(sha256: string): string {
    assertSha256Hex(sha256, 'blob store');
    return join(this.root, sha256);
  }

  /** Path of the partial blob. @throws OrchestratorError E_BLOB_UNKNOWN for a bad hash */
  partialPathOf(sha256: string): string {
    return `${this.pathOf(sha256)}.partial`;
  }

  /**
   * Looks for a complete blob and checks its SHA-256 (a cache file can rot or be edited); a file that fails
   * the check is deleted so that it is fetched again.
   */
  async lookup(sha256: string): Promise<BlobLookup> {
    const path = this.pathOf(sha256);
    if (!(await isFile(path))) return { status: 'miss' };
    if ((await sha256OfFile(path)) === sha256) return { status: 'hit', path };
    await rm(path, { force: true });
    return { status: 'corrupt' };
  }

  /**
   * Opens the blob's partial file for appending (created empty if absent), holding the blob's lock until the
   * returned {@link PartialBlob} is committed, closed or discarded. The bytes already there are hashed first,
   * so that the final check covers the whole file without reading it again.
   * @throws TimeoutError when another live process holds the lock past `lockTimeoutMs`
   */
  async openPartial(sha256: string, options: OpenPartialOptions = {}): Promise<PartialBlob> {
    const partialPath = this.partialPathOf(sha256);
    await mkdir(this.root, { recursive: true });
    const lockPath = `${this.pathOf(sha256)}.lock`;
    await acquireLock(lockPath, options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS);
    try {
      const handle = await open(partialPath, 'a');
      const hash = createHash('sha256');
      await hashFileInto(hash, partialPath);
      const { size } = await handle.stat();
      return new PartialBlob(sha256, this.pathOf(sha256), partialPath, lockPath, handle, hash, size);
    } catch (err) {
      await rm(lockPath, { force: true });
      throw err;
    }
  }
}

/**
 * A blob being written: append bytes in order, then {@link commit} (verify and rename into place), or
 * {@link close} to keep the partial for a later resume, or {@link discard} it. Exactly one of the three ends it.
 */
export class PartialBlob {
  private isEnded = false;

  constructor(
    readonly sha256: string,
    private readonly finalPath: string,
    readonly partialPath: string,
    private readonly lockPath: string,
    private handle: FileHandle,
    private hash: Hash,
    private length: number,
  ) {}

  /** Bytes in the partial file: where the next append goes. */
  get lengthBytes(): number {
    return this.length;
  }

  /** Appends `data` at the end of the partial file. */
  async append(data: Uint8Array): Promise<void> {
    this.assertOpen('append to');
    let written = 0;
    while (written < data.byteLength) {
      const { bytesWritten } = await this.handle.write(data, written, data.byteLength - written);
      written += bytesWritten;
    }
    this.hash.update(data);
    this.length += data.byteLength;
  }

  /** Empties the partial file (to start over from byte 0). */
  async reset(): Promise<void> {
    this.assertOpen('reset');
    await this.handle.truncate(0);
    this.hash = createHash('sha256');
    this.length = 0;
  }

  /**
   * Checks the SHA-256 of everything appended against the blob's name and renames the file into place
   * atomically; returns the blob's path. A mismatch deletes the partial.
   * @throws InputFileError E_BLOB_INTEGRITY naming both hashes when they differ
   */
  async commit(): Promise<string> {
    this.assertOpen('commit');
    this.isEnded = true;
    try {
      const actual = this.hash.digest('hex');
      if (actual !== this.sha256) {
        await this.handle.close();
        await rm(this.partialPath, { force: true });
        throw new InputFileError(
          ErrorCode.BLOB_INTEGRITY,
          `blob ${this.partialPath}: ${this.length} bytes received with sha256 ${actual}, expected ${this.sha256}; the partial file was deleted`,
        );
      }
      await this.handle.sync();
      await this.handle.close();
      await rename(this.partialPath, this.finalPath);
      return this.finalPath;
    } finally {
      await rm(this.lockPath, { force: true });
    }
  }

  /** Closes the partial file and keeps it, so that a later fetch resumes from its length. Idempotent. */
  async close(): Promise<void> {
    if (this.isEnded) return;
    this.isEnded = true;
    await this.handle.close().catch(() => undefined);
    await rm(this.lockPath, { force: true });
  }

  /** Closes and deletes the partial file. Idempotent. */
  async discard(): Promise<void> {
    if (this.isEnded) return;
    await this.close();
    await rm(this.partialPath, { force: true });
  }

  private assertOpen(action: string): void {
    if (this.isEnded) throw new OrchestratorError(ErrorCode.INTERNAL, `cannot ${action} ${this.partialPath}: already committed, closed or discarded`);
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Creates `lockPath` holding this process's pid; steals a lock whose process is gone; else waits. */
async function acquireLock(lockPath: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // Written aside and hard-linked into place, so that a reader never sees a lock file without its pid.
  const candidate = `${lockPath}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  await writeFile(candidate, String(process.pid));
  try {
    for (;;) {
      try {
        await link(candidate, lockPath);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      await waitForLockHolder(lockPath, timeoutMs, deadline);
    }
  } finally {
    await rm(candidate, { force: true });
  }
}

/** Removes the lock of a process that is gone; else waits a little. @throws TimeoutError past the deadline */
async function waitForLockHolder(lockPath: string, timeoutMs: number, deadline: number): Promise<void> {
  const text = await readFile(lockPath, 'utf8').catch(() => undefined);
  if (text === undefined) return; // released meanwhile: try again
  const holder = Number(text.trim());
  if (!isProcessAlive(holder)) {
    await rm(lockPath, { force: true });
    return;
  }
  if (Date.now() >= deadline) {
    throw new TimeoutError(`blob lock ${lockPath} is held by process ${holder} for more than ${timeoutMs} ms`);
  }
  await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
}

function isProcessAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
