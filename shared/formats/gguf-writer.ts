/**
 * GGUF writer (v3 by default) for F32, F16 and Q8_0 tensors: synthetic test models and round-trip tests.
 */
import { writeFile } from 'node:fs/promises';
import { ErrorCode, InputFileError, ShapeError } from '../errors.js';
import { floatToHalf } from './float16.js';
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GgmlType,
  GgufValueType,
  Q8_0_BLOCK_BYTES,
  Q8_0_BLOCK_SIZE,
  type GgufValue,
} from './gguf.js';

/** Tensor types the writer can produce. */
export type WritableTensorType = 'F32' | 'F16' | 'Q8_0';

/** A metadata value with its GGUF type spelled out (for arrays, `elementType` is the element type). */
export interface GgufTypedValue {
  readonly ggufType: GgufValueType;
  readonly value: GgufValue;
  readonly elementType?: GgufValueType;
}

/** A metadata value to write: plain (type inferred, see {@link writeGguf}) or typed. */
export type GgufWritableValue = GgufValue | GgufTypedValue;

/** One tensor to write; `shape` in PyTorch order (written as GGUF `ne` = shape reversed). */
export interface GgufTensorInput {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** What {@link writeGguf} writes. */
export interface GgufWriteInput {
  readonly metadata: Readonly<Record<string, GgufWritableValue>>;
  readonly tensors: readonly GgufTensorInput[];
  /** Per-tensor type by name. @default F32 for every tensor */
  readonly tensorTypes?: Readonly<Record<string, WritableTensorType>>;
  /** GGUF version, 2 or 3. @default 3 */
  readonly version?: 2 | 3;
}

/** Marks a metadata value with an explicit GGUF type (e.g. `ggufTyped(GgufValueType.FLOAT32, 10000)`). */
export function ggufTyped(ggufType: GgufValueType, value: GgufValue): GgufTypedValue {
  return { ggufType, value };
}

/** Marks an array metadata value with an explicit element type (e.g. scores as FLOAT32). */
export function ggufArray(elementType: GgufValueType, values: GgufValue[]): GgufTypedValue {
  return { ggufType: GgufValueType.ARRAY, value: values, elementType };
}

function isTyped(v: GgufWritableValue): v is GgufTypedValue {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'ggufType' in v;
}

function inferScalarType(v: GgufValue, key: string): GgufValueType {
  if (typeof v === 'string') return GgufValueType.STRING;
  if (typeof v === 'boolean') return GgufValueType.BOOL;
  if (typeof v === 'bigint') return v < 0n ? GgufValueType.INT64 : GgufValueType.UINT64;
  if (Array.isArray(v)) return GgufValueType.ARRAY;
  if (typeof v !== 'number') throw new InputFileError(ErrorCode.MODEL_FILE, `GGUF metadata ${key}: unsupported value`);
  if (!Number.isInteger(v)) return GgufValueType.FLOAT32;
  if (v >= 0 && v <= 0xffffffff) return GgufValueType.UINT32;
  if (v >= -0x80000000 && v < 0) return GgufValueType.INT32;
  return GgufValueType.INT64;
}

function inferElementType(values: GgufValue[], key: string): GgufValueType {
  if (values.length === 0) return GgufValueType.INT32;
  if (values.every((x) => typeof x === 'number')) {
    const nums = values as number[];
    if (!nums.every(Number.isInteger)) return GgufValueType.FLOAT32;
    return nums.every((x) => x >= -0x80000000 && x <= 0x7fffffff) ? GgufValueType.INT32 : GgufValueType.INT64;
  }
  const first = inferScalarType(values[0], `${key}[0]`);
  for (let i = 1; i < values.length; i++) {
    if (inferScalarType(values[i], `${key}[${i}]`) !== first) {
      throw new InputFileError(ErrorCode.MODEL_FILE, `GGUF metadata ${key}: array elements of mixed types`);
    }
  }
  return first;
}

/** Growable little-endian byte sink. */
class Sink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private readonly encoder = new TextEncoder();

