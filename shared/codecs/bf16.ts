/**
 * The `bf16` codec: bfloat16 (the high 16 bits of a float32), 2 bytes per element little-endian, round to
 * nearest even.
 *
 * Error bound: |x − x̂| <= 2^-8·|x| for normal float32 values and <= 2^-134 for float32 denormals. Finite values
 * with |x| >= 0x1.ffp127 (which would round to infinity) are refused, as are ±Inf and NaN.
 */
import { alignedBytes, byteLengthError, bytesOf, checkHost, denseTarget, elementCount, nonFiniteError, outputBytes, rangeError } from './common.js';
import { SIMD_MIN_ELEMENTS, decodeHalves, encodeHalves, simdKernels } from './simd-kernels.js';

/** The largest finite bf16 value (≈ 3.3895e38). */
export const BF16_MAX = 3.3895313892515355e38;

/**
 * The bf16 bit pattern nearest to `value` (ties to even). NaN stays NaN (a quiet NaN, never rounded into an
 * infinity); overflow gives ±Inf. Use {@link encodeBf16} for tensors, which refuses both.
 */
export function floatToBf16Bits(value: number): number {
  const x = new Uint32Array(Float32Array.of(value).buffer)[0];
  if ((x & 0x7fffffff) > 0x7f800000) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The float value of a bf16 bit pattern. */
export function bf16BitsToFloat(bits: number): number {
  return new Float32Array(Uint32Array.of((bits & 0xffff) << 16).buffer)[0];
}

/**
 * Encodes float32 values as bf16 (a fresh buffer of 2n bytes, or `into`: 2n bytes, 2-aligned; WebAssembly
 * SIMD where available).
 * @throws ShapeError E_TENSOR_NON_FINITE for ±Inf/NaN, E_TENSOR_RANGE for values that round to infinity, naming
 *   the tensor and index; CodecError for a wrong-sized or misaligned `into`.
 */
export function encodeBf16(name: string, values: Float32Array, into?: Uint8Array): Uint8Array {
  checkHost();
  const n = values.length;
  const src = new Int32Array(values.buffer, values.byteOffset, n);
  const bytes = outputBytes(name, 'bf16', n * 2, 2, into);
  const simd = n >= SIMD_MIN_ELEMENTS ? simdKernels() : undefined;
  // Out-of-range and non-finite inputs raise a flag rather than throw inside the loop (a throw site there makes
  // V8's code 2-3x slower); the first bad index is found afterwards.
  let bad: number;
  if (simd !== undefined) {
    bad = encodeHalves(simd, simd.bf16Encode, bytesOf(values), bytes, n) >= 0x7f7f8000 ? 1 : 0;
  } else {
    const out = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
    bad = 0;
    for (let i = 0; i < n; i++) {
      const x = src[i];
      bad |= (x & 0x7fffffff) >= 0x7f7f8000 ? 1 : 0;
      // Adding 0x7fff plus the kept lsb rounds the dropped half to nearest even; no carry reaches the sign
      // because the largest accepted magnitude stays below the infinity pattern.
      out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
    }
  }
  if (bad !== 0) {
    let i = 0;
    while ((src[i] & 0x7fffffff) < 0x7f7f8000) i++;
    throw refuse(name, i, values[i]);
  }
  return bytes;
}

function refuse(name: string, index: number, value: number): Error {
  return Number.isFinite(value) ? rangeError(name, 'bf16', index, value, BF16_MAX) : nonFiniteError(name, 'bf16', index, value);
}

/**
 * Decodes bf16 bytes to a fresh Float32Array, or into `into` when given (infinities and NaN bits decode as such: validate afterwards).
 * @throws CodecError naming the tensor when the byte length is not 2·prod(shape).
 */
export function decodeBf16(name: string, shape: readonly number[], data: Uint8Array, into?: Float32Array): Float32Array {
  checkHost();
  const n = elementCount(name, shape);
  if (data.byteLength !== n * 2) throw byteLengthError(name, 'bf16', shape, data.byteLength, n * 2);
  const out = denseTarget(name, n, into);
  const simd = n >= SIMD_MIN_ELEMENTS ? simdKernels() : undefined;
  if (simd !== undefined) {
    decodeHalves(simd, simd.bf16Decode, data, bytesOf(out), n);
    return out;
  }
  const bytes = alignedBytes(data, 2);
  const src = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  const outBits = new Int32Array(out.buffer, out.byteOffset, n);
  for (let i = 0; i < n; i++) outBits[i] = src[i] << 16;
  return out;
}
