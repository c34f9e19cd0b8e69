import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, InputFileError } from '../../../../shared/errors.js';
import { encodeGguf, ggufArray, ggufTyped, writeGguf } from '../../../../shared/formats/gguf-writer.js';
import { GgmlType, GgufValueType, parseGguf, readGguf } from '../../../../shared/formats/gguf.js';

const STORIES = '/work/shared/models/stories260K.gguf';
const hasStories = existsSync(STORIES);
if (!hasStories) console.warn(`SKIPPING real-checkpoint GGUF tests: ${STORIES} is absent`);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swarmtune-gguf-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Expects `fn` to reject with InputFileError E_MODEL_FILE whose message contains every `parts`. */
async function expectModelFileError(fn: () => Promise<unknown> | unknown, ...parts: string[]): Promise<void> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(InputFileError);
  expect((caught as InputFileError).code).toBe(ErrorCode.MODEL_FILE);
  for (const p of parts) expect((caught as Error).message).toContain(p);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** Little-endian u64 as hex. */
function u64(n: number): string {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b.toString('hex');
}
function u32(n: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b.toString('hex');
}
function str(s: string): string {
  return u64(Buffer.byteLength(s)) + Buffer.from(s).toString('hex');
}

describe('encodeGguf byte layout', () => {
  it('writes magic, version 3, counts, one u32 key/value, one tensor info, padding and data (golden hex)', () => {
    const bytes = encodeGguf({
      metadata: { a: 7 },
      tensors: [{ name: 'w', shape: [1, 2], data: Float32Array.from([1, -2]) }],
    });
    const header =
      '47475546' + // "GGUF"
      u32(3) +
      u64(1) + // tensors
      u64(1) + // metadata
      str('a') +
      u32(GgufValueType.UINT32) +
      u32(7) +
      str('w') +
      u32(2) + // n_dims
      u64(2) + // ne[0] = in (the last PyTorch dim)
      u64(1) + // ne[1] = out
      u32(GgmlType.F32) +
      u64(0);
    const headerBytes = header.length / 2;
    const pad = '00'.repeat(Math.ceil(headerBytes / 32) * 32 - headerBytes);
    const data = '0000803f' + '000000c0' + '00'.repeat(24);
    expect(hex(bytes)).toBe(header + pad + data);
  });
});

describe('readGguf metadata', () => {
  it('round-trips every value type, arrays (nested too), unicode strings and 64-bit integers', async () => {
    const path = join(dir, 'meta.gguf');
    await writeGguf(path, {
      metadata: {
        u8: ggufTyped(GgufValueType.UINT8, 250),
        i8: ggufTyped(GgufValueType.INT8, -100),
        u16: ggufTyped(GgufValueType.UINT16, 65000),
        i16: ggufTyped(GgufValueType.INT16, -32000),
        u32: 4294967295,
        i32: -5,
        f32: 0.5,
        bool: true,
        boolFalse: false,
        str: 'héllo ▁ 日本 🎉',
        empty: '',
        u64: ggufTyped(GgufValueType.UINT64, 2 ** 40),
        u64Big: 18446744073709551615n,
        i64: ggufTyped(GgufValueType.INT64, -(2 ** 40)),
        f64: ggufTyped(GgufValueType.FLOAT64, Math.PI),
        strings: ['a', '', 'ü'],
        ints: [1, -2, 3],
        floats: ggufArray(GgufValueType.FLOAT32, [0, 1.5, -2]),
        nested: ggufArray(GgufValueType.ARRAY, [[1, 2], [3]]),
        emptyArray: ggufArray(GgufValueType.STRING, []),
      },
      tensors: [],
    });
    const f = await readGguf(path);
    expect(f.version).toBe(3);
    expect(f.metadata).toEqual({
      u8: 250,
      i8: -100,
      u16: 65000,
      i16: -32000,
      u32: 4294967295,
      i32: -5,
      f32: 0.5,
      bool: true,
      boolFalse: false,
      str: 'héllo ▁ 日本 🎉',
      empty: '',
      u64: 2 ** 40,
      u64Big: 18446744073709551615n,
      i64: -(2 ** 40),
      f64: Math.PI,
      strings: ['a', '', 'ü'],
      ints: [1, -2, 3],
      floats: [0, 1.5, -2],
      nested: [[1, 2], [3]],
      emptyArray: [],
    });
    expect(f.metadataTypes.u32).toBe(GgufValueType.UINT32);
    expect(f.metadataTypes.f64).toBe(GgufValueType.FLOAT64);
    expect(f.metadataTypes.strings).toBe(GgufValueType.ARRAY);
    expect(f.metadataArrayTypes.floats).toBe(GgufValueType.FLOAT32);
    expect(f.metadataArrayTypes.ints).toBe(GgufValueType.INT32);
    expect(f.tensors).toEqual([]);
  });

  it('round-trips random string and int32 arrays (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'grapheme' })), fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })), (ss, ns) => {
        const bytes = encodeGguf({
          metadata: { s: ggufArray(GgufValueType.STRING, ss), n: ggufArray(GgufValueType.INT32, ns) },
          tensors: [],
        });
        const f = parseGguf(bytes, 'mem');
        expect(f.metadata.s).toEqual(ss);
        expect(f.metadata.n).toEqual(ns);
      }),
      { numRuns: 50 },
    );
  });
});

