/**
 * Bytes ⇄ frames (msgpack, one pinned msgpackr configuration) and typed arrays ⇄ {@link TensorBlob}s.
 *
 * Wire encoding: msgpack maps with string keys, no records, no extension types; `undefined`-valued fields
 * are left out. Tensor data is raw little-endian bytes in a msgpack byte string. Decoding never copies
 * tensor bytes unless their offset in the frame is not 4-aligned (then exactly one copy per tensor).
 */
import { Packr, Unpackr } from 'msgpackr';
import { CodecError, ErrorCode, OrchestratorError, ProtocolError, ShapeError } from './errors.js';
import type { Message, TensorBlob } from './protocol/messages.js';
import { TENSOR_CODECS } from './protocol/messages.js';
import { MAX_FRAME_DEPTH, scanFrame } from './protocol/frame-scan.js';
import { decodeTensor } from './codecs/tensor.js';
import type { NamedTensors, TensorSpec } from './tensors.js';
import { sizeOf } from './tensors.js';

export { MAX_FRAME_DEPTH };

const IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// Pinned: any change here changes bytes on the wire and must fail the golden-frame tests.
// (`skipValues` is missing from msgpackr's typings, hence the untyped constant.)
const PACK_OPTIONS = {
  useRecords: false,
  mapsAsObjects: true,
  moreTypes: false,
  structuredClone: false,
  bundleStrings: false,
  variableMapSize: true,
  skipValues: [undefined],
  encodeUndefinedAsNil: true,
};
const packr = new Packr(PACK_OPTIONS);
const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: true,
  moreTypes: false,
  structuredClone: false,
  bundleStrings: false,
  copyBuffers: false,
  int64AsType: 'number',
});

/**
 * Encodes a frame. The result is a fresh view that later calls never overwrite.
 * @throws CodecError when the value cannot be encoded (e.g. a BigInt or a cycle).
 */
export function encodeMessage(msg: Message): Uint8Array {
  try {
    return packr.pack(msg);
  } catch (err) {
    throw new CodecError(`cannot encode ${describeKind(msg)} frame: ${(err as Error).message}`, { cause: err });
  }
}

/** Tensor blobs with at least this many data bytes are laid out 8-aligned by {@link encodeMessageInto}. */
export const ALIGN_MIN_BYTES = 4096;

// Placeholders for pass 1 of the aligned layout: a per-process random prefix and the blob's index.
const MARKER_NONCE = Uint8Array.from({ length: 12 }, () => Math.floor(Math.random() * 256));
const MARKER_BYTES = 16;
const PAD_FIELD_BYTES = 6; // fixstr "pad" (4) + bin 8 header (2), before 0-7 filler bytes
const PADS = Array.from({ length: 8 }, (_, k) => new Uint8Array(k));

/** Markers by blob index, made once each: a fresh one per blob per frame cost more than the rest of the encode. */
const MARKERS: Uint8Array[] = [];

function marker(i: number): Uint8Array {
  let m = MARKERS[i];
  if (m === undefined) {
    m = new Uint8Array(MARKER_BYTES);
    m.set(MARKER_NONCE);
    new DataView(m.buffer).setUint32(12, i);
    if (i < 4096) MARKERS[i] = m;
  }
  return m;
}

function binHeaderBytes(n: number): number {
  return n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

function isLargeBlob(v: Record<string, unknown>): boolean {
  return typeof v.name === 'string' && Array.isArray(v.shape) && v.data instanceof Uint8Array && v.data.byteLength >= ALIGN_MIN_BYTES;
}

/** A copy of `value` with every large tensor blob replaced by `replace(blob, i)` (key order kept). */
function mapLargeBlobs(value: unknown, replace: (blob: Record<string, unknown>, i: number) => unknown, counter: { n: number }, depth = 0): unknown {
  if (depth > MAX_FRAME_DEPTH || typeof value !== 'object' || value === null || value instanceof Uint8Array) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    value.forEach((item, i) => {
      const mapped = mapLargeBlobs(item, replace, counter, depth + 1);
      if (mapped !== item) (out ??= [...value])[i] = mapped;
    });
    return out ?? value;
  }
  const obj = value as Record<string, unknown>;
  if (isLargeBlob(obj)) return replace(obj, counter.n++);
  let out: Record<string, unknown> | undefined;
  for (const key of Object.keys(obj)) {
    const mapped = mapLargeBlobs(obj[key], replace, counter, depth + 1);
    if (mapped !== obj[key]) (out ??= { ...obj })[key] = mapped;
  }
  return out ?? obj;
}

