import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  emptyBuffer,
  FEDBUFF_WEIGHTING,
  offerArrival,
  replayArrivals,
  stalenessWeight,
  type Arrival,
  type StalenessWeighting,
} from '../../../../coordinator/federated/staleness.js';
import { ConfigError, ErrorCode } from '../../../../shared/errors.js';

describe('stalenessWeight', () => {
  it('matches the formulas of FedBuff and FedAsync', () => {
    for (let s = 0; s <= 30; s++) {
      expect(stalenessWeight(s, { kind: 'constant' })).toBe(1);
      expect(stalenessWeight(s, FEDBUFF_WEIGHTING)).toBeCloseTo(1 / Math.sqrt(1 + s), 15);
      expect(stalenessWeight(s, { kind: 'polynomial', exponent: 2 })).toBeCloseTo(1 / ((1 + s) * (1 + s)), 15);
      const hinge = s <= 4 ? 1 : 1 / (10 * (s - 4) + 1);
      expect(stalenessWeight(s, { kind: 'hinge', slope: 10, cutoff: 4 })).toBeCloseTo(hinge, 15);
    }
    expect(stalenessWeight(0, { kind: 'polynomial', exponent: 0 })).toBe(1);
  });

  it('refuses bad staleness and parameters with E_CONFIG_INVALID', () => {
    const bad: [number, StalenessWeighting][] = [
      [-1, { kind: 'constant' }],
      [1.5, { kind: 'constant' }],
      [1, { kind: 'polynomial', exponent: -0.5 }],
      [1, { kind: 'hinge', slope: Number.NaN, cutoff: 4 }],
      [1, { kind: 'hinge', slope: 10, cutoff: -1 }],
      [1, { kind: 'linear' } as unknown as StalenessWeighting],
    ];
    for (const [s, weighting] of bad) {
      expect(() => stalenessWeight(s, weighting)).toThrow(ConfigError);
      try {
        stalenessWeight(s, weighting);
      } catch (err) {
        expect((err as ConfigError).code).toBe(ErrorCode.CONFIG_INVALID);
      }
    }
  });
});

/** The FedBuff server loop written out plainly: buffer until K, Δ = Σ w_i g(s_i) Δ_i / Σ w_i, version + 1. */
function referenceFedBuff(arrivals: { update: number; weight: number; baseVersion: number }[], K: number, exponent: number, maxStaleness: number) {
  let version = 0;
  let buffer: { update: number; weight: number; s: number }[] = [];
  const aggregates: number[] = [];
  let dropped = 0;
  for (const a of arrivals) {
    const s = version - a.baseVersion;
    if (s < 0 || s > maxStaleness) {
      dropped++;
      continue;
    }
    buffer.push({ update: a.update, weight: a.weight, s });
    if (buffer.length === K) {
      let num = 0;
      let den = 0;
      for (const b of buffer) {
        num += b.weight * Math.pow(1 + b.s, -exponent) * b.update;
        den += b.weight;
      }
      aggregates.push(den > 0 ? num / den : 0);
      buffer = [];
      version++;
    }
  }
  return { version, aggregates, pending: buffer.length, dropped };
}