describe('readGguf tensors', () => {
  const a = Float32Array.from({ length: 3 * 64 }, (_, i) => Math.sin(i) * (1 + (i % 7)));
  const b = Float32Array.from({ length: 5 }, (_, i) => i - 2.25);

  it('reverses ne into PyTorch order and keeps row-major data untouched (F32 exact)', async () => {
    const path = join(dir, 'f32.gguf');
    await writeGguf(path, { metadata: {}, tensors: [{ name: 'a', shape: [3, 64], data: a }, { name: 'b', shape: [5], data: b }] });
    const f = await readGguf(path);
    expect(f.tensors.map((t) => [t.name, t.shape, t.fileType])).toEqual([
      ['a', [3, 64], GgmlType.F32],
      ['b', [5], GgmlType.F32],
    ]);
    expect(f.tensors[0].data).toEqual(a);
    expect(f.tensors[1].data).toEqual(b);
    expect(f.alignment).toBe(32);
    expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('decodes F16 to within fp16 rounding and Q8_0 to within half a quantisation step per block', async () => {
    const path = join(dir, 'quant.gguf');
    await writeGguf(path, {
      metadata: {},
      tensors: [
        { name: 'h', shape: [3, 64], data: a },
        { name: 'q', shape: [3, 64], data: a },
      ],
      tensorTypes: { h: 'F16', q: 'Q8_0' },
    });
    const f = await readGguf(path);
    const [h, q] = f.tensors;
    expect(h.fileType).toBe(GgmlType.F16);
    expect(q.fileType).toBe(GgmlType.Q8_0);
    for (let i = 0; i < a.length; i++) expect(Math.abs(h.data[i] - a[i])).toBeLessThanOrEqual(Math.abs(a[i]) * 2 ** -11 + 1e-7);
    for (let blk = 0; blk < a.length / 32; blk++) {
      const block = a.subarray(blk * 32, blk * 32 + 32);
      const amax = Math.max(...block.map(Math.abs));
      const step = amax / 127;
      for (let j = 0; j < 32; j++) {
        // half a step from rounding q, plus the fp16 rounding of the scale times |q| <= 127
        expect(Math.abs(q.data[blk * 32 + j] - block[j])).toBeLessThanOrEqual(step / 2 + amax * 2 ** -11 + 1e-7);
      }
    }
    // Q8_0 is lossy but not trivially so: some values differ, all are finite.
    expect(q.data.some((v, i) => v !== a[i])).toBe(true);
  });

  it('honours general.alignment and reads GGUF v2', async () => {
    const path = join(dir, 'v2-align.gguf');
    await writeGguf(path, {
      metadata: { 'general.alignment': 64 },
      tensors: [{ name: 'b', shape: [5], data: b }, { name: 'a', shape: [3, 64], data: a }],
      version: 2,
    });
    const f = await readGguf(path);
    expect(f.version).toBe(2);
    expect(f.alignment).toBe(64);
    expect(f.tensors[1].data).toEqual(a);
    expect(f.numBytes % 64).toBe(0);
  });
});

describe('readGguf errors (InputFileError E_MODEL_FILE naming the path and the problem)', () => {
  const good = (): Uint8Array =>
    encodeGguf({
      metadata: { 'general.name': 'x' },
      tensors: [{ name: 'blk.0.w', shape: [2, 32], data: new Float32Array(64).fill(1) }],
    });

  it('missing file', async () => {
    await expectModelFileError(() => readGguf(join(dir, 'nope.gguf')), 'nope.gguf', 'not found');
  });

  it('bad magic', async () => {
    const path = join(dir, 'magic.gguf');
    const bytes = good();
    bytes[0] = 0x42;
    await writeFile(path, bytes);
    await expectModelFileError(() => readGguf(path), path, 'bad magic');
  });

  it('empty file', async () => {
    const path = join(dir, 'empty.gguf');
    await writeFile(path, new Uint8Array(0));
    await expectModelFileError(() => readGguf(path), path, 'bad magic');
  });

  it('unsupported versions 1 and 4', () => {
    for (const v of [1, 4]) {
      const bytes = good();
      new DataView(bytes.buffer, bytes.byteOffset).setUint32(4, v, true);
      expect(() => parseGguf(bytes, 'v.gguf')).toThrow(`unsupported GGUF version ${v}`);
    }
  });

  it('truncated header', async () => {
    const path = join(dir, 'trunc-header.gguf');
    await writeFile(path, good().subarray(0, 40));
    await expectModelFileError(() => readGguf(path), path, 'truncated');
  });

  it('tensor data past the end of the file names the tensor', async () => {
    const path = join(dir, 'trunc-data.gguf');
    const bytes = good();
    await writeFile(path, bytes.subarray(0, bytes.byteLength - 10));
    await expectModelFileError(() => readGguf(path), path, 'truncated', 'blk.0.w');
  });

  it('a string length larger than the file', () => {
    const bytes = good();
    // The first key's length is the u64 at byte 24.
    new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(24, 1n << 40n, true);
    expect(() => parseGguf(bytes, 'len.gguf')).toThrow(/len\.gguf: .*bad string length 1099511627776 for metadata key #0/);
  });

  it('an unsupported tensor type names the tensor and the type', () => {
    const hexHeader =
      '47475546' + u32(3) + u64(1) + u64(0) + str('blk.0.attn_q.weight') + u32(1) + u64(32) + u32(GgmlType.Q4_K) + u64(0);
    const header = Buffer.from(hexHeader, 'hex');
    const bytes = new Uint8Array(Math.ceil(header.byteLength / 32) * 32 + 256);
    bytes.set(header);
    expect(() => parseGguf(bytes, 'q4.gguf')).toThrow(InputFileError);
    expect(() => parseGguf(bytes, 'q4.gguf')).toThrow(/blk\.0\.attn_q\.weight: ggml type Q4_K is not supported/);
  });

  it('an unknown metadata value type', () => {
    const bytes = Buffer.from('47475546' + u32(3) + u64(0) + u64(1) + str('k') + u32(99), 'hex');
    expect(() => parseGguf(bytes, 'type.gguf')).toThrow(/metadata k: unknown value type 99/);
  });
});

describe.skipIf(!hasStories)('readGguf on stories260K.gguf', () => {
  it('reads v3, 48 F32 tensors, the llama metadata and the documented sha256', async () => {
    const f = await readGguf(STORIES);
    expect(f.version).toBe(3);
    expect(f.sha256).toBe('270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d');
    expect(f.numBytes).toBe(1185376);
    expect(f.tensors).toHaveLength(48);
    expect(f.tensors.every((t) => t.fileType === GgmlType.F32)).toBe(true);
    expect(f.metadata['general.architecture']).toBe('llama');
    expect(f.metadata['llama.embedding_length']).toBe(64);
    expect(f.metadata['llama.attention.head_count_kv']).toBe(4);
    expect((f.metadata['tokenizer.ggml.tokens'] as string[]).length).toBe(512);
    const byName = new Map(f.tensors.map((t) => [t.name, t]));
    expect(byName.get('token_embd.weight')!.shape).toEqual([512, 64]);
    expect(byName.get('blk.0.attn_k.weight')!.shape).toEqual([32, 64]);
    expect(byName.get('blk.4.ffn_down.weight')!.shape).toEqual([64, 172]);
    expect(byName.get('blk.4.ffn_up.weight')!.shape).toEqual([172, 64]);
    expect(byName.get('output.weight')!.data).toEqual(byName.get('token_embd.weight')!.data);
  });
});