/**
 * The message with a `pad` byte string before the `data` of each large tensor blob, sized so that the data
 * starts at a multiple of 8 bytes from the start of the frame (zero-copy typed-array views on decode). Pass 1
 * encodes the frame with small markers in place of the data to learn where each blob lands.
 */
function withAlignedBlobs(msg: Message): unknown {
  const blobs: Record<string, unknown>[] = [];
  // A pad the blob already has (a decoded message sent on) is replaced: it was sized for another layout.
  const probe = mapLargeBlobs(msg, (blob, i) => {
    blobs.push(blob);
    const { data: _data, pad: _pad, ...rest } = blob;
    return { ...rest, data: marker(i) };
  }, { n: 0 });
  if (blobs.length === 0) return msg;
  const probeBytes = Buffer.from(packr.pack(probe));
  const found = blobs.map((blob, i) => ({ i, at: probeBytes.indexOf(marker(i)), length: (blob.data as Uint8Array).byteLength }));
  if (found.some((f) => f.at < 0)) return msg;
  found.sort((a, b) => a.at - b.at);
  const padOf = new Map<number, number>();
  let shift = 0;
  for (const f of found) {
    const headerGrowth = binHeaderBytes(f.length) - binHeaderBytes(MARKER_BYTES);
    const k = (8 - ((f.at + shift + PAD_FIELD_BYTES + headerGrowth) % 8)) % 8;
    padOf.set(f.i, k);
    shift += PAD_FIELD_BYTES + k + headerGrowth + f.length - MARKER_BYTES;
  }
  return mapLargeBlobs(msg, (blob, i) => {
    const { data, pad: _pad, ...rest } = blob;
    return { ...rest, pad: PADS[padOf.get(i)!], data };
  }, { n: 0 });
}

/**
 * Encodes a frame into `scratch` when it fits (no allocation), else into a new buffer. The result is a view
 * that stays valid until the caller writes into `scratch` again (no other encode writes there). Use it for
 * large frames that are copied out (chunked) before the scratch is reused: a fresh buffer per large frame costs
 * page faults on first touch. Tensor blobs of at least {@link ALIGN_MIN_BYTES} get an optional `pad` byte
 * string before `data` (ignored by the parser) so that their data is 8-aligned within the frame; smaller
 * frames encode exactly as {@link encodeMessage}.
 * @throws CodecError when the value cannot be encoded.
 */
export function encodeMessageInto(msg: Message, scratch: Uint8Array): Uint8Array {
  try {
    const aligned = withAlignedBlobs(msg);
    // msgpackr writes strings with Buffer methods: the target must be a Buffer (a view costs nothing).
    packr.useBuffer(Buffer.isBuffer(scratch) ? scratch : Buffer.from(scratch.buffer, scratch.byteOffset, scratch.byteLength));
    return packr.pack(aligned);
  } catch (err) {
    throw new CodecError(`cannot encode ${describeKind(msg)} frame: ${(err as Error).message}`, { cause: err });
  } finally {
    // msgpackr's target is module-wide: later encodeMessage calls must not write into the caller's scratch.
    packr.useBuffer(Buffer.allocUnsafeSlow(8192));
  }
}

/**
 * The bytes of {@link encodeMessageInto} as segments whose concatenation is the frame: the encoded structure
 * (fresh, small buffers) and, for each tensor blob of at least {@link ALIGN_MIN_BYTES}, a view of the caller's
 * `data` (not copied: do not mutate it until the segments are sent). Lets a sender chunk a large frame
 * without first packing its tensor bytes into one buffer.
 * @throws CodecError when the value cannot be encoded.
 */
