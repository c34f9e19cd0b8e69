/**
 * The zero-copy wire path: frames encoded as segments (tensor bytes as views), chunk frames sent and received as
 * WebSocket fragments without joining them, reassembly from parts, the chunk size a run sets, and `release` of
 * messages joined from fragments. Real loopback sockets; raw `ws` clients to look at what goes on the wire.
 */
import { crc32 } from '../../../../shared/checksum.js';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startWsServer, type ServerConnection, type WsServer } from '../../../../coordinator/transport-ws.js';
import { blobToFloat32, decodeFrame, encodeMessageInto, encodeMessageSegments, float32Blob } from '../../../../shared/codec.js';
import { ErrorCode } from '../../../../shared/errors.js';
import { compileConfig } from '../../../../shared/config/compile.js';
import { makeMessage } from '../../../../shared/protocol/build.js';
import {
  ChunkError,
  ChunkReassembler,
  CHUNK_TRAILER_BYTES,
  encodeChunkHeader,
  encodeChunkTrailer,
  MAX_CHUNK_SIZE_BYTES,
  MIN_CHUNK_SIZE_BYTES,
  parseFragmentedChunk,
} from '../../../../shared/protocol/chunking.js';
import type { Message } from '../../../../shared/protocol/messages.js';
import { SUBPROTOCOL } from '../../../../shared/protocol/messages.js';
import { SEND_PIECE_BYTES, WS_FIRST_FRAGMENT_BYTES, chunkSizes } from '../../../../shared/protocol/send-queue.js';
import { SocketTransport, releaseMessage, setChunkSize } from '../../../../shared/protocol/socket-transport.js';
import type { Transport } from '../../../../shared/transport.js';
import { connectWs } from '../../../../worker/transport-ws.js';

const servers: WsServer[] = [];
const clients: WebSocket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function gradResult(n: number, seed = 0): Message {
  const values = Float32Array.from({ length: n }, (_, i) => Math.sin(i + seed));
  const stats = { lossSum: 1, numSamples: 1, numLossItems: 1, numTokens: 1, numCorrect: 0 };
  return makeMessage('grad_result', { replyTo: 'r1', step: 3, grads: [float32Blob('w', [n], values)], stats, computeMs: 1 });
}

