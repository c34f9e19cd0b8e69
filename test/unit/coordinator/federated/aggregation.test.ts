import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { centeredClipping } from '../../../../coordinator/federated/aggregation/centered-clipping.js';
import { coordinateMedian, trimmedMean } from '../../../../coordinator/federated/aggregation/coordinate-wise.js';
import { krum, multiKrum } from '../../../../coordinator/federated/aggregation/krum.js';
import { weightedMean } from '../../../../coordinator/federated/aggregation/weighted-mean.js';
import type { WeightedUpdate } from '../../../../coordinator/federated/types.js';
import { ErrorCode } from '../../../../shared/errors.js';
import { flat, maxAbsDiff, randomSpecs, randomUpdates } from './random-updates.js';

// Independent references: flat float64 vectors and naive loops, no code shared with the implementation.
const vectors = (updates: WeightedUpdate[], specs: ReturnType<typeof randomSpecs>) => updates.map((u) => flat(u.deltas, specs));

function refWeightedMean(xs: number[][], ws: number[]): number[] {
  const total = ws.reduce((a, b) => a + b, 0);
  return xs[0].map((_, j) => xs.reduce((s, x, i) => s + ws[i] * x[j], 0) / total);
}
function refMedian(xs: number[][]): number[] {
  return xs[0].map((_, j) => {
    const col = xs.map((x) => x[j]).sort((a, b) => a - b);
    const n = col.length;
    return n % 2 ? col[(n - 1) / 2] : (col[n / 2 - 1] + col[n / 2]) / 2;
  });
}
function refTrimmed(xs: number[][], beta: number): number[] {
  const cut = Math.floor(beta * xs.length);
  return xs[0].map((_, j) => {
    const kept = xs.map((x) => x[j]).sort((a, b) => a - b).slice(cut, xs.length - cut);
    return kept.reduce((a, b) => a + b, 0) / kept.length;
  });
}
function refKrumScores(xs: number[][], f: number): number[] {
  const n = xs.length;
  const k = Math.min(n - 1, Math.max(1, n - f - 2));
  return xs.map((x, i) => {
    const d = xs.filter((_, j) => j !== i).map((y) => x.reduce((s, v, t) => s + (v - y[t]) ** 2, 0));
    return d.sort((a, b) => a - b).slice(0, k).reduce((a, b) => a + b, 0);
  });
}
function refCenteredClipping(xs: number[][], tau: number, iters: number, start?: number[]): number[] {
  let v = start ? [...start] : xs[0].map(() => 0);
  for (let l = 0; l < iters; l++) {
    const next = [...v];
    for (const x of xs) {
      const diff = x.map((xj, j) => xj - v[j]);
      const norm = Math.sqrt(diff.reduce((s, d) => s + d * d, 0));
      const c = Math.min(1, tau / norm);
      diff.forEach((d, j) => (next[j] += (c * d) / xs.length));
    }
    v = next;
  }
  return v;
}

const caseArb = fc.record({ seed: fc.integer(), n: fc.integer({ min: 1, max: 9 }), numTensors: fc.integer({ min: 1, max: 3 }) });

