/**
 * IEEE 754 half precision (fp16) and bfloat16 conversions for file formats (GGUF, safetensors).
 * Node 20 has no Float16Array, so values travel as raw uint16 bit patterns.
 */

let halfTable: Float32Array | undefined;

/** Decodes one fp16 bit pattern to a float (subnormals, infinities and NaN included). */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** The 65,536-entry fp16 → f32 table, built on first use (256 KiB). */
function table(): Float32Array {
  if (halfTable === undefined) {
    halfTable = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) halfTable[i] = halfToFloat(i);
  }
  return halfTable;
}

/** Decodes the little-endian fp16 value at `byteOffset` of `bytes`. */
export function f16At(bytes: Uint8Array, byteOffset: number): number {
  return table()[bytes[byteOffset] | (bytes[byteOffset + 1] << 8)];
}

/**
 * Decodes `count` little-endian fp16 values starting at `byteOffset` of `bytes`.
 * @returns a new Float32Array of length `count`.
 */
export function decodeF16(bytes: Uint8Array, byteOffset: number, count: number): Float32Array {
  const t = table();
  const out = new Float32Array(count);
  for (let i = 0, p = byteOffset; i < count; i++, p += 2) out[i] = t[bytes[p] | (bytes[p + 1] << 8)];
  return out;
}

/**
 * Decodes `count` little-endian bfloat16 values starting at `byteOffset` of `bytes` (the high half of an f32).
 * @returns a new Float32Array of length `count`.
 */
export function decodeBf16(bytes: Uint8Array, byteOffset: number, count: number): Float32Array {
  const out = new Float32Array(count);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0, p = byteOffset; i < count; i++, p += 2) outBits[i] = ((bytes[p] | (bytes[p + 1] << 8)) << 16) >>> 0;
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * Encodes a float as the nearest fp16 bit pattern (round half to even; overflow → ±Infinity; NaN kept).
 */
export function floatToHalf(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  // Unbiased exponent, rebiased for fp16.
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    // Subnormal: shift the implicit-one mantissa into place, rounding half to even.
    mant |= 0x800000;
    const shift = 14 - e;
    const halfMant = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    const rounded = rest > halfway || (rest === halfway && (halfMant & 1) === 1) ? halfMant + 1 : halfMant;
    return sign | rounded;
  }
  const halfMant = mant >>> 13;
  const rest = mant & 0x1fff;
  let bits = sign | (e << 10) | halfMant;
  // Carry from rounding may bump the exponent, which is the correct result (up to Infinity).
  if (rest > 0x1000 || (rest === 0x1000 && (halfMant & 1) === 1)) bits += 1;
  return bits;
}
