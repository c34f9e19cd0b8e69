/**
 * The `fp32` codec: raw little-endian float32, 4 bytes per element, lossless. Encoding and decoding never copy
 * (decoding copies once when the data's byte offset is not 4-aligned).
 */
import { alignedBytes, byteLengthError, bytesOf, checkFinite, checkHost, elementCount, target } from './common.js';

/**
 * The bytes of `values` (a view: do not mutate `values` until the frame is encoded).
 * @throws ShapeError E_TENSOR_NON_FINITE naming the tensor and the first bad index.
 */
export function encodeFp32(name: string, values: Float32Array): Uint8Array {
  checkHost();
  checkFinite(name, 'fp32', values);
  return bytesOf(values);
}

/**
 * The values of fp32 bytes: a view of `data` when 4-aligned, else one copy; with `into`, a copy into it.
 * @throws CodecError naming the tensor when the byte length is not 4·prod(shape).
 */
export function decodeFp32(name: string, shape: readonly number[], data: Uint8Array, into?: Float32Array): Float32Array {
  checkHost();
  const n = elementCount(name, shape);
  if (data.byteLength !== n * 4) throw byteLengthError(name, 'fp32', shape, data.byteLength, n * 4);
  if (into !== undefined) {
    const out = target(name, n, into);
    bytesOf(out).set(data);
    return out;
  }
  const bytes = alignedBytes(data, 4);
  return new Float32Array(bytes.buffer, bytes.byteOffset, n);
}
