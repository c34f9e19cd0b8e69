/**
 * fast-check arbitraries for the codec property tests: shapes of rank 0–3 and float32 values mixing zeros, ±0,
 * denormals, tiny and huge magnitudes and ordinary gradient-sized numbers.
 */
import fc from 'fast-check';

/** Seeded runs: every failure reproduces. */
export const FC_OPTIONS = { seed: 20261127, numRuns: 150 } as const;

/** A shape of rank 0..3 with dimensions 0..9 (so up to 729 elements, empty tensors included). */
export const shapeArb = fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 0, maxLength: 3 });

const F32_MAX = 3.4028234663852886e38;

/** One float32 value, finite, with magnitudes up to `maxAbs`. */
export function finiteFloat(maxAbs = F32_MAX): fc.Arbitrary<number> {
  const max = Math.fround(maxAbs);
  return fc.oneof(
    { arbitrary: fc.float({ noNaN: true, noDefaultInfinity: true, min: -max, max }), weight: 4 },
    { arbitrary: fc.float({ noNaN: true, min: Math.fround(-0.05), max: Math.fround(0.05) }), weight: 4 },
    { arbitrary: fc.constantFrom(0, -0, 1.4e-45, -1.4e-45, 1.1754942e-38, 5.96e-8, 2.98e-8, 6.1035e-5), weight: 1 },
  );
}

/** A shape and float32 values filling it. */
export function tensorArb(maxAbs = F32_MAX): fc.Arbitrary<{ shape: number[]; values: Float32Array }> {
  return shapeArb.chain((shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return fc
      .array(finiteFloat(maxAbs), { minLength: n, maxLength: n })
      .map((xs) => ({ shape, values: Float32Array.from(xs) }));
  });
}

/** The stable code of a thrown error (or 'none'). */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code ?? 'no code';
  }
  return 'none';
}

/** The message of a thrown error (or ''). */
export function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  return '';
}
