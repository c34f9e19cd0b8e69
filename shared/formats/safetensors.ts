/**
 * safetensors reader (F32, F16, BF16 → float32) and writer (F32).
 *
 * Layout: u64 little-endian header length N, N bytes of JSON `{ "__metadata__"?: {str: str}, name: { dtype,
 * shape, data_offsets: [begin, end] } }` (offsets relative to the byte after the header), then the data.
 */
import { readModelFile } from './read-model-file.js';
import { writeFile } from 'node:fs/promises';
import { ErrorCode, InputFileError, ShapeError } from '../errors.js';
import { decodeBf16, decodeF16 } from './float16.js';

/** Largest JSON header the reader accepts, in bytes (the Rust crate's limit). @default 100_000_000 */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

/** One float32 tensor. */
export interface SafetensorsTensor {
  readonly name: string;
  /** Row-major shape (PyTorch order). */
  readonly shape: number[];
  readonly data: Float32Array;
}

/** A tensor as read, with the dtype it had in the file. */
export interface SafetensorsReadTensor extends SafetensorsTensor {
  readonly fileDtype: SafetensorsDtype;
}

/** The dtypes the reader decodes. */
export const SAFETENSORS_DTYPES = ['F32', 'F16', 'BF16'] as const;
export type SafetensorsDtype = (typeof SAFETENSORS_DTYPES)[number];

/** The contents of a safetensors file. */
export interface SafetensorsFile {
  readonly path: string;
  /** `__metadata__` (string to string), empty when absent. */
  readonly metadata: Record<string, string>;
  /** Tensors in data order. */
  readonly tensors: SafetensorsReadTensor[];
  /**
   * I64 tensors, bounds-checked but not decoded (e.g. BERT's I64 `position_ids` buffer, which no
   * model here reads); a loader that needs one reports it missing. @default []
   */
  readonly skipped?: readonly { readonly name: string; readonly dtype: SkippedSafetensorsDtype; readonly shape: number[] }[];
}

/** Non-float dtypes a file may hold; their tensors are skipped (listed in {@link SafetensorsFile.skipped}). */
// I64 only: older BERT checkpoints keep `position_ids` / `token_type_ids` buffers so; other integer dtypes stay refused.
export const SKIPPED_SAFETENSORS_DTYPES = ['I64'] as const;
export type SkippedSafetensorsDtype = (typeof SKIPPED_SAFETENSORS_DTYPES)[number];

const DTYPE_BYTES: Record<SafetensorsDtype | SkippedSafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, I64: 8 };

/**
 * Writes float32 tensors as a safetensors file: tensors sorted by name, data contiguous in that order, header
 * JSON padded with spaces to a multiple of 8 bytes (so every tensor starts 8-byte aligned).
 * @param metadata `__metadata__` entries, e.g. `{ format: 'pt' }` for a PEFT adapter. @default none
 * @throws ShapeError E_TENSOR_SHAPE when a tensor's data length does not match its shape; E_TENSOR_NAME for a
 *   duplicate or reserved name.
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly { name: string; shape: readonly number[]; data: Float32Array }[],
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = { ...metadata };
  let offset = 0;
  for (const t of sorted) {
    if (t.name === '__metadata__' || Object.hasOwn(header, t.name)) {
      throw new ShapeError(ErrorCode.TENSOR_NAME, `safetensors ${path}: duplicate or reserved tensor name ${t.name}`);
    }
    const numElements = t.shape.reduce((a, b) => a * b, 1);
    if (numElements !== t.data.length || t.shape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new ShapeError(
        ErrorCode.TENSOR_SHAPE,
        `safetensors ${path}: tensor ${t.name} shape [${t.shape}] does not match its ${t.data.length} values`,
      );
    }
    header[t.name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded !== json.byteLength) {
    const withSpaces = new Uint8Array(padded).fill(0x20);
    withSpaces.set(json);
    json = withSpaces;
  }
  const out = new Uint8Array(8 + json.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  let p = 8 + json.byteLength;
  for (const t of sorted) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), p);
    p += t.data.byteLength;
  }
  await writeFile(path, out);
}

/**
 * Parses safetensors bytes already in memory (see {@link readSafetensors}).
 * @throws InputFileError E_MODEL_FILE for a truncated file, a bad header, an unsupported dtype, or offsets that
 *   do not match the shapes or do not tile the data exactly.
 */
