/**
 * Chunked transfers over a real loopback WebSocket into the coordinator's transport, where the server's socket
 * reads land in the reassembly buffer (./socket-read-landing.ts): random message and chunk sizes, data in
 * fragments of random sizes, and one fault or none per transfer (a flipped data byte, bytes missing, bytes too
 * many, a trailer that is not one, a ping between fragments). A sound transfer arrives bit-exact; a broken one
 * closes the connection 1007 and delivers nothing; nothing throws, the server keeps serving, and no
 * reassembly memory stays reserved.
 *
 * Size: SWARMTUNE_LANDING_FUZZ_RUNS transfers (default 40; 300 take about 16 s here).
 */
import { crc32 } from '../../../../shared/checksum.js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startWsServer, type WsServer } from '../../../../coordinator/transport-ws.js';
import { blobToFloat32, encodeMessageSegments, float32Blob } from '../../../../shared/codec.js';
import { makeMessage } from '../../../../shared/protocol/build.js';
import { encodeChunkHeader, encodeChunkTrailer, CHUNK_HEADER_SLACK_BYTES, MAX_CHUNK_SIZE_BYTES } from '../../../../shared/protocol/chunking.js';
import { SUBPROTOCOL, type Message } from '../../../../shared/protocol/messages.js';
import type { SocketTransport } from '../../../../shared/protocol/socket-transport.js';

const FAULTS = ['none', 'flipped byte', 'missing bytes', 'extra bytes', 'bad trailer', 'ping between fragments'] as const;
type Fault = (typeof FAULTS)[number];

let server: WsServer;
const connections: SocketTransport[] = [];
const received: Message[][] = [];
const failures: unknown[] = [];
const recordFailure = (err: unknown): void => void failures.push(err);

beforeAll(async () => {
  server = await startWsServer({
    port: 0,
    maxPayloadBytes: MAX_CHUNK_SIZE_BYTES + CHUNK_HEADER_SLACK_BYTES,
    pingIntervalMs: 3_600_000,
    onConnection: (conn) => {
      const got: Message[] = [];
      connections.push(conn as unknown as SocketTransport);
      received.push(got);
      conn.onMessage((m) => void got.push(m));
    },
  });
  process.on('uncaughtException', recordFailure);
});
afterAll(async () => {
  process.off('uncaughtException', recordFailure);
  await server.close();
});

function gradResult(n: number, seed: number): Message {
  const values = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed));
  const stats = { lossSum: 1, numSamples: 1, numLossItems: 1, numTokens: 1, numCorrect: 0 };
  return makeMessage('grad_result', { replyTo: 'r1', step: seed, grads: [float32Blob('w', [n], values)], stats, computeMs: 1 });
}

/** The WebSocket messages (each a list of fragments) of `frame` chunked at `chunkBytes`, data in `pieceBytes` fragments, with `fault` in chunk `at`. */
function chunkedFragments(frame: Uint8Array, chunkBytes: number, pieceBytes: number, fault: Fault, at: number): (Uint8Array | 'ping')[][] {
  const count = Math.ceil(frame.byteLength / chunkBytes);
  const faultyChunk = at % count;
  const out: (Uint8Array | 'ping')[][] = [];
  for (let i = 0; i < count; i++) {
    let data: Uint8Array = frame.subarray(i * chunkBytes, Math.min(frame.byteLength, (i + 1) * chunkBytes));
    const crc = crc32(data);
    const declared = data.byteLength;
    const faulty = i === faultyChunk ? fault : 'none';
    if (faulty === 'flipped byte') {
      data = Uint8Array.from(data);
      data[(at * 7919) % data.byteLength] ^= 0x10;
    }
    if (faulty === 'missing bytes') data = data.subarray(0, Math.max(0, data.byteLength - 1 - (at % 5000)));
    if (faulty === 'extra bytes') data = Buffer.concat([data, Buffer.alloc(1 + (at % 5000), 7)]);
    const fragments: (Uint8Array | 'ping')[] = [encodeChunkHeader(0, i, count, frame.byteLength, declared)];
    for (let p = 0; p < data.byteLength; p += pieceBytes) {
      fragments.push(data.subarray(p, Math.min(data.byteLength, p + pieceBytes)));
      // A few: ws terminates a peer whose pings outrun its pongs (maxPendingAutoPongs), a flood guard.
      if (faulty === 'ping between fragments' && p < 8 * pieceBytes) fragments.push('ping');
    }
    fragments.push(faulty === 'bad trailer' ? Uint8Array.of(0xa5, 0x63, 0x72, 0x63, 0x33, 0x32, 0xc0, 1, 2, 3, 4) : encodeChunkTrailer(crc));
    out.push(fragments);
  }
  return out;
}

