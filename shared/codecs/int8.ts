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
import { alignedBytes, byteLengthError, checkHost, denseTarget, elementCount, outputBytes, throwFirstNonFinite } from './common.js';
import { CHUNK_ELEMENTS, SIMD_MIN_ELEMENTS, simdKernels, type SimdKernels } from './simd-kernels.js';
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

/**
 * The scale of a block whose largest |x| has the float32 bits `maxBits` (0 < maxBits < 0x7f800000): absmax/127
 * rounded up to a float32, so |x/s| <= 127 and no value needs clamping; a scale so large that 127·s would
 * overflow float32 is stepped down (|x/s| then exceeds 127 by a few ulps at most, which still rounds to 127).
 */
function blockScale(maxBits: number): number {
  scratchBits[0] = maxBits;
  const s = float32AtLeast(scratch[0] / 127);
  return Math.fround(127 * s) === Infinity ? float32Below(s) : s;
}

/** Whether the SIMD kernels can take this block size (whole 16-element steps, at least one block per chunk). */
function simdBlockSize(blockSize: number): boolean {
  return blockSize % 16 === 0 && blockSize <= CHUNK_ELEMENTS;
}

/**
 * The full blocks of `values` through the SIMD kernels: scales into `scales`, codes into `q`.
 * @returns 1 when some block holds ±Inf or NaN (its scale and codes are then 0), else 0.
 */