  private reserve(n: number): void {
    if (this.length + n <= this.buf.byteLength) return;
    let size = this.buf.byteLength * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.reserve(1);
    this.view.setUint8(this.length++, v);
  }
  i8(v: number): void {
    this.reserve(1);
    this.view.setInt8(this.length++, v);
  }
  u16(v: number): void {
    this.reserve(2);
    this.view.setUint16(this.length, v, true);
    this.length += 2;
  }
  i16(v: number): void {
    this.reserve(2);
    this.view.setInt16(this.length, v, true);
    this.length += 2;
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  f32(v: number): void {
    this.reserve(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  f64(v: number): void {
    this.reserve(8);
    this.view.setFloat64(this.length, v, true);
    this.length += 8;
  }
  u64(v: number | bigint): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  i64(v: number | bigint): void {
    this.reserve(8);
    this.view.setBigInt64(this.length, BigInt(v), true);
    this.length += 8;
  }
  string(s: string): void {
    const bytes = this.encoder.encode(s);
    this.u64(bytes.byteLength);
    this.bytes(bytes);
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.byteLength);
    this.buf.set(b, this.length);
    this.length += b.byteLength;
  }
  padTo(alignment: number): void {
    const target = Math.ceil(this.length / alignment) * alignment;
    this.reserve(target - this.length);
    this.buf.fill(0, this.length, target);
    this.length = target;
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function writeValue(s: Sink, type: GgufValueType, v: GgufValue, key: string, elementType?: GgufValueType): void {
  const bad = (): never => {
    throw new InputFileError(ErrorCode.MODEL_FILE, `GGUF metadata ${key}: value ${String(v)} does not fit type ${type}`);
  };
  const num = (): number => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : bad());
  switch (type) {
    case GgufValueType.UINT8:
      return s.u8(num());
    case GgufValueType.INT8:
      return s.i8(num());
    case GgufValueType.UINT16:
      return s.u16(num());
    case GgufValueType.INT16:
      return s.i16(num());
    case GgufValueType.UINT32:
      return s.u32(num());
    case GgufValueType.INT32:
      return s.i32(num());
    case GgufValueType.FLOAT32:
      return s.f32(num());
    case GgufValueType.FLOAT64:
      return s.f64(num());
    case GgufValueType.UINT64:
      return s.u64(typeof v === 'bigint' ? v : num());
    case GgufValueType.INT64:
      return s.i64(typeof v === 'bigint' ? v : num());
    case GgufValueType.BOOL:
      return s.u8(typeof v === 'boolean' ? (v ? 1 : 0) : bad());
    case GgufValueType.STRING:
      return s.string(typeof v === 'string' ? v : bad());
    case GgufValueType.ARRAY: {
      if (!Array.isArray(v)) return bad();
      const elem = elementType ?? inferElementType(v, key);
      s.u32(elem);
      s.u64(v.length);
      v.forEach((x, i) => writeValue(s, elem, x, `${key}[${i}]`));
      return;
    }
    default:
      return bad();
  }
}

/**
 * Quantizes to Q8_0 as llama.cpp does: per block of 32, d = absmax / 127 (stored fp16), q = round(x / d).
 * @returns the encoded blocks (34 bytes per 32 values).
 * @throws ShapeError E_TENSOR_SHAPE when the length is not a multiple of 32.
 */
export function quantizeQ8_0(data: Float32Array, name = 'tensor'): Uint8Array {
  if (data.length % Q8_0_BLOCK_SIZE !== 0) {
    throw new ShapeError(ErrorCode.TENSOR_SHAPE, `${name}: Q8_0 needs a multiple of ${Q8_0_BLOCK_SIZE} values, got ${data.length}`);
  }
  const numBlocks = data.length / Q8_0_BLOCK_SIZE;
  const out = new Uint8Array(numBlocks * Q8_0_BLOCK_BYTES);
  const view = new DataView(out.buffer);
  for (let b = 0; b < numBlocks; b++) {
    const base = b * Q8_0_BLOCK_SIZE;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK_SIZE; j++) amax = Math.max(amax, Math.abs(data[base + j]));
    const d = amax / 127;
    const inv = d === 0 ? 0 : 1 / d;
    const p = b * Q8_0_BLOCK_BYTES;
    view.setUint16(p, floatToHalf(d), true);
    for (let j = 0; j < Q8_0_BLOCK_SIZE; j++) view.setInt8(p + 2 + j, Math.round(data[base + j] * inv));
  }
  return out;
}

function encodeTensor(t: GgufTensorInput, type: WritableTensorType): Uint8Array {
  switch (type) {
    case 'F32':
      return new Uint8Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
    case 'F16': {
      const out = new Uint8Array(t.data.length * 2);
      const view = new DataView(out.buffer);
      for (let i = 0; i < t.data.length; i++) view.setUint16(i * 2, floatToHalf(t.data[i]), true);
      return out;
    }
    case 'Q8_0':
      if ((t.shape[t.shape.length - 1] ?? 1) % Q8_0_BLOCK_SIZE !== 0) {
        throw new ShapeError(ErrorCode.TENSOR_SHAPE, `${t.name}: Q8_0 row length ${t.shape.at(-1)} is not a multiple of 32`);
      }
      return quantizeQ8_0(t.data, t.name);
  }
}

const TYPE_IDS: Record<WritableTensorType, number> = { F32: GgmlType.F32, F16: GgmlType.F16, Q8_0: GgmlType.Q8_0 };

/**
 * Encodes a GGUF file in memory (see {@link writeGguf}).
 * @throws ShapeError E_TENSOR_SHAPE when a tensor's data length does not match its shape or cannot be quantized.
 * @throws InputFileError E_MODEL_FILE for a metadata value that cannot be encoded.
 */
export function encodeGguf(input: GgufWriteInput): Uint8Array {
  const version = input.version ?? 3;
  const alignmentValue = input.metadata['general.alignment'];
  const alignmentRaw = alignmentValue === undefined ? GGUF_DEFAULT_ALIGNMENT : isTyped(alignmentValue) ? alignmentValue.value : alignmentValue;
  const alignment = typeof alignmentRaw === 'number' ? alignmentRaw : GGUF_DEFAULT_ALIGNMENT;

  const s = new Sink();
  s.u32(GGUF_MAGIC);
  s.u32(version);
  s.u64(input.tensors.length);
  const entries = Object.entries(input.metadata);
  s.u64(entries.length);
  for (const [key, raw] of entries) {
    s.string(key);
    const type = isTyped(raw) ? raw.ggufType : inferScalarType(raw, key);
    const value = isTyped(raw) ? raw.value : raw;
    s.u32(type);
    writeValue(s, type, value, key, isTyped(raw) ? raw.elementType : undefined);
  }

  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const t of input.tensors) {
    const numElements = t.shape.reduce((a, b) => a * b, 1);
    if (numElements !== t.data.length) {
      throw new ShapeError(ErrorCode.TENSOR_SHAPE, `${t.name}: shape [${t.shape}] has ${numElements} elements, data has ${t.data.length}`);
    }
    const type = input.tensorTypes?.[t.name] ?? 'F32';
    const blob = encodeTensor(t, type);
    s.string(t.name);
    s.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) s.u64(t.shape[d]);
    s.u32(TYPE_IDS[type]);
    s.u64(offset);
    blobs.push(blob);
    offset += Math.ceil(blob.byteLength / alignment) * alignment;
  }
  s.padTo(alignment);
  for (const blob of blobs) {
    s.bytes(blob);
    s.padTo(alignment);
  }
  return s.result();
}

/**
 * Writes a GGUF file. Metadata types are inferred from plain values: string → STRING, boolean → BOOL,
 * integer in [0, 2^32) → UINT32, negative int32 → INT32, other integer → INT64, bigint → (U)INT64, other
 * number → FLOAT32; arrays of integers → INT32 (INT64 if out of range), of non-integers → FLOAT32. Use
 * {@link ggufTyped} / {@link ggufArray} to choose a type (e.g. FLOAT32 scores that happen to be integers).
 * Tensor data is aligned to `general.alignment` (default 32).
 * @throws as {@link encodeGguf}; file-system errors as they come.
 */
export async function writeGguf(path: string, input: GgufWriteInput): Promise<void> {
  await writeFile(path, encodeGguf(input));
}