describe('federated aggregation functions equal plain reference computations', () => {
  it('weightedMean is Σ w_i x_i / Σ w_i (FedAvg)', () => {
    fc.assert(
      fc.property(caseArb, ({ seed, n, numTensors }) => {
        const specs = randomSpecs(seed, numTensors);
        const updates = randomUpdates(seed + 1, n, specs, 1, true);
        if (updates.every((u) => u.weight === 0)) updates[0] = { ...updates[0], weight: 1 };
        const got = flat(weightedMean(updates, specs), specs);
        const want = refWeightedMean(vectors(updates, specs), updates.map((u) => u.weight));
        expect(maxAbsDiff(got, want)).toBeLessThan(1e-12);
      }),
      { numRuns: 100 },
    );
  });

  it('coordinateMedian is the per-coordinate median (FedMedian)', () => {
    fc.assert(
      fc.property(caseArb, ({ seed, n, numTensors }) => {
        const specs = randomSpecs(seed, numTensors);
        const updates = randomUpdates(seed + 1, n, specs);
        expect(maxAbsDiff(flat(coordinateMedian(updates, specs), specs), refMedian(vectors(updates, specs)))).toBe(0);
      }),
      { numRuns: 100 },
    );
  });

  it('trimmedMean cuts floor(β·n) per side and averages the rest (FedTrimmedAvg)', () => {
    fc.assert(
      fc.property(caseArb, fc.double({ min: 0, max: 0.49, noNaN: true }), ({ seed, n, numTensors }, beta) => {
        const specs = randomSpecs(seed, numTensors);
        const updates = randomUpdates(seed + 1, n, specs);
        const got = flat(trimmedMean(updates, specs, beta), specs);
        expect(maxAbsDiff(got, refTrimmed(vectors(updates, specs), beta))).toBeLessThan(1e-12);
      }),
      { numRuns: 100 },
    );
  });

  it('krum picks the update with the least sum of squared distances to its n−f−2 nearest; multiKrum averages the m best', () => {
    fc.assert(
      fc.property(caseArb, fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 9 }), ({ seed, n, numTensors }, f, m) => {
        const specs = randomSpecs(seed, numTensors);
        const updates = randomUpdates(seed + 1, n, specs);
        const xs = vectors(updates, specs);
        const scores = refKrumScores(xs, f);
        const order = scores.map((s, i) => [s, i]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((p) => p[1]);
        const single = krum(updates, specs, f);
        expect(single.selected).toEqual([updates[order[0]].clientId]);
        expect(maxAbsDiff(flat(single.aggregate, specs), xs[order[0]])).toBe(0);
        expect(maxAbsDiff(single.scores, scores)).toBeLessThan(1e-9);
        const keep = Math.min(m, n);
        const multi = multiKrum(updates, specs, f, keep);
        const kept = order.slice(0, keep);
        const want = keep === 1 ? xs[kept[0]] : refWeightedMean(kept.map((i) => xs[i]), kept.map((i) => updates[i].weight));
        expect(maxAbsDiff(flat(multi.aggregate, specs), want)).toBeLessThan(1e-12);
      }),
      { numRuns: 100 },
    );
  });

  it('centeredClipping iterates v ← v + mean clip_τ(x_i − v) from zero or from a start point', () => {
    fc.assert(
      fc.property(
        caseArb,
        fc.double({ min: 0.05, max: 20, noNaN: true }),
        fc.integer({ min: 1, max: 5 }),
        fc.boolean(),
        ({ seed, n, numTensors }, tau, iters, withStart) => {
          const specs = randomSpecs(seed, numTensors);
          const updates = randomUpdates(seed + 1, n, specs, 2);
          const start = withStart
            ? new Map(specs.map(({ name }, i) => [name, Float64Array.from(updates[0].deltas.get(name)!, (v) => v * 0.5 + i)]))
            : undefined;
          const got = flat(centeredClipping(updates, specs, { radius: tau, iterations: iters, start }), specs);
          const want = refCenteredClipping(vectors(updates, specs), tau, iters, start ? flat(start, specs) : undefined);
          expect(maxAbsDiff(got, want)).toBeLessThan(1e-9);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('federated aggregation input checks', () => {
  const specs = [{ name: 'w', shape: [2, 2] }];
  const update = (clientId: string, values: number[], weight = 1): WeightedUpdate => ({
    clientId,
    weight,
    deltas: new Map([['w', Float32Array.from(values)]]),
  });

  it('refuses a zero total weight with E_AGGREGATION_ZERO_WEIGHT and returns nothing', () => {
    expect(() => weightedMean([update('a', [1, 2, 3, 4], 0), update('b', [1, 2, 3, 4], 0)], specs)).toThrow(
      expect.objectContaining({ code: ErrorCode.AGGREGATION_ZERO_WEIGHT, name: 'AggregationError' }),
    );
    for (const fn of [() => weightedMean([], specs), () => coordinateMedian([], specs), () => krum([], specs, 0)]) {
      expect(fn).toThrow(expect.objectContaining({ code: ErrorCode.AGGREGATION_ZERO_WEIGHT }));
    }
  });

  it('rejects a non-finite value naming the client and the tensor, for every rule', () => {
    const bad = [update('good', [1, 2, 3, 4]), update('evil', [1, Number.NaN, 3, 4])];
    const rules = [
      () => weightedMean(bad, specs),
      () => coordinateMedian(bad, specs),
      () => trimmedMean(bad, specs, 0.1),
      () => krum(bad, specs, 0),
      () => centeredClipping(bad, specs, { radius: 1, iterations: 1 }),
    ];
    for (const rule of rules) {
      expect(rule).toThrow(expect.objectContaining({ code: ErrorCode.TENSOR_NON_FINITE }));
      expect(rule).toThrow(/client "evil" tensor "w"/);
    }
    expect(() => weightedMean([update('inf', [Infinity, 0, 0, 0])], specs)).toThrow(/client "inf" tensor "w"/);
  });

  it('rejects a missing or mis-sized tensor and a negative weight', () => {
    expect(() => weightedMean([{ clientId: 'x', weight: 1, deltas: new Map() }], specs)).toThrow(
      expect.objectContaining({ code: ErrorCode.TENSOR_NAME }),
    );
    expect(() => weightedMean([update('y', [1, 2, 3])], specs)).toThrow(expect.objectContaining({ code: ErrorCode.TENSOR_SHAPE }));
    expect(() => weightedMean([update('z', [1, 2, 3, 4], -1)], specs)).toThrow(/client "z" has weight -1/);
  });

  it('refuses out-of-range parameters with E_CONFIG_INVALID', () => {
    const ok = [update('a', [1, 2, 3, 4])];
    expect(() => trimmedMean(ok, specs, 0.5)).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
    expect(() => centeredClipping(ok, specs, { radius: 0, iterations: 1 })).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
    expect(() => centeredClipping(ok, specs, { radius: 1, iterations: 0 })).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
    expect(() => multiKrum(ok, specs, -1, 1)).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
  });
});
