/**
 * `npm run bench:blob`: base-model distribution speed over loopback WebSockets. A random blob of --mb MB is
 * served by a `BlobServer` and fetched by `fetchBlob` into an empty cache (ranges, CRC-32 per range, append,
 * whole-file SHA-256, atomic rename), for each range size × requests in flight. Each figure is the median of
 * --reps fetches. For scale: `sha256_gb_s` is this machine's SHA-256 speed alone (a lower bound on the cost of
 * verifying), `file_copy_gb_s` a plain `copyFile` of the same blob.
 *
 * Progress goes to stderr; the LAST stdout line is one JSON object:
 *   { "mb", "sha256_gb_s", "file_copy_gb_s", "fetch": { "<rangeKiB>KiB x<inFlight>": { "mb_s", "ms" } } }
 *
 * Flags: --mb N (default 200), --reps N (default 3).
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BlobServer } from '../coordinator/blob-server.js';
import { startWsServer } from '../coordinator/transport-ws.js';
import { BlobStore } from '../shared/blobs/blob-store.js';
import { DEFAULT_BLOB_RANGE_BYTES, fetchBlob, transportBlobChannel } from '../worker/blob-fetch.js';
import { connectWs } from '../worker/transport-ws.js';

const { values: flags } = parseArgs({ options: { mb: { type: 'string', default: '200' }, reps: { type: 'string', default: '3' } } });
const totalBytes = Number(flags.mb) * 1e6;
const reps = Number(flags.reps);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'swarmtune-bench-blob-'));
const blob = randomBytes(totalBytes);
const blobPath = join(dir, 'blob.bin');
writeFileSync(blobPath, blob);
let started = performance.now();
const digest = createHash('sha256').update(blob).digest('hex');
const sha256GbS = totalBytes / 1e9 / ((performance.now() - started) / 1000);
started = performance.now();
copyFileSync(blobPath, join(dir, 'copy.bin'));
const copyGbS = totalBytes / 1e9 / ((performance.now() - started) / 1000);
rmSync(join(dir, 'copy.bin'));

const blobs = new BlobServer();
await blobs.serveBlob(digest, blobPath);
const server = await startWsServer({ port: 0, onConnection: (conn) => void blobs.attach(conn) });
const fetch: Record<string, { mb_s: number; ms: number }> = {};
try {
  for (const rangeBytes of [1 << 20, DEFAULT_BLOB_RANGE_BYTES]) {
    for (const maxInFlight of [1, 2, 4]) {
      const times: number[] = [];
      for (let rep = 0; rep < reps; rep++) {
        const cacheDir = mkdtempSync(join(dir, 'cache-'));
        const transport = await connectWs(server.url);
        const channel = transportBlobChannel(transport);
        const t0 = performance.now();
        await fetchBlob(digest, { store: BlobStore.inCacheDir(cacheDir), channel, rangeBytes, maxInFlight });
        times.push(performance.now() - t0);
        channel.dispose();
        transport.close(1000, 'done');
        rmSync(cacheDir, { recursive: true, force: true });
      }
      const ms = median(times);
      const key = `${Math.round(rangeBytes / 1024)}KiB x${maxInFlight}`;
      fetch[key] = { mb_s: Math.round(totalBytes / 1e6 / (ms / 1000)), ms: Math.round(ms) };
      console.error(`${key}: ${fetch[key].mb_s} MB/s (${fetch[key].ms} ms)`);
    }
  }
} finally {
  await server.close();
  await blobs.close();
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify({ mb: totalBytes / 1e6, sha256_gb_s: Number(sha256GbS.toFixed(2)), file_copy_gb_s: Number(copyGbS.toFixed(2)), fetch }));
