/**
 * Seeded data order: permutations that are identical on every platform and in every process, so that a split or a
 * batch order is a pure function of its seed.
 */
import { mulberry32 } from '../random.js';

/**
 * One 32-bit seed from several integers (a base seed and a stream id such as an epoch), mixed with the murmur3
 * finaliser so that neighbouring inputs give unrelated streams.
 */
export function mixSeeds(...parts: readonly number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    h = Math.imul(h ^ (part >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/**
 * A uniformly random permutation of `0 .. n-1` (Fisher–Yates driven by mulberry32 from shared/random.ts).
 *
 * @param n number of items, an integer >= 0.
 * @param seed 32-bit seed; the same seed always gives the same permutation.
 */
export function seededPermutation(n: number, seed: number): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const random = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const held = order[i];
    order[i] = order[j];
    order[j] = held;
  }
  return order;
}
