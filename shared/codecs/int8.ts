/**
 * The `int8` codec: blockwise absmax quantisation. Per block of `blockSize` consecutive elements (row-major; the
 * last block may be shorter) one float32 scale s = absmax/127, rounded up to a float32, and one int8
 * q = round(x/s) in [-127, 127] per element (halves round up). Layout: ceil(n/blockSize) little-endian float32
 * scales, then the n int8 values (so the scales stay 4-aligned when the data is).
 *
 * Error bound: |x − x̂| <= absmax_block/254 per element, plus float32 rounding of the scale and of x̂ (at most
 * 2^-22·absmax_block + 2^-148 in all; the last term matters only for a denormal scale). A zero block decodes to
 * exact zeros. ±Inf and NaN are refused.
 */
import { CodecError } from '../errors.js';
import { alignedBytes, byteLengthError, checkHost, elementCount, target, throwFirstNonFinite } from './common.js';
import { DEFAULT_INT8_BLOCK_SIZE, MAX_INT8_BLOCK_SIZE } from './spec.js';

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** The smallest float32 >= `v` (v finite, >= 0). */
function float32AtLeast(v: number): number {
  scratch[0] = v;
  if (scratch[0] < v) scratchBits[0] += 1;
  return scratch[0];
}

/** The largest float32 s' < `s` with 127·s' finite in float32 (s finite, > 0; only reached near FLT_MAX). */
function float32Below(s: number): number {
  scratch[0] = s;
  do scratchBits[0] -= 1;
  while (Math.fround(127 * scratch[0]) === Infinity);
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
  const bits = new Int32Array(values.buffer, values.byteOffset, n);
  let bad = 0;
  for (let b = 0, start = 0; b < numBlocks; b++, start += blockSize) {
    const end = Math.min(start + blockSize, n);
    // The max of the magnitude bits is the bits of the max magnitude (IEEE order), and integer compares run
    // much faster than Math.abs on floats; bits >= 0x7f800000 are ±Inf or NaN.
    let maxBits = 0;
    for (let i = start; i < end; i++) {
      const a = bits[i] & 0x7fffffff;
      maxBits = a > maxBits ? a : maxBits;
    }
    // No throw inside the loops (it slows V8's code 2-3x): flag, finish, then report the first bad index.
    bad |= maxBits >= 0x7f800000 ? 1 : 0;
    if (maxBits === 0 || maxBits >= 0x7f800000) continue; // scale 0, values 0: already zeroed
    scratchBits[0] = maxBits;
    const absmax = scratch[0];
    // Rounding the scale up keeps |x/s| <= 127, so no value needs clamping; a scale so large that 127·s would
    // overflow float32 is stepped down (|x/s| then exceeds 127 by a few ulps at most, which still rounds to 127).
    let s = float32AtLeast(absmax / 127);
    if (Math.fround(127 * s) === Infinity) s = float32Below(s);
    scales[b] = s;
    const inv = 1 / s;
    // round(y) as floor(y + 0.5) via truncation of a positive number (Math.round is 4x slower here); unrolled
    // by 4 because the per-iteration loop overhead dominates short blocks.
    const end4 = start + ((end - start) & ~3);
    let i = start;
    for (; i < end4; i += 4) {
      q[i] = ((values[i] * inv + 128.5) | 0) - 128;
      q[i + 1] = ((values[i + 1] * inv + 128.5) | 0) - 128;
      q[i + 2] = ((values[i + 2] * inv + 128.5) | 0) - 128;
      q[i + 3] = ((values[i + 3] * inv + 128.5) | 0) - 128;
    }
    for (; i < end; i++) q[i] = ((values[i] * inv + 128.5) | 0) - 128;
  }
  if (bad !== 0) throwFirstNonFinite(name, 'int8', values);
  return out;
}

/**
 * Decodes blockwise int8 bytes to a fresh Float32Array, or into `into` (prod(shape) long) when given.
 * @param blockSize the blob's block size. @default 64
 * @throws CodecError naming the tensor when the byte length does not match the shape and block size, or the
 *   block size is bad.
 */
export function decodeInt8(
  name: string,
  shape: readonly number[],
  data: Uint8Array,
  blockSize = DEFAULT_INT8_BLOCK_SIZE,
  into?: Float32Array,
): Float32Array {
  checkHost();
  checkBlockSize(name, blockSize);
  const n = elementCount(name, shape);
  const expected = int8ByteLength(n, blockSize);
  if (data.byteLength !== expected) throw byteLengthError(name, `int8 (block size ${blockSize})`, shape, data.byteLength, expected);
  const bytes = alignedBytes(data, 4);
  const numBlocks = Math.ceil(n / blockSize);
  const scales = new Float32Array(bytes.buffer, bytes.byteOffset, numBlocks);
  const q = new Int8Array(bytes.buffer, bytes.byteOffset + numBlocks * 4, n);
  const out = target(name, n, into);
  for (let b = 0, start = 0; b < numBlocks; b++, start += blockSize) {
    const end = Math.min(start + blockSize, n);
    const s = scales[b];
    const end4 = start + ((end - start) & ~3);
    let i = start;
    for (; i < end4; i += 4) {
      out[i] = q[i] * s;
      out[i + 1] = q[i + 1] * s;
      out[i + 2] = q[i + 2] * s;
      out[i + 3] = q[i + 3] * s;
    }
    for (; i < end; i++) out[i] = q[i] * s;
  }
  return out;
}
