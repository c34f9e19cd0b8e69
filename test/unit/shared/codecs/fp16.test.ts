/**
 * fp16 bit conversion against independent oracles: every one of the 65,536 half patterns round-trips, and
 * encoding matches shared/formats/float16.ts (a separate, scalar round-half-even implementation) on random floats.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeTensor, encodeTensor, floatToFp16Bits, fp16BitsToFloat } from '../../../../shared/codecs/index.js';
import { floatToHalf, halfToFloat } from '../../../../shared/formats/float16.js';
import { FC_OPTIONS } from './arbitraries.js';

function encodeBits(values: Float32Array): number[] {
  const blob = encodeTensor('h', [values.length], values, { codec: 'fp16' });
  return Array.from(new Uint16Array(blob.data.buffer, blob.data.byteOffset, values.length));
}

describe('fp16', () => {
  it('decodes every finite half pattern to its value and encodes it back to the same bits', () => {
    const finite: number[] = [];
    for (let h = 0; h < 65536; h++) {
      if (((h >>> 10) & 0x1f) === 0x1f) continue;
      expect(fp16BitsToFloat(h)).toBe(halfToFloat(h));
      finite.push(h);
    }
    const values = Float32Array.from(finite, (h) => halfToFloat(h));
    expect(encodeBits(values)).toEqual(finite);
    const back = decodeTensor(encodeTensor('h', [values.length], values, { codec: 'fp16' }));
    expect(Array.from(back)).toEqual(Array.from(values));
  });

  it('rounds half to even at midpoints between neighbours (normal and subnormal)', () => {
    const cases: Array<[number, number]> = [
      [1 + 2 ** -11, 0x3c00], // halfway between 1 and 1+2^-10: even is 1
      [1 + 3 * 2 ** -11, 0x3c02], // halfway between 1+2^-10 and 1+2^-9: even is the upper
      [2 ** -25, 0x0000], // halfway between 0 and the smallest subnormal: even is 0
      [3 * 2 ** -25, 0x0002], // halfway between subnormals 1 and 2: even is 2
      [2 ** -25 * 1.0000001, 0x0001],
      [65519, 0x7bff], // just under the overflow midpoint
    ];
    for (const [x, h] of cases) {
      expect(floatToFp16Bits(x)).toBe(h);
      expect(encodeBits(Float32Array.of(x))).toEqual([h]);
      expect(encodeBits(Float32Array.of(-x))).toEqual([h | 0x8000]);
    }
  });

  it('matches the scalar reference on random floats in range', () => {
    fc.assert(
      fc.property(fc.array(fc.float({ noNaN: true, min: -65504, max: 65504 }), { maxLength: 200 }), (xs) => {
        const values = Float32Array.from(xs);
        expect(encodeBits(values)).toEqual(Array.from(values, (x) => floatToHalf(x)));
      }),
      FC_OPTIONS,
    );
  });

  it('the scalar helper keeps NaN NaN and overflows to infinity (the tensor encoder refuses both)', () => {
    expect(Number.isNaN(fp16BitsToFloat(floatToFp16Bits(NaN)))).toBe(true);
    expect(fp16BitsToFloat(floatToFp16Bits(1e6))).toBe(Infinity);
    expect(fp16BitsToFloat(floatToFp16Bits(-Infinity))).toBe(-Infinity);
  });
});
