/**
 * The `topk` codec: the k = max(1, ceil(density·n)) elements of largest magnitude (k = 0 when n = 0), as k
 * little-endian uint32 indices in strictly increasing order followed by their k float32 values (8k bytes).
 * Kept entries decode exactly; every other element decodes to 0. Ties at the threshold magnitude keep the lowest
 * indices, so the choice is deterministic. ±Inf and NaN are refused.
 *
 * Selection is O(n): a two-pass radix select on the magnitude bits (for non-negative floats the uint32 bit
 * pattern orders like the value), then one pass to gather.
 */
import { CodecError } from '../errors.js';
import { alignedBytes, checkHost, throwFirstNonFinite, elementCount, MAX_CODED_ELEMENTS, target } from './common.js';
import { DEFAULT_TOPK_DENSITY } from './spec.js';

/** How many elements topk keeps of `n` at `density`. */
export function topkCount(n: number, density: number): number {
  if (n === 0) return 0;
  return Math.min(n, Math.max(1, Math.ceil(density * n)));
}

// Reused histograms: 2^15 bins for the high magnitude bits, 2^16 for the low ones.
const highCounts = new Uint32Array(1 << 15);
const lowCounts = new Uint32Array(1 << 16);

/**
 * The magnitude-bit threshold of the k-th largest element and how many of the kept elements sit exactly at it
 * (the rest lie strictly above).
 */
function selectThreshold(bits: Int32Array, k: number): { threshold: number; atThreshold: number; isFinite: boolean } {
  const n = bits.length;
  highCounts.fill(0);
  // The first pass also flags ±Inf/NaN (magnitude bits >= 0x7f800000); no throw in the loop, V8 runs it slower.
  let bad = 0;
  for (let i = 0; i < n; i++) {
    const high = (bits[i] & 0x7fffffff) >>> 16;
    bad |= high >= 0x7f80 ? 1 : 0;
    highCounts[high]++;
  }
  if (bad !== 0) return { threshold: 0, atThreshold: 0, isFinite: false };
  let above = 0;
  let high = highCounts.length - 1;
  while (above + highCounts[high] < k) above += highCounts[high--];
  lowCounts.fill(0);
  for (let i = 0; i < n; i++) {
    const a = bits[i] & 0x7fffffff;
    if (a >>> 16 === high) lowCounts[a & 0xffff]++;
  }
  let low = lowCounts.length - 1;
  while (above + lowCounts[low] < k) above += lowCounts[low--];
  return { threshold: (high << 16) | low, atThreshold: k - above, isFinite: true };
}

/**
 * Encodes the k largest magnitudes of `values` (a fresh buffer of 8k bytes).
 * @param density fraction kept, in (0, 1]. @default 0.01
 * @throws ShapeError E_TENSOR_NON_FINITE naming the tensor and the first bad index; CodecError for a bad density.
 */
export function encodeTopk(name: string, values: Float32Array, density = DEFAULT_TOPK_DENSITY): Uint8Array {
  checkHost();
  if (!(density > 0 && density <= 1)) throw new CodecError(`tensor "${name}": topk density ${density} is not in (0, 1]`);
  const n = values.length;
  const k = topkCount(n, density);
  const out = new Uint8Array(8 * k);
  if (k === 0) return out;
  const bits = new Int32Array(values.buffer, values.byteOffset, n);
  const indices = new Uint32Array(out.buffer, 0, k);
  const kept = new Float32Array(out.buffer, 4 * k, k);
  const { threshold, atThreshold, isFinite } = selectThreshold(bits, k);
  if (!isFinite) throwFirstNonFinite(name, 'topk', values);
  let ties = atThreshold;
  for (let i = 0, j = 0; j < k; i++) {
    const a = bits[i] & 0x7fffffff;
    if (a > threshold || (a === threshold && ties-- > 0)) {
      indices[j] = i;
      kept[j++] = values[i];
    }
  }
  return out;
}

