/**
 * GGUF (v2 and v3) reader: metadata of every value type, and tensors dequantized to float32.
 *
 * Layout (little-endian): magic "GGUF", version u32, tensor count u64, metadata count u64, the metadata
 * key/value pairs, the tensor infos (name, dims, ggml type, offset), padding to `general.alignment`, then the
 * tensor data, each tensor at its offset from the start of that data section.
 */
import { readModelFile } from './read-model-file.js';
import { createHash } from 'node:crypto';
import { ErrorCode, InputFileError } from '../errors.js';
import { decodeBf16, decodeF16, f16At } from './float16.js';

/** The four bytes every GGUF file starts with, as a little-endian u32 ("GGUF"). */
export const GGUF_MAGIC = 0x46554747;

/** GGUF versions this reader understands. */
export const GGUF_SUPPORTED_VERSIONS: readonly number[] = [2, 3];

/** Tensor data alignment in bytes when `general.alignment` is absent. @default 32 */
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Metadata value types, by their GGUF type id. */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GgufValueType = (typeof GgufValueType)[keyof typeof GgufValueType];

/** ggml tensor types, by id (those with names here are recognised; only F32, F16, BF16 and Q8_0 are decoded). */
export const GgmlType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  BF16: 30,
} as const;
export type GgmlType = (typeof GgmlType)[keyof typeof GgmlType];

/** Values per Q8_0 block (each block: one fp16 scale then 32 int8). */
export const Q8_0_BLOCK_SIZE = 32;
/** Bytes per Q8_0 block. */
export const Q8_0_BLOCK_BYTES = 2 + Q8_0_BLOCK_SIZE;

/**
 * One decoded metadata value. Integers of 64 bits become `number` when they are safe integers, else `bigint`;
 * arrays become plain arrays (of numbers, strings, booleans or nested arrays).
 */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** Metadata key/values as stored in the file, in file order. */
export type GgufMetadata = Record<string, GgufValue>;

/** One tensor read from a GGUF file. */
export interface GgufTensor {
  readonly name: string;
  /** Shape in PyTorch order: GGUF's `ne` reversed (a linear weight with ne=[in, out] is [out, in]). */
  readonly shape: number[];
  /** The ggml type the tensor had in the file (its data here is always float32). */
  readonly fileType: GgmlType;
  /** Row-major values in `shape` order (no transposition: GGUF's ne[0] is the fastest-varying axis). */
  readonly data: Float32Array;
}

/** The contents of a GGUF file. */
export interface GgufFile {
  readonly path: string;
  readonly version: number;
  readonly metadata: GgufMetadata;
  /** The type id each metadata value had in the file (for arrays, `ARRAY`; see `metadataArrayTypes`). */
  readonly metadataTypes: Record<string, GgufValueType>;
  /** The element type of each array-valued metadata key. */
  readonly metadataArrayTypes: Record<string, GgufValueType>;
  /** Tensors in file order. */
  readonly tensors: GgufTensor[];
  readonly alignment: number;
  /** sha256 of the whole file, lower-case hex. */
  readonly sha256: string;
  /** File size in bytes. */
  readonly numBytes: number;
}

/** The name of a ggml type id, or `type <id>` if unknown. */
export function ggmlTypeName(type: number): string {
  for (const [name, id] of Object.entries(GgmlType)) if (id === type) return name;
  return `type ${type}`;
}