export function parseSafetensors(bytes: Uint8Array, path: string): SafetensorsFile {
  const fail = (what: string): never => {
    throw new InputFileError(ErrorCode.MODEL_FILE, `safetensors ${path}: ${what}`);
  };
  if (bytes.byteLength < 8) fail(`truncated file: ${bytes.byteLength} bytes, no header length`);
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) fail(`header length ${headerLen} exceeds ${SAFETENSORS_MAX_HEADER_BYTES}`);
  const n = Number(headerLen);
  if (8 + n > bytes.byteLength) fail(`truncated file: header of ${n} bytes, only ${bytes.byteLength - 8} left`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (err) {
    return fail(`header is not valid UTF-8 JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const entries = header as Record<string, unknown>;
  const dataStart = 8 + n;
  const dataBytes = bytes.byteLength - dataStart;

  const metadata: Record<string, string> = {};
  const rawMeta = entries.__metadata__;
  if (rawMeta !== undefined) {
    if (typeof rawMeta !== 'object' || rawMeta === null || Array.isArray(rawMeta)) fail('__metadata__ is not an object');
    for (const [k, v] of Object.entries(rawMeta as Record<string, unknown>)) {
      if (typeof v !== 'string') fail(`__metadata__.${k} is not a string`);
      metadata[k] = v as string;
    }
  }

  interface Entry {
    name: string;
    dtype: SafetensorsDtype | SkippedSafetensorsDtype;
    shape: number[];
    begin: number;
    end: number;
  }
  const list: Entry[] = [];
  for (const [name, raw] of Object.entries(entries)) {
    if (name === '__metadata__') continue;
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) fail(`tensor ${name}: entry is not an object`);
    if (!SAFETENSORS_DTYPES.includes(e.dtype as SafetensorsDtype) && !SKIPPED_SAFETENSORS_DTYPES.includes(e.dtype as SkippedSafetensorsDtype)) {
      fail(`tensor ${name}: dtype ${JSON.stringify(e.dtype)} is not supported (${SAFETENSORS_DTYPES.join(', ')}; ${SKIPPED_SAFETENSORS_DTYPES.join(', ')} are skipped)`);
    }
    const shape = e.shape;
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      fail(`tensor ${name}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    const offsets = e.data_offsets;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[1] < offsets[0]
    ) {
      fail(`tensor ${name}: data_offsets ${JSON.stringify(offsets)} is not [begin, end]`);
    }
    const dtype = e.dtype as SafetensorsDtype | SkippedSafetensorsDtype;
    const [begin, end] = offsets as [number, number];
    const numElements = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end - begin !== numElements * DTYPE_BYTES[dtype]) {
      fail(`tensor ${name}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, shape [${shape}] ${dtype} needs ${numElements * DTYPE_BYTES[dtype]}`);
    }
    if (end > dataBytes) fail(`truncated file: tensor ${name} data ends at ${end}, past the ${dataBytes} data bytes`);
    list.push({ name, dtype, shape: shape as number[], begin, end });
  }
  list.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const e of list) {
    if (e.begin !== expected) fail(`tensor ${e.name}: data starts at ${e.begin}, expected ${expected} (gap or overlap)`);
    expected = e.end;
  }
  if (expected !== dataBytes) fail(`${dataBytes - expected} bytes after the last tensor's data`);

  const isFloat = (e: Entry): e is Entry & { dtype: SafetensorsDtype } => SAFETENSORS_DTYPES.includes(e.dtype as SafetensorsDtype);
  const skipped = list.filter((e) => !isFloat(e)).map((e) => ({ name: e.name, dtype: e.dtype as SkippedSafetensorsDtype, shape: e.shape }));
  const tensors = list.filter(isFloat).map((e): SafetensorsReadTensor => {
    const start = dataStart + e.begin;
    const count = (e.end - e.begin) / DTYPE_BYTES[e.dtype];
    let data: Float32Array;
    if (e.dtype === 'F32') {
      data = new Float32Array(count);
      new Uint8Array(data.buffer).set(bytes.subarray(start, start + count * 4));
    } else if (e.dtype === 'F16') data = decodeF16(bytes, start, count);
    else data = decodeBf16(bytes, start, count);
    return { name: e.name, shape: e.shape, data, fileDtype: e.dtype };
  });
  return { path, metadata, tensors, skipped };
}

/**
 * Reads a safetensors file; F32, F16 and BF16 tensors come back as float32.
 * @throws InputFileError E_MODEL_FILE when the file is missing or unreadable, or as {@link parseSafetensors}.
 */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  return parseSafetensors(await readModelFile(path, 'safetensors'), path);
}
