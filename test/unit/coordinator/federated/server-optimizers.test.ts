import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ServerOptimizerKind, ServerOptimizerOptions } from '../../../../coordinator/federated/server-optimizers.js';
import {
  defaultServerOptimizerOptions,
  initServerOptimizerState,
  restoreServerOptimizerState,
  serverOptimizerStep,
} from '../../../../coordinator/federated/server-optimizers.js';
import type { NamedTensors64 } from '../../../../coordinator/federated/types.js';
import { ErrorCode } from '../../../../shared/errors.js';
import { mulberry32, randomNormal } from '../../../../shared/random.js';
import { maxAbsDiff } from './random-updates.js';

/** Flower's update rules, transcribed per element on plain number arrays (fedopt.py, fedadam.py, fedyogi.py, fedadagrad.py, fedavgm.py). */
function flowerReference(o: ServerOptimizerOptions, x0: number[], deltas: number[][]): number[] {
  let x = [...x0];
  let m: number[] | null = null;
  let v: number[] | null = null;
  deltas.forEach((d, idx) => {
    const serverRound = idx + 1;
    if (o.kind === 'none') {
      x = x.map((xi, j) => xi + d[j]);
    } else if (o.kind === 'fedavgm') {
      let pg = d.map((dj) => -dj);
      if (o.momentum > 0) {
        m = serverRound > 1 ? m!.map((mj, j) => o.momentum * mj + pg[j]) : pg;
        pg = m;
      }
      x = x.map((xi, j) => xi - o.learningRate * pg[j]);
    } else {
      m = (m ?? d.map(() => 0)).map((mj, j) => o.beta1 * mj + (1 - o.beta1) * d[j]);
      const v0 = v ?? d.map(() => 0);
      if (o.kind === 'fedadam') v = v0.map((vj, j) => o.beta2 * vj + (1 - o.beta2) * d[j] * d[j]);
      else if (o.kind === 'fedyogi') v = v0.map((vj, j) => vj - (1 - o.beta2) * d[j] * d[j] * Math.sign(vj - d[j] * d[j]));
      else v = v0.map((vj, j) => vj + d[j] * d[j]);
      const eta =
        o.kind === 'fedadam' ? (o.learningRate * Math.sqrt(1 - o.beta2 ** (serverRound + 1))) / (1 - o.beta1 ** (serverRound + 1)) : o.learningRate;
      x = x.map((xi, j) => xi + (eta * m![j]) / (Math.sqrt(v![j]) + o.tau));
    }
  });
  return x;
}

const KINDS: ServerOptimizerKind[] = ['none', 'fedavgm', 'fedadam', 'fedyogi', 'fedadagrad'];

function run(o: ServerOptimizerOptions, x0: number[], deltas: number[][]): number[] {
  const state = initServerOptimizerState(o.kind);
  let x: NamedTensors64 = new Map([['w', Float64Array.from(x0)]]);
  deltas.forEach((d, i) => {
    x = serverOptimizerStep(x, new Map([['w', Float64Array.from(d)]]), state, o, i + 1);
  });
  expect(state.step).toBe(deltas.length);
  return [...x.get('w')!];
}

describe('server optimizers match Flower', () => {
  it('uses Flower defaults', () => {
    expect(defaultServerOptimizerOptions('fedadam')).toMatchObject({ learningRate: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-9 });
    expect(defaultServerOptimizerOptions('fedyogi')).toMatchObject({ learningRate: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3 });
    expect(defaultServerOptimizerOptions('fedadagrad')).toMatchObject({ learningRate: 0.1, beta1: 0, tau: 1e-9 });
    expect(defaultServerOptimizerOptions('fedavgm')).toMatchObject({ learningRate: 1, momentum: 0 });
  });

  it('every kind equals the transcribed reference over several rounds', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...KINDS),
        fc.integer(),
        fc.integer({ min: 1, max: 6 }),
        fc.record({
          learningRate: fc.double({ min: 0.001, max: 2, noNaN: true }),
          momentum: fc.double({ min: 0, max: 0.99, noNaN: true }),
          beta1: fc.double({ min: 0, max: 0.99, noNaN: true }),
          beta2: fc.double({ min: 0, max: 0.999, noNaN: true }),
          tau: fc.double({ min: 1e-9, max: 0.1, noNaN: true }),
        }),
        (kind, seed, rounds, hp) => {
          const rng = mulberry32(seed);
          const x0 = Array.from({ length: 7 }, () => randomNormal(rng));
          const deltas = Array.from({ length: rounds }, () => x0.map(() => 0.1 * randomNormal(rng)));
          const o = { ...hp, kind };
          expect(maxAbsDiff(run(o, x0, deltas), flowerReference(o, x0, deltas))).toBeLessThan(1e-9);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('fedavgm with η = 1, μ = 0 and none are plain FedAvg (x + Δ)', () => {
    const o = defaultServerOptimizerOptions('fedavgm');
    expect(run(o, [1, 2], [[0.5, -1]])).toEqual([1.5, 1]);
  });

  it('state survives a checkpoint (JSON with plain arrays, or structured clone) and training continues identically', () => {
    for (const kind of KINDS) {
      const o = { ...defaultServerOptimizerOptions(kind), momentum: 0.9 };
      const rng = mulberry32(5);
      const deltas = Array.from({ length: 5 }, () => Array.from({ length: 4 }, () => randomNormal(rng)));
      const straight = run(o, [0, 0, 0, 0], deltas);
      for (const roundTrip of [
        (s: unknown) => JSON.parse(JSON.stringify(s, (_k, v) => (v instanceof Float64Array ? Array.from(v) : v))),
        (s: unknown) => structuredClone(s),
      ]) {
        const state = initServerOptimizerState(kind);
        let x: NamedTensors64 = new Map([['w', new Float64Array(4)]]);
        deltas.forEach((d, i) => {
          if (i === 3) Object.assign(state, restoreServerOptimizerState(roundTrip(state), kind));
          x = serverOptimizerStep(x, new Map([['w', Float64Array.from(d)]]), state, o, i + 1);
        });
        expect([...x.get('w')!]).toEqual(straight);
      }
    }
  });

  it('refuses a state of another kind or a malformed one', () => {
    expect(() => restoreServerOptimizerState(initServerOptimizerState('fedadam'), 'fedyogi')).toThrow(
      expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }),
    );
    expect(() => restoreServerOptimizerState({ kind: 'fedadam', step: 1, m: { w: ['x'] }, v: {} }, 'fedadam')).toThrow(/m\.w/);
    expect(() => restoreServerOptimizerState(null, 'fedadam')).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
  });
});
