/**
 * Chunk data streamed into reassembly fragment by fragment (FragmentSink, installed in ws's receiver by
 * attachWebSocket): delivered bit-exact, checked (CRC, declared sizes, limits) with the same errors and close
 * codes as the whole-message path, other messages collected as before; and used over real loopback sockets.
 */
import { crc32 } from '../../../../shared/checksum.js';
import { afterEach, describe, expect, it } from 'vitest';
import { startWsServer, type WsServer } from '../../../../coordinator/transport-ws.js';
import { blobToFloat32, decodeFrame, encodeMessage, encodeMessageSegments, float32Blob } from '../../../../shared/codec.js';
import { ErrorCode } from '../../../../shared/errors.js';
import { makeMessage } from '../../../../shared/protocol/build.js';
import { encodeChunkHeader, encodeChunkTrailer, MAX_CHUNK_SIZE_BYTES, MIN_CHUNK_SIZE_BYTES } from '../../../../shared/protocol/chunking.js';
import { FragmentSink } from '../../../../shared/protocol/fragment-sink.js';
import type { Message } from '../../../../shared/protocol/messages.js';
import { SocketTransport, type SocketSink } from '../../../../shared/protocol/socket-transport.js';
import { connectWs } from '../../../../worker/transport-ws.js';

const servers: WsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function gradResult(n: number, seed = 0): Message {
  const values = Float32Array.from({ length: n }, (_, i) => Math.sin(i + seed));
  const stats = { lossSum: 1, numSamples: 1, numLossItems: 1, numTokens: 1, numCorrect: 0 };
  return makeMessage('grad_result', { replyTo: 'r1', step: 3, grads: [float32Blob('w', [n], values)], stats, computeMs: 1 });
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function floatBytesOf(m: Message): Uint8Array {
  const v = blobToFloat32((m as Extract<Message, { kind: 'grad_result' }>).grads[0]);
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** A transport over a socket that records what the transport sends and how it closes. */
function recordingTransport(maxReassemblyBytes?: number): { transport: SocketTransport; sent: Uint8Array[]; closes: number[]; got: Message[] } {
  const sent: Uint8Array[] = [];
  const closes: number[] = [];
  const sink: SocketSink = {
    send: (bytes, done) => (sent.push(bytes), done()),
    close: (code) => void closes.push(code),
    terminate: () => void closes.push(-1),
    bufferedAmount: () => 0,
  };
  const transport = new SocketTransport(sink, { peer: 'test', ...(maxReassemblyBytes ? { reassembly: { maxReassemblyBytes } } : {}) });
  const got: Message[] = [];
  transport.onMessage((m) => void got.push(m));
  return { transport, sent, closes, got };
}

/** Pieces the sink is fed in (a continuation frame arrives in pieces of any size). */
const PIECE_BYTES = 32 * 1024;

/** The WebSocket messages a sender emits for `msg`: per chunk, the header fragment, data fragments, the trailer. */
function chunkMessages(msg: Message, chunkSizeBytes: number, transferId = 0): Uint8Array[][] {
  const frame = new Uint8Array(Buffer.concat(encodeMessageSegments(msg)));
  const count = Math.ceil(frame.byteLength / chunkSizeBytes);
  const out: Uint8Array[][] = [];
  for (let i = 0; i < count; i++) {
    const data = frame.subarray(i * chunkSizeBytes, Math.min(frame.byteLength, (i + 1) * chunkSizeBytes));
    const fragments: Uint8Array[] = [encodeChunkHeader(transferId, i, count, frame.byteLength, data.byteLength)];
    for (let at = 0; at < data.byteLength; at += PIECE_BYTES) fragments.push(data.subarray(at, Math.min(data.byteLength, at + PIECE_BYTES)));
    fragments.push(encodeChunkTrailer(crc32(data)));
    out.push(fragments);
  }
  return out;
}

function feed(transport: SocketTransport, fragments: readonly Uint8Array[], isBinary = true): FragmentSink {
  const sink = transport.createFragmentSink(() => isBinary);
  for (const f of fragments) sink.push(f);
  transport.handleFragmentSink(sink, isBinary);
  return sink;
}

function errorCodeSent(sent: readonly Uint8Array[]): unknown {
  return (decodeFrame(sent.at(-1)!) as { code?: unknown }).code;
}

describe('FragmentSink', () => {
  it('streams each chunk into reassembly as its fragments come, keeping only the header, and delivers the frame bit-exact', () => {
    const msg = gradResult(60_000);
    const { transport, got, closes } = recordingTransport();
    const messages = chunkMessages(msg, MIN_CHUNK_SIZE_BYTES);
    expect(messages.length).toBeGreaterThan(3);
    for (const fragments of messages) {
      const sink = feed(transport, fragments);
      expect(sink.isStreamed).toBe(true);
      expect(sink).toHaveLength(1);
    }
    expect(closes).toEqual([]);
    expect(got).toHaveLength(1);
    const back = blobToFloat32((got[0] as Extract<Message, { kind: 'grad_result' }>).grads[0]);
    const sent = blobToFloat32((msg as Extract<Message, { kind: 'grad_result' }>).grads[0]);
    expect(sameBytes(new Uint8Array(back.buffer, back.byteOffset, back.byteLength), new Uint8Array(sent.buffer))).toBe(true);
    expect(transport.reassemblyState).toEqual({ transfers: 0, bytes: 0 });
    expect(transport.streamedChunks).toBe(messages.length);
  });

  it('reuses a released frame for the next streamed transfer', () => {
    const { transport, got } = recordingTransport();
    for (const fragments of chunkMessages(gradResult(40_000), MIN_CHUNK_SIZE_BYTES, 0)) feed(transport, fragments);
    const first = (got[0] as Extract<Message, { kind: 'grad_result' }>).grads[0].data.buffer;
    transport.release(got[0]);
    for (const fragments of chunkMessages(gradResult(40_000, 1), MIN_CHUNK_SIZE_BYTES, 1)) feed(transport, fragments);
    expect((got[1] as Extract<Message, { kind: 'grad_result' }>).grads[0].data.buffer).toBe(first);
  });

  it('refuses a chunk whose bytes changed with E_CHUNK_CHECKSUM and 1007, discarding the transfer', () => {
    const { transport, got, closes, sent } = recordingTransport();
    const [first] = chunkMessages(gradResult(40_000), MIN_CHUNK_SIZE_BYTES);
    const bad = first.map((f, i) => (i === 2 ? Uint8Array.from(f) : f));
    bad[2][100] ^= 1;
    feed(transport, bad);
    expect(got).toEqual([]);
    expect(closes).toEqual([1007]);
    expect(errorCodeSent(sent)).toBe(ErrorCode.CHUNK_CHECKSUM);
    expect(transport.reassemblyState.transfers).toBe(0);
  });

  it('takes a trailer split across pieces, or arriving with the last data bytes', () => {
    const msg = gradResult(40_000);
    for (const split of ['trailer in two', 'data and trailer in one'] as const) {
      const { transport, got, closes } = recordingTransport();
      for (const fragments of chunkMessages(msg, MIN_CHUNK_SIZE_BYTES)) {
        const trailer = fragments.at(-1)!;
        const lastData = fragments.at(-2)!;
        const pieces =
          split === 'trailer in two'
            ? [...fragments.slice(0, -1), trailer.subarray(0, 4), trailer.subarray(4)]
            : [...fragments.slice(0, -2), new Uint8Array(Buffer.concat([lastData, trailer]))];
        feed(transport, pieces);
      }
      expect(closes).toEqual([]);
      expect(got).toHaveLength(1);
    }
  });

  it('refuses a chunk whose trailer carries another CRC-32 (E_CHUNK_CHECKSUM) or is not a crc32 trailer (E_PROTOCOL_MALFORMED)', () => {
    const cases = [
      { change: (t: Uint8Array) => (t[t.length - 1] ^= 1), code: ErrorCode.CHUNK_CHECKSUM },
      { change: (t: Uint8Array) => (t[1] = 0x78), code: ErrorCode.PROTOCOL_MALFORMED }, // key 'xrc32'
    ];
    for (const { change, code } of cases) {
      const { transport, got, closes, sent } = recordingTransport();
      const [first] = chunkMessages(gradResult(40_000), MIN_CHUNK_SIZE_BYTES);
      const trailer = Uint8Array.from(first.at(-1)!);
      change(trailer);
      feed(transport, [...first.slice(0, -1), trailer]);
      expect(got).toEqual([]);
      expect(closes).toEqual([1007]);
      expect(errorCodeSent(sent)).toBe(code);
      expect(transport.reassemblyState.transfers).toBe(0);
    }
  });

  it('still takes chunks laid out as the previous build sent them (crc32 before data), through the general decode', () => {
    const msg = gradResult(40_000);
    const frame = new Uint8Array(Buffer.concat(encodeMessageSegments(msg)));
    const { transport, got, closes } = recordingTransport();
    const count = Math.ceil(frame.byteLength / MIN_CHUNK_SIZE_BYTES);
    for (let i = 0; i < count; i++) {
      const data = frame.subarray(i * MIN_CHUNK_SIZE_BYTES, Math.min(frame.byteLength, (i + 1) * MIN_CHUNK_SIZE_BYTES));
      const chunk = { v: 1, kind: 'chunk', transferId: 0, index: i, count, totalBytes: frame.byteLength, crc32: crc32(data), data };
      const bytes = encodeMessage(chunk as unknown as Message);
      const headerBytes = bytes.byteLength - data.byteLength;
      const sink = feed(transport, [bytes.subarray(0, headerBytes), bytes.subarray(headerBytes)]);
      expect(sink.isStreamed).toBe(false);
    }
    expect(closes).toEqual([]);
    expect(got).toHaveLength(1);
    expect(sameBytes(floatBytesOf(got[0]), floatBytesOf(msg))).toBe(true);
  });

  it('refuses fragments that carry more or fewer bytes than the header declares (1007, E_PROTOCOL_MALFORMED)', () => {
    for (const change of ['more', 'fewer'] as const) {
      const { transport, closes, sent } = recordingTransport();
      const [first] = chunkMessages(gradResult(40_000), MIN_CHUNK_SIZE_BYTES);
      const fragments = change === 'more' ? [...first, Uint8Array.of(1, 2, 3)] : first.slice(0, -1);
      feed(transport, fragments);
      expect(closes).toEqual([1007]);
      expect(errorCodeSent(sent)).toBe(ErrorCode.PROTOCOL_MALFORMED);
      expect(transport.reassemblyState.transfers).toBe(0);
    }
  });

  it('refuses a transfer over the reassembly cap when the message ends (1008, E_TRANSFER_LIMIT), reserving nothing', () => {
    const { transport, closes, sent } = recordingTransport(100_000);
    const [first] = chunkMessages(gradResult(40_000), MIN_CHUNK_SIZE_BYTES); // 160 KB in all
    const sink = transport.createFragmentSink(() => true);
    for (const f of first) sink.push(f);
    expect(transport.reassemblyState).toMatchObject({ transfers: 0, bytes: 0 });
    expect(closes).toEqual([]);
    transport.handleFragmentSink(sink, true);
    expect(closes).toEqual([1008]);
    expect(errorCodeSent(sent)).toBe(ErrorCode.TRANSFER_LIMIT);
  });

  it('collects other messages as ws would: not a chunk header, text, one fragment; copies are plain arrays', () => {
    const { transport } = recordingTransport();
    const junk = Uint8Array.from([0x81, 0xa1, 0x78, 0xc6, 0, 0, 0, 3]);
    const notChunk = transport.createFragmentSink(() => true);
    notChunk.push(junk, Uint8Array.of(1, 2, 3));
    expect(notChunk.isStreamed).toBe(false);
    expect(notChunk).toHaveLength(2);
    const [first] = chunkMessages(gradResult(40_000), MIN_CHUNK_SIZE_BYTES);
    const text = transport.createFragmentSink(() => false);
    for (const f of first) text.push(f);
    expect(text.isStreamed).toBe(false);
    expect(text).toHaveLength(first.length);
    const single = transport.createFragmentSink(() => true);
    single.push(first[0]);
    expect(single.isStreamed).toBe(false);
    expect(single).toHaveLength(1);
    const copy = text.slice(1);
    expect(copy).not.toBeInstanceOf(FragmentSink);
    expect(copy).toHaveLength(first.length - 1);
    expect(transport.reassemblyState.transfers).toBe(0);
  });
});

/** A coordinator server on loopback, chunking at 64 KiB, that echoes every message; its connections in `conns`. */
async function echoServer(): Promise<{ srv: WsServer; conns: SocketTransport[] }> {
  const conns: SocketTransport[] = [];
  const srv = await startWsServer({
    port: 0,
    chunkSizeBytes: MIN_CHUNK_SIZE_BYTES,
    maxPayloadBytes: MAX_CHUNK_SIZE_BYTES,
    onConnection: (conn) => {
      conns.push(conn as unknown as SocketTransport);
      conn.onMessage((msg) => conn.send(msg));
    },
  });
  servers.push(srv);
  return { srv, conns };
}

describe('FragmentSink over WebSockets', () => {
  it('with a worker that masks its frames: the coordinator takes them through ws (unmasked), the worker lands reads in place', async () => {
    const { srv, conns } = await echoServer();
    const client = (await connectWs(srv.url, { pingTimeoutMs: 0, maskFrames: true })) as unknown as SocketTransport;
    try {
      client.setChunkSizeBytes(MIN_CHUNK_SIZE_BYTES);
      const msg = gradResult(300_000, 5); // 1.2 MB: 19 chunks of 64 KiB
      const back = new Promise<Message>((resolve) => client.onMessage(resolve));
      await client.send(msg);
      expect(sameBytes(floatBytesOf(await back), floatBytesOf(msg))).toBe(true);
      expect(conns[0].streamedChunks).toBe(19);
      expect(conns[0].bytesLandedInPlace).toBe(0);
      expect(client.bytesLandedInPlace).toBeGreaterThan(0);
    } finally {
      client.close();
    }
  });

  it('streams every chunk on both sides of a real connection and round-trips bit-exact', async () => {
    const { srv, conns } = await echoServer();
    const client = (await connectWs(srv.url, { pingTimeoutMs: 0 })) as unknown as SocketTransport;
    try {
      client.setChunkSizeBytes(MIN_CHUNK_SIZE_BYTES);
      const msg = gradResult(100_000); // 400 KB: 7 chunks of 64 KiB
      const back = new Promise<Message>((resolve) => client.onMessage(resolve));
      await client.send(msg);
      const got = await back;
      const a = blobToFloat32((got as Extract<Message, { kind: 'grad_result' }>).grads[0]);
      const b = blobToFloat32((msg as Extract<Message, { kind: 'grad_result' }>).grads[0]);
      expect(sameBytes(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), new Uint8Array(b.buffer))).toBe(true);
      expect(conns[0].streamedChunks).toBe(7);
      expect(client.streamedChunks).toBe(7);
      // Every 64 KiB chunk's data is one fragment; after the read that holds its start, reads land in place.
      expect(conns[0].bytesLandedInPlace).toBeGreaterThan(0);
      expect(client.bytesLandedInPlace).toBeGreaterThan(0);
    } finally {
      client.close();
    }
  });
});