function encodeBlocksSimd(k: SimdKernels, values: Float32Array, blockSize: number, scales: Float32Array, q: Int8Array): number {
  const fullBlocks = Math.floor(values.length / blockSize);
  const perChunk = Math.floor(CHUNK_ELEMENTS / blockSize);
  const src = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const mem = k.bytes;
  const qBytes = new Uint8Array(q.buffer, q.byteOffset, q.length);
  let bad = 0;
  for (let b0 = 0; b0 < fullBlocks; b0 += perChunk) {
    const blocks = Math.min(perChunk, fullBlocks - b0);
    const start = b0 * blockSize;
    const count = blocks * blockSize;
    mem.set(src.subarray(start * 4, (start + count) * 4), k.inOffset);
    k.int8Absmax(blocks, blockSize);
    const lanes = k.blockMax;
    for (let j = 0; j < blocks; j++) {
      const maxBits = Math.max(lanes[4 * j], lanes[4 * j + 1], lanes[4 * j + 2], lanes[4 * j + 3]);
      bad |= maxBits >= 0x7f800000 ? 1 : 0;
      // A zero (or refused) block: scale 0 and 1/scale 0, so every code is trunc(128.5) − 128 = 0.
      const s = maxBits === 0 || maxBits >= 0x7f800000 ? 0 : blockScale(maxBits);
      scales[b0 + j] = s;
      k.blockInv[j] = s === 0 ? 0 : 1 / s;
    }
    k.int8Quantize(blocks, blockSize);
    qBytes.set(mem.subarray(k.outOffset, k.outOffset + count), start);
  }
  return bad;
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
 * Encodes float32 values as blockwise int8 (a fresh buffer of {@link int8ByteLength} bytes, or `into`: that many
 * bytes, 4-aligned; WebAssembly SIMD for block sizes that are multiples of 16).
 * @param blockSize elements per scale. @default 64
 * @throws ShapeError E_TENSOR_NON_FINITE naming the tensor and the first bad index; CodecError for a bad block size
 *   or a wrong-sized or misaligned `into`.
 */
export function encodeInt8(name: string, values: Float32Array, blockSize = DEFAULT_INT8_BLOCK_SIZE, into?: Uint8Array): Uint8Array {
  checkHost();
  checkBlockSize(name, blockSize);
  const n = values.length;
  const numBlocks = Math.ceil(n / blockSize);
  const out = outputBytes(name, 'int8', numBlocks * 4 + n, 4, into);
  const scales = new Float32Array(out.buffer, out.byteOffset, numBlocks);
  const q = new Int8Array(out.buffer, out.byteOffset + numBlocks * 4, n);
  // With blocks of a multiple of 4 every block starts on a word: 4 codes go out in one 32-bit store.
  const q32 = blockSize % 4 === 0 ? new Int32Array(out.buffer, out.byteOffset + numBlocks * 4, n >>> 2) : undefined;
  const bits = new Int32Array(values.buffer, values.byteOffset, n);
  let bad = 0;
  let first = 0;
  const simd = n >= SIMD_MIN_ELEMENTS && simdBlockSize(blockSize) ? simdKernels() : undefined;
  if (simd !== undefined) {
    bad = encodeBlocksSimd(simd, values, blockSize, scales, q);
    first = Math.floor(n / blockSize); // the last, partial block (if any) goes through the scalar code
  }
  for (let b = first, start = first * blockSize; b < numBlocks; b++, start += blockSize) {
    const end = Math.min(start + blockSize, n);
    const end4 = start + ((end - start) & ~3);
    // The max of the magnitude bits is the bits of the max magnitude (IEEE order), and integer compares run
    // much faster than Math.abs on floats; bits >= 0x7f800000 are ±Inf or NaN. Four running maxima break the
    // dependency chain.
    let m0 = 0;
    let m1 = 0;
    let m2 = 0;
    let m3 = 0;
    let i = start;
    for (; i < end4; i += 4) {
      const a0 = bits[i] & 0x7fffffff;
      const a1 = bits[i + 1] & 0x7fffffff;
      const a2 = bits[i + 2] & 0x7fffffff;
      const a3 = bits[i + 3] & 0x7fffffff;
      m0 = a0 > m0 ? a0 : m0;
      m1 = a1 > m1 ? a1 : m1;
      m2 = a2 > m2 ? a2 : m2;
      m3 = a3 > m3 ? a3 : m3;
    }
    for (; i < end; i++) {
      const a = bits[i] & 0x7fffffff;
      m0 = a > m0 ? a : m0;
    }
    const maxBits = Math.max(m0, m1, m2, m3);
    // No throw inside the loops (it slows V8's code 2-3x): flag, finish, then report the first bad index.
    bad |= maxBits >= 0x7f800000 ? 1 : 0;
    if (maxBits === 0 || maxBits >= 0x7f800000) {
      // Scale 0, values 0 (the output is not pre-zeroed).
      scales[b] = 0;
      q.fill(0, start, end);
      continue;
    }
    const s = blockScale(maxBits);
    scales[b] = s;
    const inv = 1 / s;
    // round(y) as floor(y + 0.5) via truncation of a positive number (Math.round is 4x slower here): y + 128.5
    // lies in [1.5, 255.5], so each truncation is one byte 1..255 and XOR 0x80 turns it into the int8 y.
    i = start;
    if (q32 !== undefined) {
      for (; i < end4; i += 4) {
        q32[i >>> 2] =
          (((values[i] * inv + 128.5) | 0) |
            (((values[i + 1] * inv + 128.5) | 0) << 8) |
            (((values[i + 2] * inv + 128.5) | 0) << 16) |
            (((values[i + 3] * inv + 128.5) | 0) << 24)) ^
          0x80808080;
      }
    }
    for (; i < end; i++) q[i] = ((values[i] * inv + 128.5) | 0) - 128;
  }
  if (bad !== 0) throwFirstNonFinite(name, 'int8', values);
  return out;
}

/**
 * The full blocks of `q` through the SIMD kernel into `out`.
 * @returns the number of blocks decoded (the scalar code does the rest).
 */
function decodeBlocksSimd(k: SimdKernels, scales: Float32Array, q: Int8Array, blockSize: number, out: Float32Array): number {
  const fullBlocks = Math.floor(q.length / blockSize);
  const perChunk = Math.floor(CHUNK_ELEMENTS / blockSize);
  const qBytes = new Uint8Array(q.buffer, q.byteOffset, q.length);
  const outBytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  const mem = k.bytes;
  for (let b0 = 0; b0 < fullBlocks; b0 += perChunk) {
    const blocks = Math.min(perChunk, fullBlocks - b0);
    const start = b0 * blockSize;
    const count = blocks * blockSize;
    mem.set(qBytes.subarray(start, start + count), k.inOffset);
    k.blockScale.set(scales.subarray(b0, b0 + blocks));
    k.int8Dequantize(blocks, blockSize);
    outBytes.set(mem.subarray(k.outOffset, k.outOffset + count * 4), start * 4);
  }
  return fullBlocks;
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
  const out = denseTarget(name, n, into);
  let first = 0;
  const simd = n >= SIMD_MIN_ELEMENTS && simdBlockSize(blockSize) ? simdKernels() : undefined;
  if (simd !== undefined) first = decodeBlocksSimd(simd, scales, q, blockSize, out);
  // As in encoding: with blocks of a multiple of 4, read 4 codes per 32-bit load and sign-extend each byte.
  const q32 = blockSize % 4 === 0 ? new Int32Array(bytes.buffer, bytes.byteOffset + numBlocks * 4, n >>> 2) : undefined;
  for (let b = first, start = first * blockSize; b < numBlocks; b++, start += blockSize) {
    const end = Math.min(start + blockSize, n);
    const s = scales[b];
    const end4 = start + ((end - start) & ~3);
    let i = start;
    if (q32 !== undefined) {
      for (; i < end4; i += 4) {
        const w = q32[i >>> 2];
        out[i] = ((w << 24) >> 24) * s;
        out[i + 1] = ((w << 16) >> 24) * s;
        out[i + 2] = ((w << 8) >> 24) * s;
        out[i + 3] = (w >> 24) * s;
      }
    } else {
      for (; i < end4; i += 4) {
        out[i] = q[i] * s;
        out[i + 1] = q[i + 1] * s;
        out[i + 2] = q[i + 2] * s;
        out[i + 3] = q[i + 3] * s;
      }
    }
    for (; i < end; i++) out[i] = q[i] * s;
  }
  return out;
}
