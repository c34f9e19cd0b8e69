/**
 * Shipping a Hugging Face model directory over real loopback WebSockets: a worker process with an empty cache and
 * no model joins a data-parallel run on an HF directory, fetches its files from the coordinator into
 * `<cache>/hf/<digest>/` and trains (the run equals the single-process reference); a transfer cut in the middle of
 * a file resumes from the partial file on a new connection; a file whose bytes are not the announced ones is
 * refused naming the file, and no directory appears.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobServer } from '../../coordinator/blob-server.js';
import { announceModel } from '../../coordinator/model-announcement.js';
import { runCoordinator } from '../../coordinator/run.js';
import { startWsServer, type WsServer } from '../../coordinator/transport-ws.js';
import { BlobStore } from '../../shared/blobs/blob-store.js';
import { ErrorCode } from '../../shared/errors.js';
import { loadBaseModel } from '../../shared/model/load-model.js';
import type { ModelFileRef, ModelRef } from '../../shared/protocol/messages.js';
import { selectBackend } from '../../worker/backend.js';
import { obtainModelFile, transportBlobChannel } from '../../worker/blob-fetch.js';
import { hfCachePathOf } from '../../worker/hf-dir-fetch.js';
import { connectWithRetry } from '../../worker/transport-ws.js';
import { dpConfig, makeDpFixture, referenceRun, type DpFixture } from '../helpers/dp-fixture.js';
import { writeRandomHfDir } from '../helpers/random-hf-dir.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'swarmtune.mjs');
const freshDir = (prefix: string): string => mkdtempSync(join(tmpdir(), prefix));

let fixture: DpFixture;
let hfDir: string;

beforeAll(async () => {
  await selectBackend('auto');
  fixture = await makeDpFixture();
  hfDir = join(fixture.dir, 'hf-model');
  // The same shape as the fixture's GGUF (2 layers, width 32, vocabulary 400), as an HF directory.
  await writeRandomHfDir(hfDir, { seed: 5, dim: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, hiddenDim: 64, vocabSize: 400 });
});

describe('a worker process started with nothing but --connect, on a run whose model is an HF directory', () => {
  it('fetches the directory into an empty cache, verifies it file by file and trains', async () => {
    const config = dpConfig(fixture, 1, { model: hfDir });
    const cacheDir = freshDir('swarmtune-cache-');
    const hidden = `${hfDir}.elsewhere`;
    let worker: { exited: Promise<number | null>; stderr: () => string } | undefined;
    const coordinatorLogs: string[] = [];
    const result = await runCoordinator(config, {
      log: (l) => coordinatorLogs.push(l),
      onListening: (url) => {
        // The coordinator has loaded the directory and opened its files; the worker's host must not have it.
        renameSync(hfDir, hidden);
        const child = spawn(process.execPath, [BIN, 'worker', '--connect', url, '--cache-dir', cacheDir, '--connect-attempts', '3'], { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
        worker = { exited: once(child, 'exit').then(([code]) => code as number | null), stderr: () => stderr };
      },
    }).finally(() => existsSync(hidden) && renameSync(hidden, hfDir));
    expect(await worker!.exited, worker!.stderr()).toBe(0);
    expect(coordinatorLogs.some((l) => /model directory .*: serving 4 files/.test(l))).toBe(true);

    const digest = (await loadBaseModel(hfDir)).sha256;
    const cached = hfCachePathOf(cacheDir, digest);
    expect(readdirSync(join(cacheDir, 'hf'))).toEqual([digest]);
    expect(readdirSync(cached).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    for (const name of readdirSync(cached)) expect(readFileSync(join(cached, name)).equals(readFileSync(join(hfDir, name))), name).toBe(true);
    expect(worker!.stderr()).toMatch(/fetching the model directory [0-9a-f]{64} from the coordinator: 4 files/);
    expect(worker!.stderr()).toContain(`model ${cached} loaded`);

    // The fetched directory is the one it trained with: the run equals the single-process reference.
    const reference = await referenceRun(config);
    expect(result.steps).toBe(5);
    result.stepLosses.forEach((loss, i) => expect(Math.abs(loss - reference.losses[i]) / reference.losses[i]).toBeLessThan(1e-5));
  }, 180_000);
});

describe('HF directory transfers', () => {
  const RANGE_BYTES = 16 * 1024;
  let blobs: BlobServer;
  let server: WsServer;
  let ref: ModelRef & { files: readonly ModelFileRef[] };
  let weights: ModelFileRef;

  beforeAll(async () => {
    blobs = new BlobServer();
    const announced = await announceModel(hfDir, (await loadBaseModel(hfDir)).sha256, blobs, () => undefined);
    // Workers of these tests never find the directory at the announced path.
    ref = { ...announced, path: join(freshDir('swarmtune-absent-'), 'hf-model'), files: announced.files! };
    weights = ref.files.find((f) => f.name === 'model.safetensors')!;
    expect(weights.sizeBytes).toBeGreaterThan(4 * RANGE_BYTES);
    server = await startWsServer({ port: 0, onConnection: (conn) => void blobs.attach(conn) });
  });

  afterAll(async () => {
    await server?.close();
    await blobs?.close();
  });

  async function obtainOnce(modelRef: ModelRef, cacheDir: string, extra: Omit<Parameters<typeof obtainModelFile>[1], 'channel'> = {}) {
    const transport = await connectWithRetry(server.url);
    const channel = transportBlobChannel(transport);
    try {
      return await obtainModelFile(modelRef, { cacheDir, channel, rangeBytes: RANGE_BYTES, ...extra });
    } finally {
      channel.dispose();
      transport.close(1000, 'done');
    }
  }

  it('a transfer cut in the middle of a file resumes on a new connection, and the directory appears only whole', async () => {
    const cacheDir = freshDir('swarmtune-cache-');
    const store = BlobStore.inCacheDir(cacheDir);
    let cutAtBytes = 0;
    const transport = await connectWithRetry(server.url);
    const channel = transportBlobChannel(transport);
    const cut = obtainModelFile(ref, {
      cacheDir,
      channel,
      rangeBytes: RANGE_BYTES,
      onProgress: (have, total) => {
        if (cutAtBytes === 0 && total === weights.sizeBytes && have >= total / 2) {
          cutAtBytes = have;
          transport.close(1000, 'cut by the test');
        }
      },
    });
    await expect(cut).rejects.toMatchObject({ code: ErrorCode.CONNECTION_CLOSED });
    channel.dispose();
    expect(cutAtBytes).toBeGreaterThan(0);
    expect(statSync(store.partialPathOf(weights.sha256)).size).toBe(cutAtBytes);
    expect(existsSync(store.pathOf(ref.files[0].sha256))).toBe(true); // config.json came first, complete
    expect(existsSync(join(cacheDir, 'hf'))).toBe(false); // not even a staging folder: files first, then the directory

    // A copy at the announced path whose tokenizer differs is not used: the cache is.
    const stale = join(freshDir('swarmtune-stale-'), 'hf-model');
    cpSync(hfDir, stale, { recursive: true });
    const tokenizer = readFileSync(join(stale, 'tokenizer.json'));
    tokenizer[tokenizer.length - 2] ^= 0x01;
    writeFileSync(join(stale, 'tokenizer.json'), tokenizer);

    const logs: string[] = [];
    const resumed = await obtainOnce({ ...ref, path: stale }, cacheDir, { log: (l) => logs.push(l) });
    expect(resumed).toEqual({ path: hfCachePathOf(cacheDir, ref.sha256), source: 'fetched' });
    expect(logs.some((l) => /tokenizer\.json has sha256 [0-9a-f]{64}, the run's has .*: using the cache instead/.test(l))).toBe(true);
    expect(logs).toContain(`resuming blob ${weights.sha256} from byte ${cutAtBytes}`);
    expect(logs).toContain(`model file model.safetensors: resumed from byte ${cutAtBytes}`);
    expect(existsSync(store.partialPathOf(weights.sha256))).toBe(false);
    expect((await loadBaseModel(resumed.path)).sha256).toBe(ref.sha256);
    expect(readdirSync(join(cacheDir, 'hf'))).toEqual([ref.sha256]);

    // A later session finds it complete and verified: nothing travels.
    const again: string[] = [];
    expect(await obtainOnce(ref, cacheDir, { log: (l) => again.push(l) })).toEqual({ path: resumed.path, source: 'cache' });
    expect(again.some((l) => l.includes('fetching'))).toBe(false);
  }, 60_000);

  it('refuses a file whose bytes are not the announced ones, naming it, and assembles nothing', async () => {
    // The coordinator's copy of tokenizer.json changed after it was announced (same size, one byte).
    const served = join(freshDir('swarmtune-served-'), 'hf-model');
    cpSync(hfDir, served, { recursive: true });
    const bytes = readFileSync(join(served, 'tokenizer.json'));
    bytes[10] ^= 0x20;
    writeFileSync(join(served, 'tokenizer.json'), bytes);
    const liar = new BlobServer();
    for (const file of ref.files) await liar.serveBlob(file.sha256, join(served, file.name));
    const liarServer = await startWsServer({ port: 0, onConnection: (conn) => void liar.attach(conn) });
    const cacheDir = freshDir('swarmtune-cache-');
    const store = BlobStore.inCacheDir(cacheDir);
    const tokenizerRef = ref.files.find((f) => f.name === 'tokenizer.json')!;
    const transport = await connectWithRetry(liarServer.url);
    const channel = transportBlobChannel(transport);
    try {
      await expect(obtainModelFile(ref, { cacheDir, channel })).rejects.toMatchObject({
        name: 'InputFileError',
        code: ErrorCode.BLOB_INTEGRITY,
        message: expect.stringMatching(
          new RegExp(`^model file tokenizer\\.json of the HF directory ${ref.sha256} was refused: blob .*: ${tokenizerRef.sizeBytes} bytes received with sha256 [0-9a-f]{64}, expected ${tokenizerRef.sha256}; the partial file was deleted$`),
        ),
      });
    } finally {
      channel.dispose();
      transport.close(1000, 'done');
      await liarServer.close();
      await liar.close();
    }
    expect(existsSync(store.partialPathOf(tokenizerRef.sha256))).toBe(false);
    expect(existsSync(store.pathOf(tokenizerRef.sha256))).toBe(false);
    expect(existsSync(hfCachePathOf(cacheDir, ref.sha256))).toBe(false);
  }, 60_000);
});