function join(parts: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** Byte equality without vitest's element-by-element diff (slow on large arrays). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function floatBytes(m: Message): Uint8Array {
  if (m.kind !== 'grad_result') throw new Error(`expected grad_result, got ${m.kind}`);
  const v = blobToFloat32(m.grads[0]);
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function nextMessage(t: Transport): Promise<Message> {
  return new Promise((resolve) => {
    const off = t.onMessage((m) => {
      off();
      resolve(m);
    });
  });
}

async function echoServer(chunkSizeBytes: number): Promise<{ srv: WsServer; conns: ServerConnection[] }> {
  const conns: ServerConnection[] = [];
  const srv = await startWsServer({
    port: 0,
    chunkSizeBytes,
    maxPayloadBytes: MAX_CHUNK_SIZE_BYTES,
    onConnection: (conn) => {
      conns.push(conn);
      conn.onMessage((msg) => conn.send(msg));
    },
  });
  servers.push(srv);
  return { srv, conns };
}

describe('encodeMessageSegments', () => {
  it('concatenates to exactly the bytes of encodeMessageInto, with large tensors as views of the caller data', () => {
    for (const a of [0, 3, 1023, 1024, 1025, 16_384, 70_000]) {
      for (const b of [1, 20_000]) {
        const x = Float32Array.from({ length: a }, (_, i) => i * 0.5 - 3);
        const msg = makeMessage('grad_result', {
          replyTo: `r${a}`,
          step: a,
          grads: [float32Blob('a', [a], x), float32Blob('pad.me', [b], new Float32Array(b).fill(1.25))],
          stats: { lossSum: 1, numSamples: 1, numLossItems: 1, numTokens: b, numCorrect: 0 },
          computeMs: 2,
        });
        const segments = encodeMessageSegments(msg);
        expect(sameBytes(join(segments), encodeMessageInto(msg, Buffer.allocUnsafe(64)))).toBe(true);
        if (a * 4 >= 4096) expect(segments.some((s) => s.buffer === x.buffer)).toBe(true);
      }
    }
    const small = makeMessage('stop', { reason: 'done' });
    expect(encodeMessageSegments(small)).toHaveLength(1);
  });

  it('re-encodes a decoded message (its blobs already carry a pad, anywhere among their keys) to the same bytes', () => {
    const x = Float32Array.from({ length: 5000 }, (_, i) => i);
    const stats = { lossSum: 1, numSamples: 1, numLossItems: 1, numTokens: 1, numCorrect: 0 };
    const msg = makeMessage('grad_result', { replyTo: 'r', step: 1, grads: [float32Blob('w', [5000], x)], stats, computeMs: 1 });
    const decoded = decodeFrame(encodeMessageInto(msg, Buffer.allocUnsafe(64))) as Message;
    if (decoded.kind !== 'grad_result') throw new Error('expected grad_result');
    const { name, dtype, shape, data } = decoded.grads[0] as unknown as { name: string; dtype: string; shape: number[]; data: Uint8Array };
    const padFirst = { ...decoded, grads: [{ pad: Uint8Array.of(1, 2, 3), name, dtype, shape, data }] } as unknown as Message;
    for (const m of [decoded, padFirst]) {
      const frame = join(encodeMessageSegments(m));
      expect(sameBytes(frame, encodeMessageInto(m, Buffer.allocUnsafe(64)))).toBe(true);
      const again = decodeFrame(frame) as Message;
      expect(sameBytes(floatBytes(again), floatBytes(msg))).toBe(true);
      // The old pad was replaced by one sized for this frame: the data is 8-aligned, so it decodes without a copy.
      if (again.kind !== 'grad_result') throw new Error('expected grad_result');
      expect(blobToFloat32(again.grads[0]).buffer).toBe(frame.buffer);
    }
  });
});

describe('fragmented chunk frames', () => {
  const data = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 31) & 0xff);
  const parts = [data.subarray(0, 1000), data.subarray(1000, 70_000), data.subarray(70_000)];
  const crc = parts.reduce((c, p) => crc32(p, c), 0);

  it('reads the header fragment alone and reassembles from the data parts, CRC over all of them from the trailer', () => {
    expect(crc).toBe(crc32(data));
    const header = encodeChunkHeader(7, 0, 1, data.byteLength, data.byteLength);
    const read = parseFragmentedChunk([header, ...parts, encodeChunkTrailer(crc)]);
    expect(read?.head).toMatchObject({ transferId: 7, index: 0, count: 1, totalBytes: data.byteLength, crc32: crc });
    const whole = new ChunkReassembler().accept(read!.head, read!.parts);
    expect(sameBytes(whole!, data)).toBe(true);
  });

  it('declines fragments laid out otherwise, so the caller joins them', () => {
    const header = encodeChunkHeader(7, 0, 1, data.byteLength, data.byteLength);
    const trailer = encodeChunkTrailer(crc);
    expect(parseFragmentedChunk([header, parts[0], trailer])).toBeUndefined(); // lengths do not add up
    expect(parseFragmentedChunk([join([header, parts[0]]), parts[1], parts[2], trailer])).toBeUndefined();
    expect(parseFragmentedChunk([header])).toBeUndefined();
    const junk = Uint8Array.from([0x81, 0xa1, 0x78, 0xc6, 0, 0, 0, 3]);
    expect(parseFragmentedChunk([junk, Uint8Array.of(1, 2, 3)])).toBeUndefined(); // not a chunk
    const notCrc = Uint8Array.from(trailer);
    notCrc[1] = 0x78;
    expect(parseFragmentedChunk([header, ...parts, notCrc])).toBeUndefined();
    // Joined, the frame decodes as an ordinary map: the general path still takes it.
    expect(decodeFrame(join([header, ...parts, trailer]))).toMatchObject({ kind: 'chunk', crc32: crc, totalBytes: data.byteLength });
  });

  it('refuses a part whose bytes changed (CRC-32 over the parts), and discards the transfer', () => {
    const header = encodeChunkHeader(1, 0, 1, data.byteLength, data.byteLength);
    const bad = [parts[0], Uint8Array.from(parts[1]), parts[2]];
    bad[1][5] ^= 1;
    const read = parseFragmentedChunk([header, ...bad, encodeChunkTrailer(crc)])!;
    const r = new ChunkReassembler();
    let caught: unknown;
    try {
      r.accept(read.head, read.parts);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ChunkError);
    expect((caught as ChunkError).code).toBe(ErrorCode.CHUNK_CHECKSUM);
    expect(r.pendingTransfers).toBe(0);
  });
});