export function encodeMessageSegments(msg: Message): Uint8Array[] {
  // One pack: each large blob gets an empty `pad` and a marker for its data; the filler that 8-aligns the data is
  // spliced in as a segment of its own, so the frame is never packed a second time (a pack of the structure costs
  // ~0.15 ms with caches cold from the previous 10 MB transfer: once per message, not twice).
  const blobs: Uint8Array[] = [];
  const probe = mapLargeBlobs(msg, (blob, i) => {
    const { data, pad: _pad, ...rest } = blob;
    blobs.push(data as Uint8Array);
    return { ...rest, pad: PADS[0], data: marker(i) };
  }, { n: 0 });
  const bytes = Buffer.from(encodeMessage(probe as Message));
  const segments: Uint8Array[] = [];
  let from = 0;
  let written = 0;
  for (let i = 0; i < blobs.length; i++) {
    const at = bytes.indexOf(marker(i), from);
    // The marker goes out as bin 8 (2 header bytes) after fixstr "data" (5 bytes), after the empty pad (c4 00).
    const padAt = at - 2 - DATA_KEY.byteLength - 2;
    if (at < 0 || padAt < from || !isEmptyPadThenDataKey(bytes, padAt)) {
      throw new CodecError(`cannot encode ${describeKind(msg)} frame: tensor ${i} not found in the layout`);
    }
    const n = blobs[i].byteLength;
    const header = n < 0x10000 ? encodeBinHeader(n) : bin32Header(n);
    const dataAt = written + (padAt - from) + 2 + DATA_KEY.byteLength + header.byteLength;
    const k = (8 - (dataAt % 8)) % 8;
    segments.push(bytes.subarray(from, padAt), PAD_FIELDS[k], DATA_KEY, header, blobs[i]);
    written = dataAt + k + n;
    from = at + MARKER_BYTES;
  }
  segments.push(bytes.subarray(from));
  return segments;
}

const DATA_KEY = Uint8Array.of(0xa4, 0x64, 0x61, 0x74, 0x61); // fixstr "data"
/** bin 8 of k zero bytes, k = 0..7: a pad field's value. */
const PAD_FIELDS = Array.from({ length: 8 }, (_, k) => Uint8Array.of(0xc4, k, ...new Uint8Array(k)));

function isEmptyPadThenDataKey(bytes: Uint8Array, at: number): boolean {
  if (bytes[at] !== 0xc4 || bytes[at + 1] !== 0) return false;
  for (let j = 0; j < DATA_KEY.byteLength; j++) if (bytes[at + 2 + j] !== DATA_KEY[j]) return false;
  return true;
}

function bin32Header(n: number): Uint8Array {
  const header = Buffer.allocUnsafe(5);
  header[0] = 0xc6;
  header.writeUInt32BE(n, 1);
  return header;
}

function encodeBinHeader(n: number): Uint8Array {
  return n < 0x100 ? Uint8Array.of(0xc4, n) : Uint8Array.of(0xc5, n >> 8, n & 0xff);
}

function describeKind(msg: unknown): string {
  const kind = (msg as { kind?: unknown } | null)?.kind;
  return typeof kind === 'string' ? `'${kind}'` : 'a';
}

/**
 * Decodes one msgpack frame into plain data, after {@link scanFrame} admitted its structure: nesting at most
 * {@link MAX_FRAME_DEPTH}, no extension types, string map keys, no `__proto__`/`constructor`/`prototype`
 * keys, no truncation, no trailing bytes. Byte strings come back as `Uint8Array` views into `bytes`.
 * @throws ProtocolError E_PROTOCOL_MALFORMED or E_PROTOCOL_FORBIDDEN_KEY.
 */
