import { describe, expect, it } from 'vitest';
import { sumContributions, sumWeightedUpdates } from '../../../coordinator/aggregation.js';

const manifest = [{ name: 'w', shape: [2] }];
const stats = (lossSum: number, n: number) => ({ lossSum, numSamples: n, numLossItems: n, numTokens: 10 * n, numCorrect: 1 });

describe('sumContributions', () => {
  it('adds gradient sums element-wise in float64 and adds the counts', () => {
    const summed = sumContributions(
      [
        { grads: new Map([['w', Float32Array.from([1, 2])]]), stats: stats(3, 2) },
        { grads: new Map([['w', Float32Array.from([0.5, -1])]]), stats: stats(1, 1) },
      ],
      manifest,
    );
    expect([...summed.gradSum.get('w')!]).toEqual([1.5, 1]);
    expect(summed.stats).toEqual({ lossSum: 4, numSamples: 3, numLossItems: 3, numTokens: 30, numCorrect: 2 });
  });
  it('refuses a contribution that lacks a manifest tensor', () => {
    expect(() => sumContributions([{ grads: new Map(), stats: stats(1, 1) }], manifest)).toThrow(/"w"/);
  });
});

describe('sumWeightedUpdates', () => {
  it('weights each worker update by its loss-bearing items, so dividing by the total is the weighted mean', () => {
    const summed = sumWeightedUpdates(
      [
        { grads: new Map([['w', Float32Array.from([1, 2])]]), stats: stats(3, 3) },
        { grads: new Map([['w', Float32Array.from([-1, 0.5])]]), stats: stats(1, 1) },
      ],
      manifest,
    );
    expect([...summed.gradSum.get('w')!]).toEqual([2, 6.5]);
    expect(summed.stats.numLossItems).toBe(4);
    expect(() => sumWeightedUpdates([{ grads: new Map(), stats: stats(1, 1) }], manifest)).toThrow(/"w"/);
  });
});
