/**
 * bf16 conversion against an oracle that picks the nearer of the two bfloat16 neighbours by exact arithmetic
 * (ties to the even pattern), plus NaN handling of the scalar helper.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bf16BitsToFloat, decodeTensor, encodeTensor, floatToBf16Bits } from '../../../../shared/codecs/index.js';
import { FC_OPTIONS, finiteFloat } from './arbitraries.js';

function f32Bits(x: number): number {
  return new Uint32Array(Float32Array.of(x).buffer)[0];
}

/** The nearest bf16 pattern by comparing distances to both neighbours (doubles hold float32 values exactly). */
function oracle(x: number): number {
  const lo = f32Bits(x) >>> 16;
  const hi = lo + 1;
  const dLo = Math.abs(x - bf16BitsToFloat(lo));
  const dHi = Math.abs(x - bf16BitsToFloat(hi & 0xffff));
  if (dLo < dHi) return lo;
  if (dHi < dLo) return hi & 0xffff;
  return lo % 2 === 0 ? lo : hi & 0xffff;
}

describe('bf16', () => {
  it('matches the nearest-neighbour oracle (ties to even) on random floats, denormals and huge values included', () => {
    fc.assert(
      fc.property(fc.array(finiteFloat(3.38e38), { maxLength: 200 }), (xs) => {
        const values = Float32Array.from(xs);
        const blob = encodeTensor('b', [values.length], values, { codec: 'bf16' });
        expect(Array.from(new Uint16Array(blob.data.buffer, 0, values.length))).toEqual(Array.from(values, oracle));
        const back = decodeTensor(blob);
        expect(Array.from(back)).toEqual(Array.from(new Uint16Array(blob.data.buffer, 0, values.length), bf16BitsToFloat));
      }),
      FC_OPTIONS,
    );
  });

  it('rounds exact midpoints to the even pattern', () => {
    expect(floatToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // between 0x3f80 and 0x3f81: even
    expect(floatToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // between 0x3f81 and 0x3f82: even
    expect(floatToBf16Bits(-(1 + 2 ** -8))).toBe(0xbf80);
  });

  it('the scalar helper keeps every NaN a NaN (never rounds one into an infinity)', () => {
    for (const pattern of [0x7f800001, 0x7fffffff, 0xff800001, 0x7fc00000]) {
      const nan = new Float32Array(Uint32Array.of(pattern).buffer)[0];
      expect(Number.isNaN(bf16BitsToFloat(floatToBf16Bits(nan)))).toBe(true);
    }
    expect(bf16BitsToFloat(floatToBf16Bits(Infinity))).toBe(Infinity);
  });
});
