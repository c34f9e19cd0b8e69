/**
 * The `fp16` codec: IEEE 754 binary16, 2 bytes per element little-endian, round to nearest even.
 *
 * Error bound: |x − x̂| <= 2^-11·|x| for |x| >= 2^-14 (the normal fp16 range) and <= 2^-25 below it (subnormals
 * and flush to zero). Finite values with |x| >= 65520 (which would round to infinity) are refused, as are ±Inf
 * and NaN: nothing non-finite is ever encoded.
 */
import { alignedBytes, byteLengthError, bytesOf, checkHost, denseTarget, elementCount, nonFiniteError, outputBytes, rangeError } from './common.js';
import { SIMD_MIN_ELEMENTS, decodeHalves, encodeHalves, simdKernels } from './simd-kernels.js';

/** The largest finite fp16 value. */
export const FP16_MAX = 65504;

let decodeTable: Int32Array | undefined;

/** float32 bit patterns of all 65,536 fp16 values (256 KiB, built on first use; Int32 so loads stay small integers). */
function table(): Int32Array {
  if (decodeTable === undefined) {
    const t = new Int32Array(65536);
    const f = new Float32Array(t.buffer);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const exp = (h >>> 10) & 0x1f;
      const mant = h & 0x3ff;
      if (exp === 0) f[h] = sign * mant * 2 ** -24;
      else if (exp === 0x1f) t[h] = ((h & 0x8000) << 16) | 0x7f800000 | (mant << 13);
      else f[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
    }
    decodeTable = t;
  }
  return decodeTable;
}

/** fp16 bits of a float32 whose magnitude bits `a` are below 2^-14 (the subnormal fp16 range), sign cleared. */
function subnormalHalf(a: number): number {
  // At or below 2^-25 (half the smallest subnormal; the tie goes to even, i.e. zero) everything flushes to zero.
  if (a <= 0x33000000) return 0;
  const mant = (a & 0x7fffff) | 0x800000;
  const shift = 126 - (a >>> 23);
  const half = mant >>> shift;
  const rest = mant & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  return rest > halfway || (rest === halfway && (half & 1) === 1) ? half + 1 : half;
}

/**
 * The fp16 bit pattern nearest to `value` (ties to even). Overflow gives ±Inf and NaN stays NaN: use
 * {@link encodeFp16} for tensors, which refuses both.
 */
export function floatToFp16Bits(value: number): number {
  const bits = new Uint32Array(Float32Array.of(value).buffer)[0];
  const sign = (bits >>> 16) & 0x8000;
  const a = bits & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00;
  if (a >= 0x477ff000) return sign | 0x7c00;
  if (a >= 0x38800000) return sign | ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13);
  return sign | subnormalHalf(a);
}

/** The float value of an fp16 bit pattern. */
export function fp16BitsToFloat(bits: number): number {
  return new Float32Array(table().buffer)[bits & 0xffff];
}

/**
 * Encodes float32 values as fp16 (a fresh buffer of 2n bytes, or `into`: 2n bytes, 2-aligned; WebAssembly
 * SIMD where available).
 * @throws ShapeError E_TENSOR_NON_FINITE for ±Inf/NaN, E_TENSOR_RANGE for |x| >= 65520, naming the tensor and index;
 *   CodecError for a wrong-sized or misaligned `into`.
 */
export function encodeFp16(name: string, values: Float32Array, into?: Uint8Array): Uint8Array {
  checkHost();
  const n = values.length;
  const src = new Int32Array(values.buffer, values.byteOffset, n);
  const bytes = outputBytes(name, 'fp16', n * 2, 2, into);
  const simd = n >= SIMD_MIN_ELEMENTS ? simdKernels() : undefined;
  // Out-of-range and non-finite inputs raise a flag rather than throw inside the loop (a throw site there makes
  // V8's code 2-3x slower); the first bad index is found afterwards.
  let bad: number;
  if (simd !== undefined) {
    bad = encodeHalves(simd, simd.fp16Encode, bytesOf(values), bytes, n) >= 0x477ff000 ? 1 : 0;
  } else {
    const out = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
    bad = 0;
    for (let i = 0; i < n; i++) {
      const x = src[i];
      const a = x & 0x7fffffff;
      bad |= a >= 0x477ff000 ? 1 : 0;
      // Normal range: rebias the exponent (127 → 15) and round the 13 dropped mantissa bits to nearest even; a
      // carry out of the mantissa correctly bumps the exponent.
      out[i] =
        ((x >>> 16) & 0x8000) | (a >= 0x38800000 ? (a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13 : subnormalHalf(a));
    }
  }
  if (bad !== 0) {
    let i = 0;
    while ((src[i] & 0x7fffffff) < 0x477ff000) i++;
    throw refuse(name, i, values[i]);
  }
  return bytes;
}

function refuse(name: string, index: number, value: number): Error {
  return Number.isFinite(value) ? rangeError(name, 'fp16', index, value, FP16_MAX) : nonFiniteError(name, 'fp16', index, value);
}

/**
 * Decodes fp16 bytes to a fresh Float32Array, or into `into` when given (infinities and NaN bits decode as such: validate afterwards).
 * @throws CodecError naming the tensor when the byte length is not 2·prod(shape).
 */
export function decodeFp16(name: string, shape: readonly number[], data: Uint8Array, into?: Float32Array): Float32Array {
  checkHost();
  const n = elementCount(name, shape);
  if (data.byteLength !== n * 2) throw byteLengthError(name, 'fp16', shape, data.byteLength, n * 2);
  const out = denseTarget(name, n, into);
  const simd = n >= SIMD_MIN_ELEMENTS ? simdKernels() : undefined;
  if (simd !== undefined) {
    decodeHalves(simd, simd.fp16Decode, data, bytesOf(out), n);
    return out;
  }
  const bytes = alignedBytes(data, 2);
  const src = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  const outBits = new Int32Array(out.buffer, out.byteOffset, n);
  const t = table();
  for (let i = 0; i < n; i++) outBits[i] = t[src[i]];
  return out;
}
