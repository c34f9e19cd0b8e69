/**
 * Base-model distribution over real loopback WebSockets: a worker that lacks the model file fetches it from
 * the coordinator into its cache (content-addressed, resumable, verified) and trains; transfers cut in the
 * middle resume; corrupt caches are fetched again; the coordinator serves only blobs it announced.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobServer } from '../../coordinator/blob-server.js';
import { runCoordinator } from '../../coordinator/run.js';
import { startWsServer, type WsServer } from '../../coordinator/transport-ws.js';
import { BlobStore, sha256OfFile } from '../../shared/blobs/blob-store.js';
import { ErrorCode } from '../../shared/errors.js';
import { makeMessage } from '../../shared/protocol/build.js';
import { MsgKind } from '../../shared/protocol/messages.js';
import { selectBackend } from '../../worker/backend.js';
import { fetchBlob, transportBlobChannel } from '../../worker/blob-fetch.js';
import { connectWithRetry } from '../../worker/transport-ws.js';
import { runWorkerSession } from '../../worker/worker-runtime.js';
import { dpConfig, makeDpFixture, referenceRun } from '../helpers/dp-fixture.js';

const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const freshDir = (prefix: string): string => mkdtempSync(join(tmpdir(), prefix));

describe('a worker started without the model file', () => {
  it('fetches the model from the coordinator into an empty cache, verifies it and trains', async () => {
    const fixture = await makeDpFixture();
    const config = dpConfig(fixture, 1);
    const backend = await selectBackend('auto');
    const cacheDir = freshDir('swarmtune-cache-');
    const hidden = `${fixture.modelPath}.elsewhere`;
    const logs: string[] = [];
    let session: ReturnType<typeof runWorkerSession> | undefined;
    const result = await runCoordinator(config, {
      log: () => undefined,
      onListening: async (url) => {
        // The coordinator has loaded and opened the model; the worker's host must not have it.
        renameSync(fixture.modelPath, hidden);
        session = connectWithRetry(url).then((transport) => runWorkerSession({ transport, backend, cacheDir, log: (l) => logs.push(l) }));
      },
    });
    expect(await session).toEqual({ kind: 'stopped', reason: 'training finished' });
    renameSync(hidden, fixture.modelPath);

    const digest = await sha256OfFile(fixture.modelPath);
    const cached = BlobStore.inCacheDir(cacheDir).pathOf(digest);
    expect(readFileSync(cached).equals(readFileSync(fixture.modelPath))).toBe(true);
    expect(readdirSync(join(cacheDir, 'blobs'))).toEqual([digest]);
    expect(logs.some((l) => l.includes(`model ${cached} loaded`))).toBe(true);

    // The fetched model is the one it trained with: the run equals the single-process reference.
    const reference = await referenceRun(config);
    expect(result.steps).toBe(5);
    result.stepLosses.forEach((loss, i) => expect(Math.abs(loss - reference.losses[i]) / reference.losses[i]).toBeLessThan(1e-5));
  });
});

describe('blob transfers', () => {
  const BLOB_BYTES = 50 * 1000 * 1000;
  let blob: Buffer;
  let digest: string;
  let blobs: BlobServer;
  let server: WsServer;

  beforeAll(async () => {
    const dir = freshDir('swarmtune-served-');
    blob = randomBytes(BLOB_BYTES);
    digest = sha(blob);
    writeFileSync(join(dir, 'blob.bin'), blob);
    writeFileSync(join(dir, 'small.bin'), blob.subarray(0, 10_000));
    blobs = new BlobServer();
    await blobs.serveBlob(digest, join(dir, 'blob.bin'));
    // Announced under a hash its bytes do not have: what a worker sees if the coordinator's file changed.
    await blobs.serveBlob('0'.repeat(64), join(dir, 'small.bin'));
    server = await startWsServer({ port: 0, onConnection: (conn) => void blobs.attach(conn) });
  });

  afterAll(async () => {
    await server?.close();
    await blobs?.close();
  });

  async function fetchOnce(store: BlobStore, sha256: string, onProgress?: Parameters<typeof fetchBlob>[1]['onProgress'], log?: (l: string) => void) {
    const transport = await connectWithRetry(server.url);
    const channel = transportBlobChannel(transport);
    try {
      return await fetchBlob(sha256, { store, channel, onProgress: onProgress && ((have, total) => onProgress(have, total)), log });
    } finally {
      channel.dispose();
      transport.close(1000, 'done');
    }
  }

  it('a 50 MB transfer cut at half resumes on a new connection and completes with a verified hash', async () => {
    const store = BlobStore.inCacheDir(freshDir('swarmtune-cache-'));
    let cutAtBytes = 0;
    const transport = await connectWithRetry(server.url);
    const channel = transportBlobChannel(transport);
    const cut = fetchBlob(digest, {
      store,
      channel,
      onProgress: (have, total) => {
        expect(total).toBe(BLOB_BYTES);
        if (cutAtBytes === 0 && have >= total / 2) {
          cutAtBytes = have;
          transport.close(1000, 'cut by the test');
        }
      },
    });
    await expect(cut).rejects.toMatchObject({ code: ErrorCode.CONNECTION_CLOSED });
    channel.dispose();
    const kept = statSync(store.partialPathOf(digest)).size;
    expect(kept).toBe(cutAtBytes);
    expect(kept).toBeGreaterThanOrEqual(BLOB_BYTES / 2);
    expect(kept).toBeLessThan(BLOB_BYTES);
    expect(existsSync(store.pathOf(digest))).toBe(false);

    const resumed = await fetchOnce(store, digest);
    expect(resumed).toEqual({ path: store.pathOf(digest), source: 'fetched', resumedFromBytes: kept, fetchedBytes: BLOB_BYTES - kept });
    expect(await sha256OfFile(resumed.path)).toBe(digest);
    expect(existsSync(store.partialPathOf(digest))).toBe(false);

    // A later session finds it complete and verified in the cache: nothing travels.
    expect(await fetchOnce(store, digest)).toMatchObject({ source: 'cache', fetchedBytes: 0 });

    // A corrupted cache file is detected and fetched again from byte 0.
    const bytes = readFileSync(resumed.path);
    bytes[BLOB_BYTES - 3] ^= 0x01;
    writeFileSync(resumed.path, bytes);
    const logs: string[] = [];
    const refetched = await fetchOnce(store, digest, undefined, (l) => logs.push(l));
    expect(refetched).toMatchObject({ source: 'fetched', resumedFromBytes: 0, fetchedBytes: BLOB_BYTES });
    expect(logs.some((l) => l.includes('failed its sha256 check'))).toBe(true);
    expect(await sha256OfFile(refetched.path)).toBe(digest);
  });

  it('refuses a hash it did not announce with E_BLOB_UNKNOWN', async () => {
    const store = BlobStore.inCacheDir(freshDir('swarmtune-cache-'));
    await expect(fetchOnce(store, 'f'.repeat(64))).rejects.toMatchObject({ code: ErrorCode.BLOB_UNKNOWN, name: 'RemoteError' });
  });

  it('refuses ranges outside the blob with E_BLOB_RANGE and keeps the connection open', async () => {
    const transport = await connectWithRetry(server.url);
    const channel = transportBlobChannel(transport);
    try {
      for (const [offset, length] of [[BLOB_BYTES + 1, 10], [0, 0], [0, 64 * 1024 * 1024]]) {
        const req = makeMessage(MsgKind.BLOB_REQUEST, { sha256: digest, offset, length });
        await channel.send(req);
        expect(await channel.receive(10_000)).toMatchObject({ kind: MsgKind.ERROR, code: ErrorCode.BLOB_RANGE, replyTo: req.id });
      }
      const req = makeMessage(MsgKind.BLOB_REQUEST, { sha256: digest, offset: BLOB_BYTES - 5, length: 100 });
      await channel.send(req);
      const reply = await channel.receive(10_000);
      expect(reply).toMatchObject({ kind: MsgKind.BLOB_RESULT, replyTo: req.id, offset: BLOB_BYTES - 5, totalBytes: BLOB_BYTES });
      expect(Buffer.from((reply as { data: Uint8Array }).data).equals(blob.subarray(BLOB_BYTES - 5))).toBe(true);
    } finally {
      channel.dispose();
      transport.close(1000, 'done');
    }
  });

  it('deletes the partial and fails with E_BLOB_INTEGRITY when the bytes do not hash to the announced sha256', async () => {
    const store = BlobStore.inCacheDir(freshDir('swarmtune-cache-'));
    await expect(fetchOnce(store, '0'.repeat(64))).rejects.toMatchObject({ code: ErrorCode.BLOB_INTEGRITY });
    expect(existsSync(store.partialPathOf('0'.repeat(64)))).toBe(false);
    expect(existsSync(store.pathOf('0'.repeat(64)))).toBe(false);
  });
});