export function decodeFrame(bytes: Uint8Array): unknown {
  if (!(bytes instanceof Uint8Array)) {
    throw new ProtocolError(ErrorCode.PROTOCOL_MALFORMED, 'malformed frame: expected binary data');
  }
  if (bytes.length === 0) throw new ProtocolError(ErrorCode.PROTOCOL_MALFORMED, 'malformed frame: empty');
  // A plain Uint8Array (not a Buffer) so byte strings decode as plain Uint8Array views.
  const plain = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  scanFrame(plain);
  try {
    return unpackr.unpack(plain);
  } catch (err) {
    if (err instanceof OrchestratorError) throw err;
    throw new ProtocolError(ErrorCode.PROTOCOL_MALFORMED, `malformed frame: ${(err as Error).message}`, { cause: err });
  }
}

/** Bytes per element of a raw (`fp32`) blob; other codecs decode through shared/codecs/. */
function bytesPerElement(blob: TensorBlob): number {
  const codec = blob.codec ?? 'fp32';
  if (!(TENSOR_CODECS as readonly string[]).includes(codec)) {
    throw new CodecError(`tensor "${blob.name}": unknown codec "${String(codec)}" (this build knows ${TENSOR_CODECS.join(', ')})`);
  }
  if (codec !== 'fp32') throw new CodecError(`tensor "${blob.name}": codec ${codec} applies to float32 tensors only, not ${blob.dtype}`);
  return 4;
}

function checkHost(): void {
  if (!IS_LITTLE_ENDIAN) throw new CodecError('big-endian hosts are not supported: tensor bytes are little-endian');
}

function checkShape(name: string, shape: readonly number[]): number {
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new ShapeError(ErrorCode.TENSOR_SHAPE, `tensor "${name}": shape[${i}] = ${d} is not a non-negative integer`);
    }
  }
  return sizeOf(shape);
}