/** Sequential little-endian reader over the file bytes that reports truncation as E_MODEL_FILE. */
class Cursor {
  offset = 0;
  private readonly view: DataView;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });

  constructor(
    readonly bytes: Uint8Array,
    private readonly path: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(what: string): never {
    throw new InputFileError(ErrorCode.MODEL_FILE, `GGUF file ${this.path}: ${what} (at byte ${this.offset})`);
  }

  need(numBytes: number, what: string): void {
    if (this.offset + numBytes > this.bytes.byteLength) {
      this.fail(`truncated file: ${what} needs ${numBytes} bytes, ${this.bytes.byteLength - this.offset} left`);
    }
  }

  u8(): number {
    this.need(1, 'u8');
    return this.view.getUint8(this.offset++);
  }
  i8(): number {
    this.need(1, 'i8');
    return this.view.getInt8(this.offset++);
  }
  u16(): number {
    this.need(2, 'u16');
    const v = this.view.getUint16(this.offset, true);
    this.offset += 2;
    return v;
  }
  i16(): number {
    this.need(2, 'i16');
    const v = this.view.getInt16(this.offset, true);
    this.offset += 2;
    return v;
  }
  u32(): number {
    this.need(4, 'u32');
    const v = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return v;
  }
  i32(): number {
    this.need(4, 'i32');
    const v = this.view.getInt32(this.offset, true);
    this.offset += 4;
    return v;
  }
  f32(): number {
    this.need(4, 'f32');
    const v = this.view.getFloat32(this.offset, true);
    this.offset += 4;
    return v;
  }
  f64(): number {
    this.need(8, 'f64');
    const v = this.view.getFloat64(this.offset, true);
    this.offset += 8;
    return v;
  }
  u64(): number | bigint {
    this.need(8, 'u64');
    const v = this.view.getBigUint64(this.offset, true);
    this.offset += 8;
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  i64(): number | bigint {
    this.need(8, 'i64');
    const v = this.view.getBigInt64(this.offset, true);
    this.offset += 8;
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  /** A u64 that must be a count or offset that fits the file. */
  size(what: string): number {
    const v = this.u64();
    if (typeof v === 'bigint') this.fail(`${what} ${v} is too large`);
    return v;
  }
  string(what: string): string {
    const start = this.offset;
    const len = this.u64();
    if (typeof len === 'bigint' || this.offset + len > this.bytes.byteLength) {
      this.offset = start;
      this.fail(`truncated file or bad string length ${len} for ${what} (${this.bytes.byteLength - start - 8} bytes left)`);
    }
    const s = this.bytes.subarray(this.offset, this.offset + len);
    try {
      const text = this.decoder.decode(s);
      this.offset += len;
      return text;
    } catch {
      this.fail(`${what} is not valid UTF-8`);
    }
  }
}

function readScalar(c: Cursor, type: number, what: string): GgufValue {
  switch (type) {
    case GgufValueType.UINT8:
      return c.u8();
    case GgufValueType.INT8:
      return c.i8();
    case GgufValueType.UINT16:
      return c.u16();
    case GgufValueType.INT16:
      return c.i16();
    case GgufValueType.UINT32:
      return c.u32();
    case GgufValueType.INT32:
      return c.i32();
    case GgufValueType.FLOAT32:
      return c.f32();
    case GgufValueType.BOOL: {
      const b = c.u8();
      if (b > 1) c.fail(`metadata ${what}: bool byte ${b} is not 0 or 1`);
      return b === 1;
    }
    case GgufValueType.STRING:
      return c.string(`metadata ${what}`);
    case GgufValueType.UINT64:
      return c.u64();
    case GgufValueType.INT64:
      return c.i64();
    case GgufValueType.FLOAT64:
      return c.f64();
    default:
      return c.fail(`metadata ${what}: unknown value type ${type}`);
  }
}

/** Smallest encoded size of one element of `type`, to reject impossible array counts before allocating. */
function minElementBytes(type: number): number {
  switch (type) {
    case GgufValueType.UINT8:
    case GgufValueType.INT8:
    case GgufValueType.BOOL:
      return 1;
    case GgufValueType.UINT16:
    case GgufValueType.INT16:
      return 2;
    case GgufValueType.UINT32:
    case GgufValueType.INT32:
    case GgufValueType.FLOAT32:
      return 4;
    default:
      return 8; // strings and arrays carry a u64 length; 64-bit scalars are 8 bytes
  }
}

function readValue(c: Cursor, type: number, key: string, arrayTypes: Record<string, GgufValueType>): GgufValue {
  if (type !== GgufValueType.ARRAY) return readScalar(c, type, key);
  const elemType = c.u32();
  const count = c.size(`metadata ${key}: array length`);
  if (count * minElementBytes(elemType) > c.bytes.byteLength - c.offset) {
    c.fail(`metadata ${key}: array of ${count} elements does not fit in the file`);
  }
  if (!(key in arrayTypes)) arrayTypes[key] = elemType as GgufValueType;
  const out: GgufValue[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = readValue(c, elemType, `${key}[${i}]`, arrayTypes);
  return out;
}

/** Bytes a tensor of `numElements` takes in the file, or undefined for types this reader cannot decode. */
function tensorBytes(type: number, numElements: number): number | undefined {
  switch (type) {
    case GgmlType.F32:
      return numElements * 4;
    case GgmlType.F16:
    case GgmlType.BF16:
      return numElements * 2;
    case GgmlType.Q8_0:
      return (numElements / Q8_0_BLOCK_SIZE) * Q8_0_BLOCK_BYTES;
    default:
      return undefined;
  }
}

/**
 * Dequantizes `numElements` Q8_0 values: blocks of one fp16 scale `d` followed by 32 int8 `q`, value = d * q.
 */
export function dequantizeQ8_0(bytes: Uint8Array, byteOffset: number, numElements: number): Float32Array {
  const out = new Float32Array(numElements);
  const numBlocks = numElements / Q8_0_BLOCK_SIZE;
  for (let b = 0; b < numBlocks; b++) {
    const p = byteOffset + b * Q8_0_BLOCK_BYTES;
    const d = f16At(bytes, p);
    const base = b * Q8_0_BLOCK_SIZE;
    for (let j = 0; j < Q8_0_BLOCK_SIZE; j++) out[base + j] = d * ((bytes[p + 2 + j] << 24) >> 24);
  }
  return out;
}

/** Copies little-endian f32 bytes into a fresh, aligned Float32Array. */
function decodeF32(bytes: Uint8Array, byteOffset: number, count: number): Float32Array {
  const out = new Float32Array(count);
  new Uint8Array(out.buffer).set(bytes.subarray(byteOffset, byteOffset + count * 4));
  return out;
}

/**
 * Parses GGUF bytes already in memory (see {@link readGguf}).
 * @param path used in error messages and copied to the result.
 * @throws InputFileError E_MODEL_FILE for bad magic, unsupported version, truncation, bad strings or tensor types.
 */
export function parseGguf(bytes: Uint8Array, path: string): GgufFile {
  const c: Cursor = new Cursor(bytes, path);
  if (bytes.byteLength < 4 || c.u32() !== GGUF_MAGIC) {
    c.offset = 0;
    c.fail('bad magic: not a GGUF file (expected "GGUF")');
  }
  const version = c.u32();
  if (!GGUF_SUPPORTED_VERSIONS.includes(version)) {
    c.fail(`unsupported GGUF version ${version} (supported: ${GGUF_SUPPORTED_VERSIONS.join(', ')})`);
  }
  const tensorCount = c.size('tensor count');
  const kvCount = c.size('metadata count');

  const metadata: GgufMetadata = {};
  const metadataTypes: Record<string, GgufValueType> = {};
  const metadataArrayTypes: Record<string, GgufValueType> = {};
  for (let i = 0; i < kvCount; i++) {
    const key = c.string(`metadata key #${i}`);
    const type = c.u32();
    metadata[key] = readValue(c, type, key, metadataArrayTypes);
    metadataTypes[key] = type as GgufValueType;
  }

  const alignmentValue = metadata['general.alignment'] ?? GGUF_DEFAULT_ALIGNMENT;
  if (typeof alignmentValue !== 'number' || !Number.isInteger(alignmentValue) || alignmentValue <= 0) {
    c.fail(`general.alignment ${String(alignmentValue)} is not a positive integer`);
  }
  const alignment = alignmentValue;

  interface Info {
    name: string;
    ne: number[];
    type: number;
    offset: number;
  }
  const infos: Info[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string(`tensor name #${i}`);
    const nDims = c.u32();
    if (nDims > 8) c.fail(`tensor ${name}: ${nDims} dimensions (at most 8)`);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) ne.push(c.size(`tensor ${name}: dimension ${d}`));
    const type = c.u32();
    const offset = c.size(`tensor ${name}: data offset`);
    infos.push({ name, ne, type, offset });
  }
  const dataStart = Math.ceil(c.offset / alignment) * alignment;

  const tensors: GgufTensor[] = [];
  const seen = new Set<string>();
  for (const info of infos) {
    if (seen.has(info.name)) c.fail(`duplicate tensor name ${info.name}`);
    seen.add(info.name);
    const numElements = info.ne.reduce((a, b) => a * b, 1);
    const numBytes = tensorBytes(info.type, numElements);
    if (numBytes === undefined) {
      c.fail(`tensor ${info.name}: ggml type ${ggmlTypeName(info.type)} is not supported (F32, F16, BF16, Q8_0 are)`);
    }
    if (info.type === GgmlType.Q8_0 && (info.ne[0] ?? 1) % Q8_0_BLOCK_SIZE !== 0) {
      c.fail(`tensor ${info.name}: Q8_0 row length ${info.ne[0]} is not a multiple of ${Q8_0_BLOCK_SIZE}`);
    }
    if (info.offset % alignment !== 0) {
      c.fail(`tensor ${info.name}: data offset ${info.offset} is not a multiple of the alignment ${alignment}`);
    }
    const start = dataStart + info.offset;
    if (start + numBytes > bytes.byteLength) {
      c.fail(
        `truncated file: tensor ${info.name} data [${start}, ${start + numBytes}) is past the end of the file ` +
          `(${bytes.byteLength} bytes)`,
      );
    }
    let data: Float32Array;
    if (info.type === GgmlType.F32) data = decodeF32(bytes, start, numElements);
    else if (info.type === GgmlType.F16) data = decodeF16(bytes, start, numElements);
    else if (info.type === GgmlType.BF16) data = decodeBf16(bytes, start, numElements);
    else data = dequantizeQ8_0(bytes, start, numElements);
    tensors.push({ name: info.name, shape: [...info.ne].reverse(), fileType: info.type as GgmlType, data });
  }

  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return {
    path,
    version,
    metadata,
    metadataTypes,
    metadataArrayTypes,
    tensors,
    alignment,
    sha256,
    numBytes: bytes.byteLength,
  };
}

/**
 * Reads and parses a GGUF v2/v3 file; tensors come back dequantized to float32 in PyTorch shape order.
 * @param path file path.
 * @throws InputFileError E_MODEL_FILE when the file is missing or unreadable, or as {@link parseGguf}.
 */
export async function readGguf(path: string): Promise<GgufFile> {
  return parseGguf(await readModelFile(path, 'GGUF file'), path);
}