describe('the wire over WebSockets', () => {
  it('sends a chunk as its header fragment alone, its data in pieces, its trailer; a larger message with a short first fragment', async () => {
    const { srv, conns } = await echoServer(MIN_CHUNK_SIZE_BYTES);
    const raw = new WebSocket(srv.url, [SUBPROTOCOL]);
    clients.push(raw);
    raw.binaryType = 'fragments';
    await new Promise((resolve) => raw.once('open', resolve));
    const messages: Buffer[][] = [];
    const got = new Promise<void>((resolve) =>
      raw.on('message', (data) => {
        messages.push(data as Buffer[]);
        if (messages.length === 5) resolve();
      }),
    );
    while (conns.length === 0) await new Promise((r) => setImmediate(r));
    await conns[0].send(gradResult(50_000)); // 200 KB: 4 chunks of 64 KiB at most
    setChunkSize(conns[0], 4 * 1024 * 1024);
    await conns[0].send(gradResult(100_000)); // 400 KB: one message, not chunked
    await got;
    for (const fragments of messages.slice(0, 4)) {
      expect(fragments[0].byteLength).toBeLessThanOrEqual(128);
      expect(fragments.at(-1)!.byteLength).toBe(CHUNK_TRAILER_BYTES);
      expect(parseFragmentedChunk(fragments)?.head.count).toBe(4);
    }
    // Data fragments are whole pieces, not cut at ws's 32 KiB: a plain ws client collects them as they came.
    expect(Math.max(...messages.slice(0, 4).flatMap((f) => f.slice(1).map((p) => p.byteLength)))).toBeGreaterThan(32 * 1024);
    const whole = messages[4];
    expect(whole[0].byteLength).toBeLessThanOrEqual(WS_FIRST_FRAGMENT_BYTES);
    expect(whole.length).toBeLessThan(8);
    const back = decodeFrame(join(whole)) as Message;
    expect(sameBytes(floatBytes(back), floatBytes(gradResult(100_000)))).toBe(true);
  });

  it('sizes chunks at the chunk size, the last one what is left, and cuts their data in pieces of at most 2 MiB', () => {
    const mib = 1024 * 1024;
    expect(chunkSizes(10_000_000, 4 * mib)).toEqual([4 * mib, 4 * mib, 10_000_000 - 8 * mib]);
    expect(chunkSizes(200_000, MIN_CHUNK_SIZE_BYTES)).toEqual([65_536, 65_536, 65_536, 200_000 - 3 * 65_536]);
    expect(chunkSizes(4 * mib, 4 * mib)).toEqual([4 * mib]);
    expect(SEND_PIECE_BYTES).toBe(2 * mib);
  });

  it('round-trips bit-exact at the chunk size the worker learns, and a send waits until its views are written', async () => {
    const { srv } = await echoServer(MIN_CHUNK_SIZE_BYTES);
    const client = await connectWs(srv.url, { pingTimeoutMs: 0 });
    setChunkSize(client, 128 * 1024);
    expect((client as SocketTransport).chunkSizeBytes).toBe(128 * 1024);
    const msg = gradResult(300_000, 1); // 1.2 MB: chunked both ways, at different sizes
    if (msg.kind !== 'grad_result') throw new Error('expected grad_result');
    const sent = Float32Array.from(blobToFloat32(msg.grads[0]));
    const echoed = nextMessage(client);
    await client.send(msg);
    // The send resolved: the socket has the bytes, so the caller may reuse its tensor memory at once.
    blobToFloat32(msg.grads[0]).fill(-1);
    const back = await echoed;
    expect(sameBytes(floatBytes(back), new Uint8Array(sent.buffer))).toBe(true);
    client.close();
  });

  it('lands a fragmented message below the chunk size in a buffer that release hands back', async () => {
    const { srv } = await echoServer(4 * 1024 * 1024);
    const client = await connectWs(srv.url, { pingTimeoutMs: 0 });
    const bufferOf = (m: Message) => (m.kind === 'grad_result' ? m.grads[0].data.buffer : undefined);
    let next = nextMessage(client);
    await client.send(gradResult(100_000, 2)); // 400 KB: one message of many fragments, not chunked
    const first = await next;
    releaseMessage(client, first);
    next = nextMessage(client);
    const msg = gradResult(90_000, 3);
    await client.send(msg);
    const second = await next;
    expect(bufferOf(second)).toBe(bufferOf(first));
    expect(sameBytes(floatBytes(second), floatBytes(msg))).toBe(true);
    client.close();
  });

  it('refuses a chunk size outside the run bounds, naming the link', async () => {
    const { srv } = await echoServer(MIN_CHUNK_SIZE_BYTES);
    const client = (await connectWs(srv.url, { pingTimeoutMs: 0 })) as SocketTransport;
    for (const bad of [MIN_CHUNK_SIZE_BYTES - 1, MAX_CHUNK_SIZE_BYTES + 1, 1.5e6 + 0.5]) {
      expect(() => client.setChunkSizeBytes(bad)).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID, message: expect.stringContaining(srv.url) }));
    }
    client.close();
  });
});

describe('chunk_size_bytes', () => {
  it('defaults to 4 MiB and is refused outside [64 KiB, 64 MiB], naming the key', () => {
    expect(compileConfig({}).chunk_size_bytes).toBe(4 * 1024 * 1024);
    expect(compileConfig({ chunk_size_bytes: MIN_CHUNK_SIZE_BYTES }).chunk_size_bytes).toBe(MIN_CHUNK_SIZE_BYTES);
    for (const bad of [MIN_CHUNK_SIZE_BYTES - 1, MAX_CHUNK_SIZE_BYTES + 1, 100_000.5, '4MiB']) {
      expect(() => compileConfig({ chunk_size_bytes: bad })).toThrow(
        expect.objectContaining({ code: ErrorCode.CONFIG_INVALID, message: expect.stringContaining('chunk_size_bytes') }),
      );
    }
  });
});