describe('FedBuff buffer', () => {
  it('aggregates every K arrivals with staleness-discounted weights', () => {
    const arrivals: Arrival<string>[] = [
      { update: 'a', weight: 1, baseVersion: 0 },
      { update: 'b', weight: 1, baseVersion: 0 },
      { update: 'c', weight: 1, baseVersion: 0 }, // K-th: aggregate, version 0 → 1
      { update: 'd', weight: 2, baseVersion: 0 }, // staleness 1
      { update: 'e', weight: 1, baseVersion: 1 },
      { update: 'f', weight: 1, baseVersion: 2 }, // from the future: dropped
      { update: 'g', weight: 1, baseVersion: 1 },
    ];
    const { state, flushes, dropped } = replayArrivals(arrivals, { bufferSize: 3 });
    expect(flushes.map((f) => [f.fromVersion, f.toVersion])).toEqual([
      [0, 1],
      [1, 2],
    ]);
    expect(flushes[0].contributions.map((c) => c.aggregationWeight)).toEqual([1 / 3, 1 / 3, 1 / 3]);
    const second = flushes[1].contributions;
    expect(second.map((c) => [c.update, c.staleness])).toEqual([
      ['d', 1],
      ['e', 0],
      ['g', 0],
    ]);
    expect(second[0].aggregationWeight).toBeCloseTo((2 * Math.SQRT1_2) / 4, 15);
    expect(second[1].aggregationWeight).toBeCloseTo(1 / 4, 15);
    expect(dropped).toEqual([{ arrival: arrivals[5], reason: 'future_version', staleness: -1 }]);
    expect(state).toEqual(emptyBuffer(2));
  });

  it('relative normalisation makes the weights a convex combination', () => {
    const state = { version: 5, pending: [{ update: 0, weight: 3, baseVersion: 2, staleness: 3 }] };
    const outcome = offerArrival(state, { update: 1, weight: 1, baseVersion: 5 }, { bufferSize: 2, normalization: 'relative' });
    expect(outcome.kind).toBe('aggregate');
    if (outcome.kind !== 'aggregate') return;
    const weights = outcome.flush.contributions.map((c) => c.aggregationWeight);
    expect(weights[0] + weights[1]).toBeCloseTo(1, 15);
    expect(weights[0] / weights[1]).toBeCloseTo((3 * 0.5) / 1, 12);
    expect(state.pending).toHaveLength(1); // the input state is untouched
  });

  it('drops arrivals staler than maxStaleness and ones with invalid weights', () => {
    const state = emptyBuffer<number>(10);
    expect(offerArrival(state, { update: 0, weight: 1, baseVersion: 6 }, { bufferSize: 2, maxStaleness: 3 })).toMatchObject({ kind: 'dropped', reason: 'too_stale', staleness: 4 });
    expect(offerArrival(state, { update: 0, weight: 1, baseVersion: 7 }, { bufferSize: 2, maxStaleness: 3 })).toMatchObject({ kind: 'buffered' });
    expect(offerArrival(state, { update: 0, weight: -1, baseVersion: 9 }, { bufferSize: 2 })).toMatchObject({ kind: 'dropped', reason: 'invalid_weight' });
    expect(offerArrival(state, { update: 0, weight: Number.NaN, baseVersion: 9 }, { bufferSize: 2 })).toMatchObject({ kind: 'dropped', reason: 'invalid_weight' });
  });

  it('all-zero weights aggregate to no change instead of NaN', () => {
    const { flushes } = replayArrivals([{ update: 1, weight: 0, baseVersion: 0 }], { bufferSize: 1 });
    expect(flushes[0].contributions[0].aggregationWeight).toBe(0);
  });

  it('refuses invalid options', () => {
    for (const options of [{ bufferSize: 0 }, { bufferSize: 1.5 }, { bufferSize: 2, maxStaleness: -1 }, { bufferSize: 2, weighting: { kind: 'polynomial', exponent: -1 } as const }]) {
      expect(() => offerArrival(emptyBuffer(), { update: 0, weight: 1, baseVersion: 0 }, options)).toThrow(/buffer size|max staleness|exponent/);
    }
  });

  it('equals the plain FedBuff loop on random arrival streams (property)', () => {
    const arrivalArb = fc.record({
      update: fc.double({ min: -10, max: 10, noNaN: true }),
      weight: fc.double({ min: 0, max: 100, noNaN: true }),
      lag: fc.integer({ min: -1, max: 6 }),
    });
    fc.assert(
      fc.property(fc.array(arrivalArb, { maxLength: 60 }), fc.integer({ min: 1, max: 5 }), fc.double({ min: 0, max: 2, noNaN: true }), fc.integer({ min: 0, max: 5 }), (raw, K, exponent, maxStaleness) => {
        // Base versions depend on the version reached so far, so build the stream alongside the reference.
        const arrivals: { update: number; weight: number; baseVersion: number }[] = [];
        let version = 0;
        let count = 0;
        for (const r of raw) {
          const baseVersion = version - r.lag;
          arrivals.push({ update: r.update, weight: r.weight, baseVersion });
          const s = version - baseVersion;
          if (s >= 0 && s <= maxStaleness && ++count === K) {
            count = 0;
            version++;
          }
        }
        const reference = referenceFedBuff(arrivals, K, exponent, maxStaleness);
        const ours = replayArrivals(arrivals, { bufferSize: K, maxStaleness, weighting: { kind: 'polynomial', exponent } });
        expect(ours.state.version).toBe(reference.version);
        expect(ours.state.pending).toHaveLength(reference.pending);
        expect(ours.dropped).toHaveLength(reference.dropped);
        const aggregates = ours.flushes.map((f) => f.contributions.reduce((sum, c) => sum + c.aggregationWeight * c.update, 0));
        expect(aggregates).toHaveLength(reference.aggregates.length);
        aggregates.forEach((value, i) => expect(value).toBeCloseTo(reference.aggregates[i], 9));
      }),
      { numRuns: 300, seed: 3 },
    );
  });
});
