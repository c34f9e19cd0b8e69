/**
 * The `int8` codec: blockwise absmax quantisation. Per block of `blockSize` consecutive elements (row-major; the
 * last block may be shorter) one float32 scale s = absmax/127, rounded up to a float32, and one int8
 * q = round(x/s) in [-127, 127] per element. Layout: ceil(n/blockSize) little-endian float32 scales, then the
 * n int8 values (so the scales stay 4-aligned when the data is).
 *
 * Error bound: |x − x̂| <= absmax_block/254 per element, up to float32 rounding (relative 2^-23 of absmax_block,
 * plus 2^-149 when the scale is a float32 denormal). A zero block decodes to zeros exactly. ±Inf and NaN are refused.
 */
import { CodecError } from '../errors.js';
import { alignedBytes, byteLengthError, checkHost, elementCount, nonFiniteError } from './common.js';
import { DEFAULT_INT8_BLOCK_SIZE, MAX_INT8_BLOCK_SIZE } from './spec.js';

const F32_MAX = 3.4028234663852886e38;
const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** The smallest float32 >= `v` (v finite, >= 0). */
function float32AtLeast(v: number): number {
  scratch[0] = v;
  if (scratch[0] < v) scratchBits[0] += 1;
  return scratch[0];
}

/** Bytes an int8-coded tensor of `n` elements takes. */
export function int8ByteLength(n: number, blockSize: number): number {
  return Math.ceil(n / blockSize) * 4 + n;
}

function checkBlockSize(name: string, blockSize: number): void {
  if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > MAX_INT8_BLOCK_SIZE) {
    throw new CodecError(`tensor "${name}": int8 block size ${blockSize} is not an integer in 1..${MAX_INT8_BLOCK_SIZE}`);
  }
}

/**
 * Encodes float32 values as blockwise int8 (a fresh buffer of {@link int8ByteLength} bytes).
 * @param blockSize elements per scale. @default 64
 * @throws ShapeError E_TENSOR_NON_FINITE naming the tensor and the first bad index; CodecError for a bad block size.
 */
export function encodeInt8(name: string, values: Float32Array, blockSize = DEFAULT_INT8_BLOCK_SIZE): Uint8Array {
  checkHost();
  checkBlockSize(name, blockSize);
  const n = values.length;
  const numBlocks = Math.ceil(n / blockSize);
  const out = new Uint8Array(numBlocks * 4 + n);
  const scales = new Float32Array(out.buffer, 0, numBlocks);
  const q = new Int8Array(out.buffer, numBlocks * 4, n);
  for (let b = 0, start = 0; b < numBlocks; b++, start += blockSize) {
    const end = Math.min(start + blockSize, n);
    let absmax = 0;
    for (let i = start; i < end; i++) {
      const a = Math.abs(values[i]);
      // `!(a <= absmax)` is also true for NaN, so one compare both tracks the max and catches non-finite input.
      if (!(a <= absmax)) {
        if (!(a <= F32_MAX)) throw nonFiniteError(name, 'int8', i, values[i]);
        absmax = a;
      }
    }
    if (absmax === 0) continue; // scale 0, values 0: already zeroed
    // Rounding the scale up keeps |x/s| <= 127, so no value needs clamping; a scale so large that 127·s would
    // overflow float32 is stepped back down (then round() may give ±127.5 → clamped below).
    let s = float32AtLeast(absmax / 127);
    if (Math.fround(127 * s) === Infinity) s = Math.fround(absmax / 127);
    scales[b] = s;
    const inv = 1 / s;
    for (let i = start; i < end; i++) {
      const r = Math.round(values[i] * inv);
      q[i] = r > 127 ? 127 : r < -127 ? -127 : r;
    }
  }
  return out;
}

/**
 * Decodes blockwise int8 bytes to a fresh Float32Array.
 * @param blockSize the blob's block size. @default 64
 * @throws CodecError naming the tensor when the byte length does not match the shape and block size, or the
 *   block size is bad.
 */
export function decodeInt8(name: string, shape: readonly number[], data: Uint8Array, blockSize = DEFAULT_INT8_BLOCK_SIZE): Float32Array {
  checkHost();
  checkBlockSize(name, blockSize);
  const n = elementCount(name, shape);
  const expected = int8ByteLength(n, blockSize);
  if (data.byteLength !== expected) throw byteLengthError(name, `int8 (block size ${blockSize})`, shape, data.byteLength, expected);
  const bytes = alignedBytes(data, 4);
  const numBlocks = Math.ceil(n / blockSize);
  const scales = new Float32Array(bytes.buffer, bytes.byteOffset, numBlocks);
  const q = new Int8Array(bytes.buffer, bytes.byteOffset + numBlocks * 4, n);
  const out = new Float32Array(n);
  for (let b = 0, start = 0; b < numBlocks; b++, start += blockSize) {
    const end = Math.min(start + blockSize, n);
    const s = scales[b];
    for (let i = start; i < end; i++) out[i] = q[i] * s;
  }
  return out;
}