function makeBlob(name: string, dtype: TensorBlob['dtype'], shape: readonly number[], values: Float32Array | Int32Array): TensorBlob {
  checkHost();
  const n = checkShape(name, shape);
  if (values.length !== n) {
    throw new ShapeError(
      ErrorCode.TENSOR_SHAPE,
      `tensor "${name}": ${values.length} values for shape [${shape.join(', ')}] (expected ${n})`,
    );
  }
  return { name, dtype, shape: [...shape], data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

/**
 * Wraps float32 values as a blob, without copying (`data` is a view of `values`: do not mutate `values`
 * until the frame is encoded).
 * @throws ShapeError E_TENSOR_SHAPE when `values.length` is not the product of `shape`.
 */
export function float32Blob(name: string, shape: readonly number[], values: Float32Array): TensorBlob {
  return makeBlob(name, 'float32', shape, values);
}

/**
 * Wraps int32 values as a blob, without copying.
 * @throws ShapeError E_TENSOR_SHAPE when `values.length` is not the product of `shape`.
 */
export function int32Blob(name: string, shape: readonly number[], values: Int32Array): TensorBlob {
  return makeBlob(name, 'int32', shape, values);
}

function blobElements(blob: TensorBlob, dtype: TensorBlob['dtype']): { n: number; aligned: boolean } {
  checkHost();
  if (blob.dtype !== dtype) {
    throw new ShapeError(ErrorCode.TENSOR_DTYPE, `tensor "${blob.name}": dtype ${blob.dtype}, expected ${dtype}`);
  }
  const width = bytesPerElement(blob);
  const n = checkShape(blob.name, blob.shape);
  if (blob.data.byteLength !== n * width) {
    throw new CodecError(
      `tensor "${blob.name}": ${blob.data.byteLength} bytes for shape [${blob.shape.join(', ')}] ${dtype} (expected ${n * width})`,
    );
  }
  return { n, aligned: blob.data.byteOffset % 4 === 0 };
}

function alignedCopy(data: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(data.byteLength);
  new Uint8Array(out).set(data);
  return out;
}

/**
 * The values of a float32 blob of any codec (shared/codecs/): for `fp32` a view of `blob.data` when its byte
 * offset is 4-aligned, else one copy; for the other codecs a fresh decoded array.
 * @throws ShapeError E_TENSOR_DTYPE / E_TENSOR_SHAPE, CodecError naming the tensor when the byte length does not
 *   match shape and codec, or the codec is unknown.
 */
export function blobToFloat32(blob: TensorBlob): Float32Array {
  if ((blob.codec ?? 'fp32') !== 'fp32') {
    checkHost();
    return decodeTensor(blob);
  }
  const { n, aligned } = blobElements(blob, 'float32');
  return aligned ? new Float32Array(blob.data.buffer, blob.data.byteOffset, n) : new Float32Array(alignedCopy(blob.data));
}

/**
 * The values of an int32 blob: a view of `blob.data` when its byte offset is 4-aligned, else one copy.
 * @throws ShapeError E_TENSOR_DTYPE / E_TENSOR_SHAPE, CodecError when the byte length is not 4·prod(shape).
 */
export function blobToInt32(blob: TensorBlob): Int32Array {
  const { n, aligned } = blobElements(blob, 'int32');
  return aligned ? new Int32Array(blob.data.buffer, blob.data.byteOffset, n) : new Int32Array(alignedCopy(blob.data));
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Checks received tensors against a manifest and returns their values in manifest order: exactly the
 * manifest's names (no missing, extra or duplicate tensor), the manifest's shapes, dtype float32, finite values.
 * Blobs may use any codec: shapes are checked before decoding and finiteness on the DECODED values.
 * Values are views into the frame where aligned fp32 (see {@link blobToFloat32}), fresh arrays otherwise.
 * @throws ShapeError E_TENSOR_NAME / E_TENSOR_SHAPE / E_TENSOR_DTYPE / E_TENSOR_NON_FINITE naming the tensor
 *   (and the first bad index for non-finite values); CodecError for a wrong byte length or unknown codec.
 */
export function validateTensors(blobs: readonly TensorBlob[], manifest: readonly TensorSpec[]): NamedTensors {
  const byName = new Map<string, TensorBlob>();
  for (const blob of blobs) {
    if (byName.has(blob.name)) throw new ShapeError(ErrorCode.TENSOR_NAME, `tensor "${blob.name}" appears twice`);
    byName.set(blob.name, blob);
  }
  const expected = new Set(manifest.map((s) => s.name));
  for (const name of byName.keys()) {
    if (!expected.has(name)) throw new ShapeError(ErrorCode.TENSOR_NAME, `unexpected tensor "${name}" (not in the manifest)`);
  }
  const out: NamedTensors = new Map();
  for (const spec of manifest) {
    const blob = byName.get(spec.name);
    if (!blob) throw new ShapeError(ErrorCode.TENSOR_NAME, `missing tensor "${spec.name}"`);
    if (blob.dtype !== 'float32') {
      throw new ShapeError(ErrorCode.TENSOR_DTYPE, `tensor "${spec.name}": dtype ${blob.dtype}, expected float32`);
    }
    if (!sameShape(blob.shape, spec.shape)) {
      throw new ShapeError(
        ErrorCode.TENSOR_SHAPE,
        `tensor "${spec.name}": shape [${blob.shape.join(', ')}], expected [${spec.shape.join(', ')}]`,
      );
    }
    const values = blobToFloat32(blob);
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i])) {
        throw new ShapeError(ErrorCode.TENSOR_NON_FINITE, `tensor "${spec.name}": non-finite value ${values[i]} at index ${i}`);
      }
    }
    out.set(spec.name, values);
  }
  return out;
}

/**
 * Named float32 tensors as blobs in manifest order (no copy: each blob views its array).
 * @throws ShapeError E_TENSOR_NAME when a manifest tensor is missing, E_TENSOR_SHAPE when a length is wrong.
 */
export function tensorsToBlobs(tensors: NamedTensors, manifest: readonly TensorSpec[]): TensorBlob[] {
  return manifest.map((spec) => {
    const values = tensors.get(spec.name);
    if (!values) throw new ShapeError(ErrorCode.TENSOR_NAME, `missing tensor "${spec.name}"`);
    return float32Blob(spec.name, spec.shape, values);
  });
}
