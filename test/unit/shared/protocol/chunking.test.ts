import { crc32 } from '../../../../shared/checksum.js';
import { describe, expect, it } from 'vitest';
import { decodeFrame } from '../../../../shared/codec.js';
import { ErrorCode } from '../../../../shared/errors.js';
import {
  ChunkReassembler,
  encodeChunkFrame,
  isChunkLike,
  parseChunkFrame,
  type ChunkFrame,
} from '../../../../shared/protocol/chunking.js';
import { mulberry32 } from '../../../../shared/random.js';

function randomBytes(n: number, seed: number): Uint8Array {
  const rng = mulberry32(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(rng() * 256));
}

/** The chunk frames of `payload`, decoded as a receiver would see them. */
function chunksOf(payload: Uint8Array, chunkSize: number, transferId: number): ChunkFrame[] {
  const count = Math.max(1, Math.ceil(payload.byteLength / chunkSize));
  return Array.from({ length: count }, (_, i) => {
    const bytes = encodeChunkFrame(transferId, i, count, payload.byteLength, payload.subarray(i * chunkSize, (i + 1) * chunkSize));
    const value = decodeFrame(bytes);
    expect(isChunkLike(value)).toBe(true);
    return parseChunkFrame(value);
  });
}

describe('chunk frames', () => {
  it('encode as valid msgpack that decodes back to the header and a view of the data', () => {
    const data = randomBytes(1000, 1);
    const frame = chunksOf(data, 4096, 7)[0];
    expect(frame).toMatchObject({ v: 1, kind: 'chunk', transferId: 7, index: 0, count: 1, totalBytes: 1000, crc32: crc32(data) });
    expect(frame.data).toEqual(data);
  });

  it('carry transfer ids and sizes above 2^32 as float64', () => {
    const frame = parseChunkFrame(decodeFrame(encodeChunkFrame(2 ** 40, 0, 1, 2 ** 33, new Uint8Array(4))));
    expect(frame.transferId).toBe(2 ** 40);
    expect(frame.totalBytes).toBe(2 ** 33);
  });

  it('are refused when a field is missing or ill-typed', () => {
    const value = { ...(decodeFrame(encodeChunkFrame(1, 0, 1, 4, new Uint8Array(4))) as object), count: 0 };
    expect(() => parseChunkFrame(value)).toThrow(expect.objectContaining({ code: ErrorCode.PROTOCOL_MALFORMED }));
  });
});

describe('ChunkReassembler', () => {
  it('reassembles a payload from many chunks and releases its reservation', () => {
    const payload = randomBytes(100_003, 2);
    const r = new ChunkReassembler();
    const chunks = chunksOf(payload, 4096, 1);
    for (const c of chunks.slice(0, -1)) expect(r.accept(c)).toBeUndefined();
    expect(r.pendingBytes).toBe(payload.byteLength);
    expect(r.accept(chunks.at(-1)!)).toEqual(payload);
    expect(r.pendingTransfers).toBe(0);
    expect(r.pendingBytes).toBe(0);
  });

  it('interleaves concurrent transfers', () => {
    const a = randomBytes(10_000, 3);
    const b = randomBytes(7_000, 4);
    const r = new ChunkReassembler();
    const ca = chunksOf(a, 1000, 1);
    const cb = chunksOf(b, 1000, 2);
    const done: Uint8Array[] = [];
    for (let i = 0; i < Math.max(ca.length, cb.length); i++) {
      for (const c of [ca[i], cb[i]]) {
        if (!c) continue;
        const out = r.accept(c);
        if (out) done.push(out);
      }
    }
    expect(done).toEqual([b, a]);
  });

  it('refuses a chunk whose CRC-32 does not match and discards the transfer', () => {
    const r = new ChunkReassembler();
    const chunks = chunksOf(randomBytes(3000, 5), 1000, 9);
    r.accept(chunks[0]);
    const bad = { ...chunks[1], crc32: (chunks[1].crc32 ^ 1) >>> 0 };
    expect(() => r.accept(bad)).toThrow(expect.objectContaining({ code: ErrorCode.CHUNK_CHECKSUM, closeCode: 1007 }));
    expect(r.pendingTransfers).toBe(0);
    expect(r.pendingBytes).toBe(0);
  });

  it('refuses chunks out of order, of unknown transfers, and sizes that do not add up', () => {
    const chunks = chunksOf(randomBytes(3000, 6), 1000, 1);
    expect(() => new ChunkReassembler().accept(chunks[1])).toThrow(expect.objectContaining({ code: ErrorCode.PROTOCOL_MALFORMED }));
    const r = new ChunkReassembler();
    r.accept(chunks[0]);
    expect(() => r.accept(chunks[2])).toThrow(expect.objectContaining({ code: ErrorCode.PROTOCOL_MALFORMED }));
    expect(r.pendingBytes).toBe(0);
    const short = chunksOf(randomBytes(10, 7), 1000, 2)[0];
    expect(() => new ChunkReassembler().accept({ ...short, totalBytes: 11 })).toThrow(expect.objectContaining({ code: ErrorCode.PROTOCOL_MALFORMED }));
  });

  it('caps concurrent transfers and reserved bytes (1008)', () => {
    const r = new ChunkReassembler({ maxConcurrentTransfers: 2, maxReassemblyBytes: 5000 });
    r.accept(chunksOf(randomBytes(2000, 8), 1000, 1)[0]);
    r.accept(chunksOf(randomBytes(2000, 9), 1000, 2)[0]);
    expect(() => r.accept(chunksOf(randomBytes(100, 10), 50, 3)[0])).toThrow(
      expect.objectContaining({ code: ErrorCode.TRANSFER_LIMIT, closeCode: 1008 }),
    );
    const small = new ChunkReassembler({ maxReassemblyBytes: 5000 });
    small.accept(chunksOf(randomBytes(4000, 11), 1000, 1)[0]);
    expect(() => small.accept(chunksOf(randomBytes(2000, 12), 1000, 2)[0])).toThrow(
      expect.objectContaining({ code: ErrorCode.TRANSFER_LIMIT }),
    );
    expect(small.pendingBytes).toBe(4000);
    small.discardAll();
    expect(small.pendingBytes).toBe(0);
  });
});
