/**
 * Checks and byte-view helpers shared by the codec files (internal to shared/codecs/).
 */
import { CodecError, ErrorCode, ShapeError } from '../errors.js';

/** Whether this host stores typed arrays little-endian (the wire order). */
export const IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Largest element count a coded tensor may claim (2^28 elements, 1 GiB decoded): sparse codecs let a tiny blob
 * claim a huge shape, so decoding refuses more than this before allocating.
 */
export const MAX_CODED_ELEMENTS = 2 ** 28;

/** @throws CodecError on a big-endian host. */
export function checkHost(): void {
  if (!IS_LITTLE_ENDIAN) throw new CodecError('big-endian hosts are not supported: tensor bytes are little-endian');
}

/**
 * The element count of `shape`.
 * @throws ShapeError E_TENSOR_SHAPE naming the tensor for a dimension that is not a non-negative integer.
 */
export function elementCount(name: string, shape: readonly number[]): number {
  let n = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new ShapeError(ErrorCode.TENSOR_SHAPE, `tensor "${name}": shape[${i}] = ${d} is not a non-negative integer`);
    }
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw new ShapeError(ErrorCode.TENSOR_SHAPE, `tensor "${name}": shape [${shape.join(', ')}] is too large`);
  return n;
}

/** @throws ShapeError E_TENSOR_SHAPE when `values.length` is not the product of `shape`. */
export function checkLength(name: string, shape: readonly number[], values: Float32Array): number {
  const n = elementCount(name, shape);
  if (values.length !== n) {
    throw new ShapeError(ErrorCode.TENSOR_SHAPE, `tensor "${name}": ${values.length} values for shape [${shape.join(', ')}] (expected ${n})`);
  }
  return n;
}

/** The error for a non-finite input value (E_TENSOR_NON_FINITE), naming the tensor, codec and index. */
export function nonFiniteError(name: string, codec: string, index: number, value: number): ShapeError {
  return new ShapeError(ErrorCode.TENSOR_NON_FINITE, `tensor "${name}": non-finite value ${value} at index ${index} cannot be encoded as ${codec}`);
}

/** The error for a finite value the codec cannot represent (E_TENSOR_RANGE), naming the tensor, codec and index. */
export function rangeError(name: string, codec: string, index: number, value: number, max: number): ShapeError {
  return new ShapeError(
    ErrorCode.TENSOR_RANGE,
    `tensor "${name}": value ${value} at index ${index} is outside the ${codec} range (|x| <= ${max}); use bf16 or fp32 for it`,
  );
}

/**
 * Throws for the first non-finite element of `values`, naming the tensor, codec and index.
 * Float32 bits with all exponent bits set are ±Inf or NaN; checking bits avoids float compares.
 * @throws ShapeError E_TENSOR_NON_FINITE.
 */
export function checkFinite(name: string, codec: string, values: Float32Array): void {
  const bits = new Int32Array(values.buffer, values.byteOffset, values.length);
  // A flag instead of a throw inside the loop: a throw site in a hot loop makes V8's code 2-3x slower here.
  let bad = 0;
  for (let i = 0; i < bits.length; i++) bad |= (bits[i] & 0x7f800000) === 0x7f800000 ? 1 : 0;
  if (bad !== 0) throwFirstNonFinite(name, codec, values);
}

/**
 * Throws the E_TENSOR_NON_FINITE error for the first non-finite element of `values` (call once a fast pass
 * has found one).
 */
export function throwFirstNonFinite(name: string, codec: string, values: Float32Array): never {
  let i = 0;
  while (i < values.length && Number.isFinite(values[i])) i++;
  throw nonFiniteError(name, codec, i, values[i]);
}

/** @throws CodecError naming the tensor when its byte length does not match what the codec needs. */
export function byteLengthError(name: string, codec: string, shape: readonly number[], got: number, expected: number | string): CodecError {
  return new CodecError(`tensor "${name}": ${got} bytes for shape [${shape.join(', ')}] as ${codec} (expected ${expected})`);
}

/**
 * `data` as an ArrayBuffer-backed view whose byte offset is a multiple of `align`: `data` itself when it already is,
 * else one copy.
 */
export function alignedBytes(data: Uint8Array, align: number): Uint8Array {
  if (data.byteOffset % align === 0) return data;
  const copy = new Uint8Array(data.byteLength);
  copy.set(data);
  return copy;
}

/** The bytes of a typed array, as a Uint8Array view (no copy). */
export function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * `byteLength` uninitialised bytes in an ArrayBuffer of their own (byte offset 0): for outputs the caller
 * overwrites in full. Unlike `new Uint8Array(n)` this skips zeroing, and large sizes often reuse freed memory
 * instead of faulting in fresh pages.
 */
export function uninitBytes(byteLength: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(byteLength);
  return new Uint8Array(b.buffer, b.byteOffset, byteLength);
}

/**
 * The bytes an encoder writes: `into` when given, else {@link uninitBytes}.
 * @param align the byte alignment `into` must have (2 for fp16/bf16, 4 for int8).
 * @throws CodecError naming the tensor when `into` does not hold exactly `byteLength` bytes or is misaligned.
 */
export function outputBytes(name: string, codec: string, byteLength: number, align: number, into: Uint8Array | undefined): Uint8Array {
  if (into === undefined) return uninitBytes(byteLength);
  if (into.byteLength !== byteLength || into.byteOffset % align !== 0) {
    throw new CodecError(
      `tensor "${name}": output buffer of ${into.byteLength} bytes at offset ${into.byteOffset} for ${codec}, expected ${byteLength} bytes ${align}-aligned`,
    );
  }
  return into;
}

/**
 * The array a decoder writes: `into` when given, else a fresh one of `n` elements.
 * @throws ShapeError E_TENSOR_SHAPE naming the tensor when `into` does not hold exactly `n` elements.
 */
export function target(name: string, n: number, into: Float32Array | undefined): Float32Array {
  return into === undefined ? new Float32Array(n) : checkedInto(name, n, into);
}

/**
 * As {@link target}, but a fresh array is left uninitialised ({@link uninitBytes}): for decoders that write
 * every element.
 * @throws ShapeError E_TENSOR_SHAPE naming the tensor when `into` does not hold exactly `n` elements.
 */
export function denseTarget(name: string, n: number, into: Float32Array | undefined): Float32Array {
  if (into !== undefined) return checkedInto(name, n, into);
  const bytes = uninitBytes(n * 4);
  return new Float32Array(bytes.buffer, 0, n);
}

function checkedInto(name: string, n: number, into: Float32Array): Float32Array {
  if (into.length !== n) throw new ShapeError(ErrorCode.TENSOR_SHAPE, `tensor "${name}": output array has ${into.length} elements, expected ${n}`);
  return into;
}
