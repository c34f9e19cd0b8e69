import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BlobStore, sha256OfFile } from '../../../../shared/blobs/blob-store.js';
import { ErrorCode } from '../../../../shared/errors.js';

const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const freshStore = (): BlobStore => BlobStore.inCacheDir(mkdtempSync(join(tmpdir(), 'swarmtune-blobs-')));

describe('BlobStore', () => {
  it('refuses names that are not lower-case hex sha256 (they become file names)', () => {
    const store = freshStore();
    for (const bad of ['../../etc/passwd', 'AB'.repeat(32), 'ab'.repeat(31), `${'ab'.repeat(32)}/x`]) {
      expect(() => store.pathOf(bad)).toThrow(expect.objectContaining({ code: ErrorCode.BLOB_UNKNOWN }));
    }
  });

  it('hashes a file by streaming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmtune-hash-'));
    const bytes = randomBytes(3 * (1 << 20) + 17);
    writeFileSync(join(dir, 'f'), bytes);
    expect(await sha256OfFile(join(dir, 'f'))).toBe(sha(bytes));
  });

  it('appends, resumes from the partial length in a new session, verifies and renames into place', async () => {
    const store = freshStore();
    const bytes = randomBytes(100_000);
    const digest = sha(bytes);
    expect(await store.lookup(digest)).toEqual({ status: 'miss' });

    const first = await store.openPartial(digest);
    expect(first.lengthBytes).toBe(0);
    await first.append(bytes.subarray(0, 30_000));
    await first.close();
    expect(readFileSync(store.partialPathOf(digest)).byteLength).toBe(30_000);

    const second = await store.openPartial(digest);
    expect(second.lengthBytes).toBe(30_000);
    await second.append(bytes.subarray(30_000));
    const path = await second.commit();
    expect(path).toBe(store.pathOf(digest));
    expect(readFileSync(path).equals(bytes)).toBe(true);
    expect(existsSync(store.partialPathOf(digest))).toBe(false);
    expect(existsSync(`${store.pathOf(digest)}.lock`)).toBe(false);
    expect(await store.lookup(digest)).toEqual({ status: 'hit', path });
  });

  it('deletes the partial and fails with E_BLOB_INTEGRITY when the bytes do not hash to the name', async () => {
    const store = freshStore();
    const digest = sha(Buffer.from('the real content'));
    const partial = await store.openPartial(digest);
    await partial.append(Buffer.from('other content'));
    await expect(partial.commit()).rejects.toMatchObject({ code: ErrorCode.BLOB_INTEGRITY, name: 'InputFileError' });
    expect(existsSync(store.partialPathOf(digest))).toBe(false);
    expect(existsSync(store.pathOf(digest))).toBe(false);
  });

  it('reports a corrupted complete blob and deletes it', async () => {
    const store = freshStore();
    const bytes = randomBytes(5000);
    const digest = sha(bytes);
    mkdirSync(store.root, { recursive: true });
    bytes[1234] ^= 0xff;
    writeFileSync(store.pathOf(digest), bytes);
    expect(await store.lookup(digest)).toEqual({ status: 'corrupt' });
    expect(existsSync(store.pathOf(digest))).toBe(false);
  });

  it('lets one writer at a time hold a partial: the second waits for the first to close', async () => {
    const store = freshStore();
    const digest = sha(Buffer.from('x'));
    const first = await store.openPartial(digest);
    await first.append(Buffer.from('abc'));
    let isSecondOpen = false;
    const secondOpening = store.openPartial(digest).then((p) => {
      isSecondOpen = true;
      return p;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(isSecondOpen).toBe(false);
    await first.close();
    const second = await secondOpening;
    expect(second.lengthBytes).toBe(3);
    await second.discard();
    expect(existsSync(store.partialPathOf(digest))).toBe(false);
  });

  it('times out on a lock held by a live process, and takes over the lock of a dead one', async () => {
    const store = freshStore();
    const digest = sha(Buffer.from('y'));
    mkdirSync(store.root, { recursive: true });
    const lockPath = `${store.pathOf(digest)}.lock`;
    writeFileSync(lockPath, String(process.pid));
    await expect(store.openPartial(digest, { lockTimeoutMs: 0 })).rejects.toMatchObject({ code: ErrorCode.TIMEOUT });

    const dead = spawnSync(process.execPath, ['-e', '']);
    writeFileSync(lockPath, String(dead.pid));
    const partial = await store.openPartial(digest, { lockTimeoutMs: 0 });
    expect(readFileSync(lockPath, 'utf8')).toBe(String(process.pid));
    await partial.close();
    expect(existsSync(lockPath)).toBe(false);
  });
});
