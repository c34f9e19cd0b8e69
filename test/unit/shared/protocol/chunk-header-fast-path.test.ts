/**
 * The fast read of chunk headers in `parseFragmentedChunk`: a header laid out exactly as `encodeChunkHeader`
 * writes it is read without a msgpack decode, and must give what the general decode gives; anything else
 * (float64 numbers, values the schema refuses) goes the general way, with the same errors.
 */
import { describe, expect, it } from 'vitest';
import { decodeFrame } from '../../../../shared/codec.js';
import { ErrorCode } from '../../../../shared/errors.js';
import { encodeChunkHeader, parseChunkFrame, parseFragmentedChunk } from '../../../../shared/protocol/chunking.js';

/** The general path: the header alone, its data declared empty, decoded and checked by the schema. */
function generalHead(header: Uint8Array): unknown {
  const probe = new Uint8Array(header);
  probe.fill(0, probe.length - 4);
  return parseChunkFrame(decodeFrame(probe));
}

describe('parseFragmentedChunk fast header path', () => {
  const data = [new Uint8Array(3000).fill(7), new Uint8Array(1000).fill(9)];
  const cases: [number, number, number, number, number][] = [
    [0, 0, 1, 4000, 0],
    [5, 2, 3, 12_000, 0xffffffff],
    [2 ** 32 + 3, 2 ** 33, 2 ** 33 + 1, 2 ** 40, 123456], // float64 numbers: still an exact layout
  ];
  it.each(cases)('reads transfer %d chunk %d/%d (%d bytes) as the general decode does', (transferId, index, count, totalBytes, crc) => {
    const header = encodeChunkHeader(transferId, index, count, totalBytes, crc, 4000);
    const got = parseFragmentedChunk([header, ...data], decodeFrame);
    expect(got).toBeDefined();
    expect(got!.head).toEqual(generalHead(header));
    expect(got!.parts).toEqual(data);
  });

  it('refuses, through the general path, what the schema refuses (count 0, wrong version)', () => {
    const zeroCount = encodeChunkHeader(1, 0, 0, 4000, 1, 4000);
    expect(() => parseFragmentedChunk([zeroCount, ...data], decodeFrame)).toThrow(expect.objectContaining({ code: ErrorCode.PROTOCOL_MALFORMED }));
    const badVersion = new Uint8Array(encodeChunkHeader(1, 0, 1, 4000, 1, 4000));
    badVersion[3] = 9; // the value of `v`
    expect(() => parseFragmentedChunk([badVersion, ...data], decodeFrame)).toThrow(expect.objectContaining({ code: ErrorCode.PROTOCOL_MALFORMED }));
  });

  it('leaves a header whose declared data length does not match the fragments to the caller', () => {
    const header = encodeChunkHeader(1, 0, 1, 4000, 1, 3999);
    expect(parseFragmentedChunk([header, ...data], decodeFrame)).toBeUndefined();
  });
});
