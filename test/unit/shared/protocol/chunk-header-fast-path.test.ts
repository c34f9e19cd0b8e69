/**
 * The fast read of chunk frames in `parseFragmentedChunk`: a header laid out exactly as `encodeChunkHeader`
 * writes it, and a trailer as `encodeChunkTrailer` writes it, are read without a msgpack decode and must give
 * what the general decode of the joined frame gives; anything else (values the schema refuses, lengths that do
 * not add up) is left to the caller, which joins the fragments and decodes them the general way, with its errors.
 */
import { crc32 } from '../../../../shared/checksum.js';
import { describe, expect, it } from 'vitest';
import { decodeFrame } from '../../../../shared/codec.js';
import { ErrorCode } from '../../../../shared/errors.js';
import { encodeChunkHeader, encodeChunkTrailer, parseChunkFrame, parseFragmentedChunk } from '../../../../shared/protocol/chunking.js';

/** The general path: the joined frame, decoded and checked by the schema. */
function generalFrame(fragments: readonly Uint8Array[]): ReturnType<typeof parseChunkFrame> {
  return parseChunkFrame(decodeFrame(new Uint8Array(Buffer.concat(fragments))));
}

describe('parseFragmentedChunk fast path', () => {
  const data = [new Uint8Array(3000).fill(7), new Uint8Array(1000).fill(9)];
  const crc = crc32(data[1], crc32(data[0]));
  const cases: [number, number, number, number][] = [
    [0, 0, 1, 4000],
    [5, 2, 3, 12_000],
    [2 ** 32 + 3, 2 ** 33, 2 ** 33 + 1, 2 ** 40], // float64 numbers: still an exact layout
  ];
  it.each(cases)('reads transfer %d chunk %d/%d (%d bytes) as the general decode does', (transferId, index, count, totalBytes) => {
    const fragments = [encodeChunkHeader(transferId, index, count, totalBytes, 4000), ...data, encodeChunkTrailer(crc)];
    const got = parseFragmentedChunk(fragments);
    expect(got).toBeDefined();
    const { data: whole, ...general } = generalFrame(fragments);
    expect(got!.head).toEqual({ ...general, data: new Uint8Array(0) });
    expect(got!.head.crc32).toBe(crc);
    expect(new Uint8Array(Buffer.concat(got!.parts))).toEqual(whole);
  });

  it('leaves to the general path what the schema refuses (count 0, wrong version), which refuses it there', () => {
    const zeroCount = [encodeChunkHeader(1, 0, 0, 4000, 4000), ...data, encodeChunkTrailer(crc)];
    const badVersion = [new Uint8Array(encodeChunkHeader(1, 0, 1, 4000, 4000)), ...data, encodeChunkTrailer(crc)];
    badVersion[0][3] = 9; // the value of `v`
    for (const fragments of [zeroCount, badVersion]) {
      expect(parseFragmentedChunk(fragments)).toBeUndefined();
      expect(() => generalFrame(fragments)).toThrow(expect.objectContaining({ code: ErrorCode.PROTOCOL_MALFORMED }));
    }
  });

  it('leaves to the caller a declared data length that does not match the fragments, or a frame with no trailer', () => {
    expect(parseFragmentedChunk([encodeChunkHeader(1, 0, 1, 4000, 3999), ...data, encodeChunkTrailer(crc)])).toBeUndefined();
    expect(parseFragmentedChunk([encodeChunkHeader(1, 0, 1, 4000, 4000), ...data])).toBeUndefined();
  });

  it('reads a trailer split across fragments, or sharing one with the last data bytes', () => {
    const trailer = encodeChunkTrailer(crc);
    const header = encodeChunkHeader(1, 0, 1, 4000, 4000);
    for (const fragments of [
      [header, ...data, trailer.subarray(0, 3), trailer.subarray(3)],
      [header, data[0], new Uint8Array(Buffer.concat([data[1], trailer]))],
    ]) {
      const got = parseFragmentedChunk(fragments);
      expect(got?.head.crc32).toBe(crc);
      expect(new Uint8Array(Buffer.concat(got!.parts))).toEqual(new Uint8Array(Buffer.concat(data)));
    }
  });
});