/** Opens a client with a zero mask (as workers send), sends the messages, resolves with the close code, or 0 when still open after the echo of a probe. */
async function sendOver(messages: (Uint8Array | 'ping')[][]): Promise<{ code: number; index: number }> {
  const ws = new WebSocket(server.url, SUBPROTOCOL, { perMessageDeflate: false, generateMask: (mask: Buffer) => void mask.fill(0) });
  const index = connections.length;
  await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.on('error', () => {});
  for (const fragments of messages) {
    const dataFragments = fragments.filter((f): f is Uint8Array => f !== 'ping');
    let sent = 0;
    for (const f of fragments) {
      if (f === 'ping') {
        ws.ping();
        continue;
      }
      sent++;
      ws.send(f, { binary: true, fin: sent === dataFragments.length });
    }
  }
  // Wait for everything to reach the server: a close, or the pong to a last ping of its own (the server answers
  // pings in order, after the frames before them).
  const probe = Buffer.from('probe');
  const flushed = new Promise<number>((resolve) => ws.on('pong', (data: Buffer) => data.equals(probe) && resolve(0)));
  ws.ping(probe);
  const code = await Promise.race([closed, flushed]);
  if (code === 0) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    ws.close();
    await closed;
  }
  return { code, index };
}

describe('chunked transfers over a socket whose reads land in place', () => {
  it('deliver sound transfers bit-exact and refuse broken ones with 1007, whatever the sizes, pieces and faults', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 20_000, max: 700_000 }),
        fc.constantFrom(64 * 1024, 200_000, 1024 * 1024),
        fc.integer({ min: 1_000, max: 600_000 }),
        fc.constantFrom(...FAULTS),
        fc.nat(1_000_000),
        async (floats, chunkBytes, pieceBytes, fault, at) => {
          const msg = gradResult(floats, at);
          const frame = new Uint8Array(Buffer.concat(encodeMessageSegments(msg)));
          const { code, index } = await sendOver(chunkedFragments(frame, chunkBytes, pieceBytes, fault, at));
          const conn = connections[index];
          const got = received[index];
          if (fault === 'none' || fault === 'ping between fragments') {
            expect(code).toBe(0);
            expect(got).toHaveLength(1);
            const a = blobToFloat32((got[0] as Extract<Message, { kind: 'grad_result' }>).grads[0]);
            const b = blobToFloat32((msg as Extract<Message, { kind: 'grad_result' }>).grads[0]);
            expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(true);
          } else {
            expect(code).toBe(1007);
            expect(got).toHaveLength(0);
          }
          expect(conn.reassemblyState).toEqual({ transfers: 0, bytes: 0 });
          expect(failures).toEqual([]);
        },
      ),
      { numRuns: Math.max(1, Number(process.env.SWARMTUNE_LANDING_FUZZ_RUNS ?? "") || 40) },
    );
    // Reads landed in place in some of the connections (each fragment's first read, with its header, does not).
    expect(connections.some((c) => c.bytesLandedInPlace > 0)).toBe(true);
  }, 120_000);
});
