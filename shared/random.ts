/**
 * Small seeded pseudo-random generators, so that tests, synthetic models and shard plans are reproducible.
 */

/** A function returning uniform floats in [0, 1). */
export type Rng = () => number;

/**
 * mulberry32: a fast 32-bit seeded generator (period 2^32), good enough for initialisation and sampling, not
 * for cryptography.
 * @param seed any number; only its low 32 bits are used.
 * @returns a generator of uniform floats in [0, 1).
 */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One standard normal sample N(0, 1) by the Box–Muller transform (uses two draws of `rng`).
 */
export function randomNormal(rng: Rng): number {
  // 1 - u keeps the logarithm's argument in (0, 1].
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
