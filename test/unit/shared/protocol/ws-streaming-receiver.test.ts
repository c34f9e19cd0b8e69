/**
 * streamContinuationFrames on ws's real Receiver: fed WebSocket frames in socket reads of random sizes, it
 * hands continuation frames over as views of those reads (no copy), bit-exact, unmasked when the peer masks,
 * keeps ws's own handling for first frames, single-frame messages, control frames and text, keeps ws's
 * fragment limit, and leaves a receiver it does not recognise untouched.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { streamContinuationFrames } from '../../../../shared/protocol/ws-streaming-receiver.js';

interface WsReceiver {
  write(chunk: Buffer): boolean;
  on(event: 'message', listener: (data: Buffer[], isBinary: boolean) => void): void;
  on(event: 'ping', listener: (data: Buffer) => void): void;
  on(event: 'error', listener: (err: Error & { code?: string }) => void): void;
}
const Receiver = (createRequire(import.meta.url)('ws') as { Receiver: new (options: object) => WsReceiver }).Receiver;

/** One WebSocket frame: `opcode` 0 (continuation), 1 (text), 2 (binary) or 9 (ping); `mask` makes it a client's frame. */
function frame(opcode: number, fin: boolean, payload: Uint8Array, mask?: Uint8Array): Buffer {
  const n = payload.byteLength;
  const lengthBytes = n < 126 ? 0 : n < 0x10000 ? 2 : 8;
  const head = Buffer.alloc(2 + lengthBytes + (mask ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = (mask ? 0x80 : 0) | (n < 126 ? n : n < 0x10000 ? 126 : 127);
  if (lengthBytes === 2) head.writeUInt16BE(n, 2);
  if (lengthBytes === 8) head.writeBigUInt64BE(BigInt(n), 2);
  const body = Buffer.from(payload);
  if (mask) {
    head.set(mask, 2 + lengthBytes);
    for (let i = 0; i < n; i++) body[i] ^= mask[i & 3];
  }
  return Buffer.concat([head, body]);
}

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 131 + seed * 17) & 0xff;
  return out;
}

/** Cuts `stream` into socket reads of the given sizes (cycled), each in memory of its own as a socket read is. */
function reads(stream: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < stream.length; i++) {
    const n = Math.min(sizes[i % sizes.length], stream.length - at);
    out.push(Buffer.from(stream.subarray(at, at + n)));
    at += n;
  }
  return out;
}

interface Received {
  messages: { fragments: Buffer[]; isBinary: boolean }[];
  pings: number;
  errors: (Error & { code?: string })[];
  streamed: boolean;
}

function receive(chunks: readonly Buffer[], options: { isServer: boolean; maxFragments?: number }): Received {
  const receiver = new Receiver({ binaryType: 'fragments', isServer: options.isServer, maxFragments: options.maxFragments ?? 0 });
  const got: Received = { messages: [], pings: 0, errors: [], streamed: false };
  got.streamed = streamContinuationFrames(receiver, (list) => Array.isArray(list) && list.length > 0) !== undefined;
  receiver.on('message', (fragments, isBinary) => got.messages.push({ fragments: Array.isArray(fragments) ? fragments : [fragments], isBinary }));
  receiver.on('ping', () => void got.pings++);
  receiver.on('error', (err) => void got.errors.push(err));
  for (const chunk of chunks) receiver.write(chunk);
  return got;
}

/** ws reports a frame error through its stream's callback: the 'error' event comes on a later tick. */
const nextTick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const MASK = Uint8Array.of(0x37, 0xfa, 0x21, 0x3d);