/**
 * Indices (strictly increasing) of the k largest entries of `scores`, ties at the threshold keeping the lowest
 * indices, as {@link encodeTopk} chooses them. Lets a caller rank by something other than the values it sends
 * (a preconditioned magnitude, or one ranking over several tensors laid end to end).
 * @param scores non-negative finite magnitudes (their sign bit is ignored).
 * @param k how many to keep, clamped to [0, scores.length].
 * @throws CodecError when a score is ±Inf or NaN.
 */
export function selectTopkIndices(scores: Float32Array, k: number): Uint32Array {
  const n = scores.length;
  const count = Math.max(0, Math.min(n, Math.floor(k)));
  const indices = new Uint32Array(count);
  if (count === 0) return indices;
  const bits = new Int32Array(scores.buffer, scores.byteOffset, n);
  const { threshold, atThreshold, isFinite } = selectThreshold(bits, count);
  if (!isFinite) throw new CodecError(`topk selection: a score is not finite (${count} of ${n} requested)`);
  let ties = atThreshold;
  for (let i = 0, j = 0; j < count; i++) {
    const a = bits[i] & 0x7fffffff;
    if (a > threshold || (a === threshold && ties-- > 0)) indices[j++] = i;
  }
  return indices;
}

/**
 * Encodes `values` at the given `indices` in the topk layout (8·indices.length bytes): what {@link encodeTopk}
 * writes when its selection is made elsewhere (e.g. by {@link selectTopkIndices}).
 * @throws CodecError when the indices are not strictly increasing below values.length;
 *   ShapeError E_TENSOR_NON_FINITE when a kept value is ±Inf or NaN.
 */
export function encodeTopkAt(name: string, values: Float32Array, indices: Uint32Array): Uint8Array {
  checkHost();
  const k = indices.length;
  const out = new Uint8Array(8 * k);
  const outIndices = new Uint32Array(out.buffer, 0, k);
  const kept = new Float32Array(out.buffer, 4 * k, k);
  let previous = -1;
  for (let j = 0; j < k; j++) {
    const i = indices[j];
    if (i <= previous || i >= values.length) {
      throw new CodecError(`tensor "${name}": topk index ${i} at entry ${j} is not increasing and below ${values.length}`);
    }
    if (!Number.isFinite(values[i])) throwFirstNonFinite(name, 'topk', values);
    outIndices[j] = i;
    kept[j] = values[i];
    previous = i;
  }
  return out;
}

/**
 * Decodes topk bytes to a fresh Float32Array of prod(shape) elements (or into `into`, which is overwritten),
 * zero except at the kept indices.
 * @throws CodecError naming the tensor when the byte length is not a multiple of 8, holds more entries than
 *   elements, the shape exceeds {@link MAX_CODED_ELEMENTS}, or the indices are not strictly increasing below n.
 */
export function decodeTopk(name: string, shape: readonly number[], data: Uint8Array, into?: Float32Array): Float32Array {
  checkHost();
  const n = elementCount(name, shape);
  const k = data.byteLength / 8;
  if (!Number.isInteger(k) || k > n) {
    throw new CodecError(
      `tensor "${name}": ${data.byteLength} bytes for shape [${shape.join(', ')}] as topk (expected 8·k bytes with k <= ${n})`,
    );
  }
  if (n > MAX_CODED_ELEMENTS) throw new CodecError(`tensor "${name}": topk shape [${shape.join(', ')}] exceeds ${MAX_CODED_ELEMENTS} elements`);
  const bytes = alignedBytes(data, 4);
  const indices = new Uint32Array(bytes.buffer, bytes.byteOffset, k);
  const kept = new Float32Array(bytes.buffer, bytes.byteOffset + 4 * k, k);
  const out = target(name, n, into);
  if (into !== undefined) out.fill(0);
  let previous = -1;
  for (let j = 0; j < k; j++) {
    const i = indices[j];
    if (i <= previous || i >= n) {
      throw new CodecError(`tensor "${name}": topk index ${i} at entry ${j} is not increasing and below ${n}`);
    }
    out[i] = kept[j];
    previous = i;
  }
  return out;
}
