/**
 * landReadsInPlace on real loopback sockets: reads land in the memory the landing lends, everything else comes
 * as 'data', and the stream is the same bytes in the same order whatever the landing takes or refuses, however
 * the writer splits it, and across pause/resume.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { landReadsInPlace, type ReadLanding } from '../../../../shared/protocol/socket-read-landing.js';

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A connected pair on loopback: `accepted` is the server's side (a socket `net` created without `onread`). */
async function socketPair(): Promise<{ accepted: Socket; client: Socket }> {
  let accept!: (s: Socket) => void;
  const accepted = new Promise<Socket>((resolve) => (accept = resolve));
  const server = createServer(accept);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = connect((server.address() as { port: number }).port, '127.0.0.1');
  await new Promise<void>((resolve) => client.once('connect', resolve));
  return { accepted: await accepted, client };
}

/**
 * A landing that lends views of its own memory for the stream positions in [from, to) (stream position: bytes
 * received so far, by either route), and takes a landed read only when `take(k)` says so for the k-th one.
 */
function regionLanding(from: number, to: number, take: (k: number) => boolean) {
  const region = new Uint8Array(to - from);
  const pieces: { at: number; bytes: Uint8Array }[] = [];
  /** Stream positions and lengths of the reads that landed. */
  const landedAt: { at: number; n: number }[] = [];
  let position = 0;
  let landedReads = 0;
  let landedBytes = 0;
  let lent: Uint8Array | undefined;
  const landing: ReadLanding = {
    next() {
      lent = position >= from && position < to ? region.subarray(position - from) : undefined;
      return lent;
    },
    landed(view, n) {
      if (view !== lent || !take(landedReads++)) return false;
      pieces.push({ at: position, bytes: view.slice(0, n) });
      landedAt.push({ at: position, n });
      position += n;
      landedBytes += n;
      return true;
    },
  };
  const onData = (chunk: Buffer): void => {
    // Kept as given, as ws keeps views of reads it has not parsed yet: a read buffer reused too soon shows.
    pieces.push({ at: position, bytes: chunk });
    position += chunk.length;
  };
  const received = (): Buffer => Buffer.concat(pieces.map((p) => p.bytes));
  return { landing, onData, received, region, landedAt, stats: () => ({ position, landedBytes }) };
}

async function sendAll(client: Socket, payload: Buffer, pieceBytes: number): Promise<void> {
  for (let at = 0; at < payload.length; at += pieceBytes) {
    if (!client.write(payload.subarray(at, at + pieceBytes))) await new Promise((resolve) => client.once('drain', resolve));
  }
}

/** Waits until `total` bytes came; fails when none come for 5 s (bytes lost on the way). */
async function receivedAll(stats: () => { position: number }, total: number): Promise<void> {
  let last = -1;
  let since = Date.now();
  while (stats().position < total) {
    if (stats().position !== last) [last, since] = [stats().position, Date.now()];
    if (Date.now() - since > 5_000) throw new Error(`received ${last} of ${total} bytes, then nothing for 5 s`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

describe('landReadsInPlace', () => {
  it('lands reads in the lent memory and delivers the rest as data, in order, whatever is taken or refused', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 300_000 }),
        fc.integer({ min: 1, max: 3_000_000 }),
        fc.integer({ min: 1_000, max: 1_000_000 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
        async (from, regionBytes, pieceBytes, takes) => {
          const payload = randomBytes(from + regionBytes + 100_000);
          const { accepted, client } = await socketPair();
          const r = regionLanding(from, from + regionBytes, (k) => takes[k % takes.length]);
          accepted.on('data', r.onData);
          expect(landReadsInPlace(accepted, r.landing)).toBe(true);
          await sendAll(client, payload, pieceBytes);
          await receivedAll(r.stats, payload.length);
          client.destroy();
          accepted.destroy();
          expect(r.received().equals(payload)).toBe(true);
          // What landed is in the region, where it belongs.
          for (const { at, n } of r.landedAt) {
            expect(at >= from && at + n <= from + regionBytes).toBe(true);
            expect(Buffer.from(r.region.subarray(at - from, at - from + n)).equals(payload.subarray(at, at + n))).toBe(true);
          }
          if (takes.every((t) => !t)) expect(r.stats().landedBytes).toBe(0);
        },
      ),
      { numRuns: 12 },
    );
  });

  it('lands most of a large region when every landed read is taken', async () => {
    const { accepted, client } = await socketPair();
    const payload = randomBytes(8_000_000);
    const r = regionLanding(1_000, 7_000_000, () => true);
    accepted.on('data', r.onData);
    expect(landReadsInPlace(accepted, r.landing)).toBe(true);
    await sendAll(client, payload, 2 * 1024 * 1024);
    await receivedAll(r.stats, payload.length);
    client.destroy();
    accepted.destroy();
    expect(r.received().equals(payload)).toBe(true);
    // The first read into the region may have started before it (a 'data' read); from then on all lands.
    expect(r.stats().landedBytes).toBeGreaterThan(6_900_000);
    const landedStart = 7_000_000 - r.stats().landedBytes;
    expect(Buffer.from(r.region.subarray(landedStart - 1_000)).equals(payload.subarray(landedStart, 7_000_000))).toBe(true);
  });

  it('keeps the order across pause and resume (backpressure from a data listener)', async () => {
    const { accepted, client } = await socketPair();
    const payload = randomBytes(3_000_000);
    const r = regionLanding(500_000, 2_500_000, () => true);
    accepted.on('data', (chunk: Buffer) => {
      r.onData(chunk);
      accepted.pause();
      setTimeout(() => accepted.resume(), 1);
    });
    expect(landReadsInPlace(accepted, r.landing)).toBe(true);
    await sendAll(client, payload, 64 * 1024);
    await receivedAll(r.stats, payload.length);
    client.destroy();
    accepted.destroy();
    expect(r.received().equals(payload)).toBe(true);
    expect(r.stats().landedBytes).toBeGreaterThan(0);
  });

  it('delivers the end of the stream and a close as before', async () => {
    const { accepted, client } = await socketPair();
    const r = regionLanding(0, 10, () => true);
    accepted.on('data', r.onData);
    expect(landReadsInPlace(accepted, r.landing)).toBe(true);
    const ended = new Promise<void>((resolve) => accepted.once('end', resolve));
    const closed = new Promise<void>((resolve) => accepted.once('close', resolve));
    client.end(Buffer.from('0123456789abcdef'));
    await ended;
    accepted.end();
    await closed;
    expect(r.received().toString()).toBe('0123456789abcdef');
  });

  it('leaves alone what is not a plain open socket, and a socket already reading into user memory', async () => {
    expect(landReadsInPlace(undefined, regionLanding(0, 1, () => true).landing)).toBe(false);
    expect(landReadsInPlace({ _handle: {} }, regionLanding(0, 1, () => true).landing)).toBe(false);
    const { accepted, client } = await socketPair();
    expect(landReadsInPlace(accepted, regionLanding(0, 1, () => true).landing)).toBe(true);
    expect(landReadsInPlace(accepted, regionLanding(0, 1, () => true).landing)).toBe(false);
    accepted.destroy();
    expect(landReadsInPlace(client, regionLanding(0, 1, () => true).landing)).toBe(true);
    client.destroy();
  });
});