describe('streamContinuationFrames', () => {
  it('hands continuation frames over as views of the socket reads, bit-exact, whatever the read sizes and masking', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1_000, max: 70_000 })), { minLength: 1, maxLength: 6 }),
        fc.constantFrom<'client' | 'server-zero-mask' | 'server-masked'>('client', 'server-zero-mask', 'server-masked'),
        fc.array(fc.integer({ min: 0, max: 30_000 }), { minLength: 1, maxLength: 4 }),
        (readSizes, side, continuationSizes) => {
          const mask = side === 'client' ? undefined : side === 'server-zero-mask' ? new Uint8Array(4) : MASK;
          const head = bytes(40, 1);
          const parts = continuationSizes.map((n, i) => bytes(n, i + 2));
          const single = bytes(300, 9);
          const text = Buffer.from('plain text');
          const stream = Buffer.concat([
            frame(2, false, head, mask),
            ...parts.map((p, i) => frame(0, i === parts.length - 1, p, mask)),
            frame(9, true, Uint8Array.of(1), mask),
            frame(2, true, single, mask),
            frame(1, true, text, mask),
          ]);
          const chunks = reads(stream, readSizes);
          const got = receive(chunks, { isServer: side !== 'client' });
          expect(got.streamed).toBe(true);
          expect(got.errors).toEqual([]);
          expect(got.pings).toBe(1);
          expect(got.messages.map((m) => m.isBinary)).toEqual([true, true, false]);
          const [fragmented, whole, plain] = got.messages;
          expect(Buffer.concat(fragmented.fragments).equals(Buffer.concat([head, ...parts]))).toBe(true);
          // The first fragment comes whole; the rest are views of the reads (no copy made by ws).
          expect(fragmented.fragments[0].equals(Buffer.from(head))).toBe(true);
          // A set: with reads of a few bytes there are tens of thousands of pieces and reads (a scan per piece took minutes).
          const readMemory = new Set(chunks.map((c) => c.buffer));
          for (const piece of fragmented.fragments.slice(1)) expect(readMemory.has(piece.buffer)).toBe(true);
          expect(Buffer.concat(whole.fragments).equals(Buffer.from(single))).toBe(true);
          expect(Buffer.concat(plain.fragments).toString()).toBe('plain text');
        },
      ),
      { numRuns: 40 },
    );
  });

  it('streams a large continuation frame in as many pieces as the reads that carry it', () => {
    const data = bytes(1_000_000, 3);
    const chunks = reads(Buffer.concat([frame(2, false, bytes(10, 4)), frame(0, true, data)]), [65_536]);
    const got = receive(chunks, { isServer: false });
    const pieces = got.messages[0].fragments.slice(1);
    expect(pieces.length).toBeGreaterThanOrEqual(Math.floor(data.byteLength / 65_536));
    expect(Math.max(...pieces.map((p) => p.byteLength))).toBeLessThanOrEqual(65_536);
    expect(Buffer.concat(pieces).equals(Buffer.from(data))).toBe(true);
  });

  it("takes the reads inside a streamed frame past ws's Writable machinery, masked or not", () => {
    for (const mask of [undefined, MASK]) {
      const data = bytes(1_000_000, 5);
      const chunks = reads(Buffer.concat([frame(2, false, bytes(10, 4), mask), frame(0, true, data, mask)]), [65_536]);
      const receiver = new Receiver({ binaryType: 'fragments', isServer: mask !== undefined, maxFragments: 0 }) as WsReceiver & { _write: (...args: unknown[]) => void };
      let throughWs = 0;
      const wsWrite = receiver._write;
      receiver._write = function (this: unknown, ...args: unknown[]) {
        throughWs++;
        return wsWrite.apply(this, args);
      };
      streamContinuationFrames(receiver, (list) => Array.isArray(list) && list.length > 0);
      const messages: Buffer[][] = [];
      receiver.on('message', (fragments) => void messages.push(fragments));
      for (const chunk of chunks) expect(receiver.write(chunk)).toBe(true);
      expect(Buffer.concat(messages[0].slice(1)).equals(Buffer.from(data))).toBe(true);
      // The read with the frame headers, and the one that ends the frame; the 14 between go straight in.
      expect(chunks.length).toBe(16);
      expect(throughWs).toBe(2);
    }
  });

  it("keeps ws's limit on fragments per message, with ws's error", async () => {
    const first = [frame(2, false, bytes(10, 1)), frame(0, false, bytes(100, 2))];
    const stream = Buffer.concat([...first, frame(0, false, bytes(100, 3)), frame(0, true, bytes(100, 4))]);
    const got = receive(reads(stream, [50]), { isServer: false, maxFragments: 3 });
    await nextTick();
    expect(got.messages).toEqual([]);
    expect(got.errors[0]?.code).toBe('WS_ERR_TOO_MANY_BUFFERED_PARTS');
    // Three fragments pass.
    const ok = receive(reads(Buffer.concat([...first, frame(0, true, bytes(100, 4))]), [50]), { isServer: false, maxFragments: 3 });
    await nextTick();
    expect(ok.errors).toEqual([]);
    expect(ok.messages).toHaveLength(1);
  });

  it('leaves anything that is not a ws 8 Receiver untouched', () => {
    const notAReceiver = { _buffers: [], getData: () => undefined };
    expect(streamContinuationFrames(notAReceiver, () => true)).toBeUndefined();
    expect(streamContinuationFrames(undefined, () => true)).toBeUndefined();
  });
});
