import { describe, expect, it } from 'vitest';
import { mixSeeds, seededPermutation } from '../../../../shared/data/seeded-random.js';

describe('seededPermutation', () => {
  it('is a permutation, and the same for the same seed', () => {
    const a = seededPermutation(1000, 42);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(seededPermutation(1000, 42)).toEqual(a);
    expect(seededPermutation(1000, 43)).not.toEqual(a);
  });

  it('is pinned: the order must not change between releases (splits are logged in run manifests)', () => {
    expect(Array.from(seededPermutation(8, 1))).toMatchInlineSnapshot(`
      [
        2,
        1,
        6,
        7,
        4,
        3,
        0,
        5,
      ]
    `);
  });

  it('handles 0 and 1 items', () => {
    expect(seededPermutation(0, 1)).toEqual(new Int32Array(0));
    expect(seededPermutation(1, 1)).toEqual(Int32Array.of(0));
  });

  it('moves every position with roughly uniform probability', () => {
    // Position of item 0 over many seeds: each of 4 slots should get about 1/4.
    const counts = [0, 0, 0, 0];
    for (let seed = 0; seed < 4000; seed++) counts[seededPermutation(4, seed).indexOf(0)] += 1;
    for (const count of counts) expect(count).toBeGreaterThan(850);
  });
});

describe('mixSeeds', () => {
  it('gives different streams for neighbouring inputs and is order-sensitive', () => {
    const seeds = new Set([mixSeeds(42, 0), mixSeeds(42, 1), mixSeeds(43, 0), mixSeeds(0, 42)]);
    expect(seeds.size).toBe(4);
    expect(mixSeeds(42, 1)).toBe(mixSeeds(42, 1));
    expect(Number.isInteger(mixSeeds(-5, 2 ** 40))).toBe(true);
  });
});
