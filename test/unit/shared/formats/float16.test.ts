import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBf16, decodeF16, floatToHalf, halfToFloat } from '../../../../shared/formats/float16.js';

describe('fp16', () => {
  it('decodes known bit patterns (one, max, min subnormal, infinities, NaN, -0)', () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(halfToFloat(0xfc00)).toBe(-Infinity);
    expect(halfToFloat(0x7e00)).toBeNaN();
    expect(Object.is(halfToFloat(0x8000), -0)).toBe(true);
  });

  it('encodes with round-half-to-even and overflow to infinity', () => {
    expect(floatToHalf(1)).toBe(0x3c00);
    expect(floatToHalf(65504)).toBe(0x7bff);
    expect(floatToHalf(65520)).toBe(0x7c00); // halfway to the next binade rounds up to Infinity
    expect(floatToHalf(1e6)).toBe(0x7c00);
    expect(floatToHalf(-Infinity)).toBe(0xfc00);
    expect(halfToFloat(floatToHalf(NaN))).toBeNaN();
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00); // tie between 1 and 1+2^-10: even mantissa wins
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(floatToHalf(2 ** -25)).toBe(0); // tie between 0 and the smallest subnormal
    expect(floatToHalf(3 * 2 ** -25)).toBe(0x0002);
  });

  it('every fp16 value survives decode → encode (all 65,536 patterns but NaNs)', () => {
    const mismatches: number[] = [];
    for (let bits = 0; bits < 65536; bits++) {
      const v = halfToFloat(bits);
      if (!Number.isNaN(v) && floatToHalf(v) !== bits) mismatches.push(bits);
    }
    expect(mismatches).toEqual([]);
  });

  it('encode picks a nearest fp16 value (property)', () => {
    fc.assert(
      fc.property(fc.float({ min: -60000, max: 60000, noNaN: true }), (x) => {
        const h = halfToFloat(floatToHalf(x));
        const err = Math.abs(h - x);
        // Neighbours one ulp away are no closer.
        const bits = floatToHalf(x);
        for (const n of [bits - 1, bits + 1]) {
          if (n >= 0 && n < 65536 && !Number.isNaN(halfToFloat(n))) expect(err).toBeLessThanOrEqual(Math.abs(halfToFloat(n) - x));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('decodeF16 reads little-endian values at an offset', () => {
    const bytes = Uint8Array.from([0xff, 0x00, 0x3c, 0x00, 0xc0]);
    expect(Array.from(decodeF16(bytes, 1, 2))).toEqual([1, -2]);
  });
});

describe('bf16', () => {
  it('is the high half of an f32', () => {
    const bytes = Uint8Array.from([0x80, 0x3f, 0x00, 0xc0, 0x49, 0x40]);
    expect(Array.from(decodeBf16(bytes, 0, 3))).toEqual([1, -2, 3.140625]);
  });
});
