import { describe, expect, it } from 'vitest';
import { mulberry32, randomNormal } from '../../../shared/random.js';

describe('mulberry32', () => {
  it('is reproducible from its seed and differs between seeds', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const c = mulberry32(43);
    const sa = Array.from({ length: 5 }, a);
    expect(Array.from({ length: 5 }, b)).toEqual(sa);
    expect(Array.from({ length: 5 }, c)).not.toEqual(sa);
  });

  it('gives uniform floats in [0, 1) (mean and range over 100k draws)', () => {
    const rng = mulberry32(1);
    let sum = 0;
    let min = 1;
    let max = 0;
    for (let i = 0; i < 100_000; i++) {
      const x = rng();
      sum += x;
      min = Math.min(min, x);
      max = Math.max(max, x);
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    expect(sum / 100_000).toBeCloseTo(0.5, 2);
  });
});

describe('randomNormal', () => {
  it('has mean 0 and standard deviation 1 (100k draws)', () => {
    const rng = mulberry32(7);
    let sum = 0;
    let sq = 0;
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const x = randomNormal(rng);
      sum += x;
      sq += x * x;
    }
    expect(Number.isFinite(sum)).toBe(true);
    expect(Math.abs(sum / n)).toBeLessThan(0.02);
    expect(Math.sqrt(sq / n - (sum / n) ** 2)).toBeCloseTo(1, 1);
  });
});
