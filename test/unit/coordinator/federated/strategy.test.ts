import { describe, expect, it } from 'vitest';
import { sampleClients, sampleSize } from '../../../../coordinator/federated/client-sampling.js';
import { createStrategy } from '../../../../coordinator/federated/strategy.js';
import type { StrategyOptions } from '../../../../coordinator/federated/strategy-options.js';
import type { ClientUpdate, NamedTensors64 } from '../../../../coordinator/federated/types.js';
import { loraManifest } from '../../../../shared/adapters/lora.js';
import type { FederatedStrategyName } from '../../../../shared/config/run-config.js';
import { ErrorCode } from '../../../../shared/errors.js';
import { mulberry32, randomNormal } from '../../../../shared/random.js';
import type { TensorSpec } from '../../../../shared/tensors.js';

const specs: TensorSpec[] = [
  { name: 'a', shape: [4, 5] },
  { name: 'b', shape: [30] },
];
const zeros = (): NamedTensors64 => new Map(specs.map(({ name, shape }) => [name, new Float64Array(shape.reduce((x, y) => x * y, 1))]));
const update = (clientId: string, values: Map<string, Float32Array>, numExamples = 10, numTokens = 100): ClientUpdate => ({
  clientId,
  deltas: values,
  numExamples,
  numTokens,
  metrics: { train_loss: numExamples },
});
const ids = (n: number) => Array.from({ length: n }, (_, i) => `client-${String(i).padStart(4, '0')}`);

describe('client sampling', () => {
  it('sizes samples like Flower and waits for min_available_clients', () => {
    const o = { fraction: 0.02, minClients: 2, minAvailable: 10 };
    expect(sampleSize(1000, o)).toBe(20);
    expect(sampleSize(50, o)).toBe(2);
    expect(sampleSize(9, o)).toBe(0);
    expect(sampleSize(3, { fraction: 1, minClients: 5, minAvailable: 1 })).toBe(0);
  });

  it('is seeded, deterministic whatever the order of the available ids, and without repeats', () => {
    const available = ids(1000);
    const a = sampleClients(available, { fraction: 0.02, minClients: 2, minAvailable: 2 }, mulberry32(42));
    const b = sampleClients([...available].reverse(), { fraction: 0.02, minClients: 2, minAvailable: 2 }, mulberry32(42));
    const c = sampleClients(available, { fraction: 0.02, minClients: 2, minAvailable: 2 }, mulberry32(43));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(new Set(a).size).toBe(20);
    for (const id of a) expect(available).toContain(id);
  });

  it('is uniform: over many rounds every client is picked about equally often', () => {
    const counts = new Map<string, number>();
    const rng = mulberry32(1);
    for (let round = 0; round < 2000; round++) {
      for (const id of sampleClients(ids(20), { fraction: 0.25, minClients: 1, minAvailable: 1 }, rng)) counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    // Expected 500 each; 5 standard deviations ≈ 100.
    for (const n of counts.values()) expect(Math.abs(n - 500)).toBeLessThan(100);
  });
});

describe('strategy hooks', () => {
  const constant = (v: number) => new Map(specs.map(({ name, shape }) => [name, new Float32Array(shape.reduce((x, y) => x * y, 1)).fill(v)]));

  it('configureFit samples and sends proximal_mu (fedprox) and freeze_lora_a in the round config', () => {
    const s = createStrategy({ strategy: 'fedprox', proximal_mu: 0.01, fraction_fit: 0.5, lora_aggregation: 'freeze-a' }, { manifest: specs });
    const plan = s.configureFit(3, ids(10), mulberry32(9));
    expect(plan.clients).toHaveLength(5);
    expect(plan.hasQuorum).toBe(true);
    expect(plan.config).toEqual({ server_round: 3, proximal_mu: 0.01, freeze_lora_a: true, lora_aggregation: 'freeze-a' });
    expect(s.configureFit(1, ids(1), mulberry32(9))).toMatchObject({ clients: [], hasQuorum: false });
  });

  it('aggregateFit weights by examples or by tokens and returns new global values plus metrics', () => {
    const results = [update('x', constant(1), 1, 300), update('y', constant(4), 2, 0)];
    const byExamples = createStrategy({ strategy: 'fedavg' }, { manifest: specs }).aggregateFit(1, results, [{ clientId: 'z', code: 'timeout' }], zeros());
    expect(byExamples.values.get('a')![0]).toBeCloseTo(3, 12);
    expect(byExamples.metrics).toMatchObject({ fit_num_clients: 2, fit_num_failures: 1, fit_num_examples: 3, fit_train_loss: 5 / 3 });
    const byTokens = createStrategy({ strategy: 'fedavg', weight_by: 'tokens' }, { manifest: specs }).aggregateFit(1, results, [], zeros());
    expect(byTokens.values.get('a')![0]).toBe(1);
    expect(byTokens.metrics.fit_num_empty).toBe(1);
  });

  it('a round whose results carry no weight is an explicit E_AGGREGATION_ZERO_WEIGHT', () => {
    const s = createStrategy({ strategy: 'fedadam' }, { manifest: specs });
    expect(() => s.aggregateFit(1, [update('x', constant(1), 0)], [], zeros())).toThrow(
      expect.objectContaining({ code: ErrorCode.AGGREGATION_ZERO_WEIGHT }),
    );
    expect(() => s.aggregateFit(1, [], [{ clientId: 'x', code: 'E_WORKER_LOST' }], zeros())).toThrow(/round 1/);
    expect(s.state().serverOptimizer.step).toBe(0);
  });

  it('freeze-A aggregates and returns only B (and non-LoRA) tensors and reports A as frozen', () => {
    const config = { vocabSize: 8, dim: 4, nLayers: 1, nHeads: 2, nKvHeads: 2, hiddenDim: 8, normEps: 1e-5, ropeTheta: 1e4, contextLength: 8 };
    const manifest = [...loraManifest(config, { method: 'lora', r: 2, loraAlpha: 4, loraDropout: 0, targetModules: ['q', 'v'], useRslora: false }), { name: 'score.weight', shape: [2, 4] }];
    const s = createStrategy({ strategy: 'fedavg', lora_aggregation: 'freeze-a' }, { manifest });
    expect(s.frozenTensors).toEqual(['model.layers.0.self_attn.q_proj.lora_A.weight', 'model.layers.0.self_attn.v_proj.lora_A.weight']);
    expect(s.aggregatedTensors.map((t) => t.name)).toEqual([
      'model.layers.0.self_attn.q_proj.lora_B.weight',
      'model.layers.0.self_attn.v_proj.lora_B.weight',
      'score.weight',
    ]);
    // Clients send B and the head only: half the LoRA bytes.
    const deltas = new Map(s.aggregatedTensors.map(({ name, shape }) => [name, new Float32Array(shape[0] * shape[1]).fill(0.5)]));
    const current = new Map(manifest.map(({ name, shape }) => [name, new Float64Array(shape[0] * shape[1])]));
    const out = s.aggregateFit(1, [update('p', deltas), update('q', deltas)], [], current);
    expect([...out.values.keys()]).toEqual(s.aggregatedTensors.map((t) => t.name));
  });

  it('refuses exact LoRA aggregation with a non-averaging strategy, unknown keys and bad values', () => {
    expect(() => createStrategy({ strategy: 'fedadam', lora_aggregation: 'exact' }, { manifest: specs })).toThrow(
      expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }),
    );
    expect(() => createStrategy({ strategy: 'fedavg', beta_1: 0.9 } as unknown as StrategyOptions, { manifest: specs })).toThrow(
      expect.objectContaining({ code: ErrorCode.CONFIG_UNKNOWN_KEY }),
    );
    expect(() => createStrategy({ strategy: 'fedsgd' } as unknown as StrategyOptions, { manifest: specs })).toThrow(/unknown strategy/);
    expect(() => createStrategy({ strategy: 'fedavg', fraction_fit: 0 }, { manifest: specs })).toThrow(/fraction_fit/);
  });

  it('aggregateEvaluate weights loss and accuracy by examples and reports the worst-client gap', () => {
    const s = createStrategy({ strategy: 'fedavg' }, { manifest: specs });
    expect(s.configureEvaluate(2, ids(4), mulberry32(1)).clients).toHaveLength(4);
    const summary = s.aggregateEvaluate(
      2,
      [
        { clientId: 'a', numExamples: 30, loss: 0.2, accuracy: 0.9 },
        { clientId: 'b', numExamples: 10, loss: 1.0, accuracy: 0.5 },
      ],
      [{ clientId: 'c', code: 'timeout' }],
    );
    expect(summary.loss).toBeCloseTo(0.4, 12);
    expect(summary.accuracy).toBeCloseTo(0.8, 12);
    expect(summary.accuracyGap).toBeCloseTo(0.3, 12);
    expect(summary.lossGap).toBeCloseTo(0.6, 12);
    expect(summary.metrics).toMatchObject({ eval_num_failures: 1, eval_worst_accuracy: 0.5 });
    expect(() => s.aggregateEvaluate(2, [{ clientId: 'a', numExamples: 0, loss: 1 }], [])).toThrow(
      expect.objectContaining({ code: ErrorCode.AGGREGATION_ZERO_WEIGHT }),
    );
  });

  it('strategy state (server moments, centered clipping start) restores into a fresh strategy', () => {
    for (const strategy of ['fedyogi', 'centered-clipping'] as const) {
      const rng = mulberry32(4);
      const rounds = Array.from({ length: 4 }, () =>
        ['p', 'q', 'r'].map((id) => update(id, new Map(specs.map(({ name, shape }) => [name, Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, () => randomNormal(rng))])))),
      );
      const straight = createStrategy({ strategy }, { manifest: specs });
      let x = zeros();
      rounds.forEach((r, i) => (x = straight.aggregateFit(i + 1, r, [], x).values));
      const first = createStrategy({ strategy }, { manifest: specs });
      let y = zeros();
      rounds.slice(0, 2).forEach((r, i) => (y = first.aggregateFit(i + 1, r, [], y).values));
      const second = createStrategy({ strategy }, { manifest: specs });
      second.restore(structuredClone(first.state()));
      rounds.slice(2).forEach((r, i) => (y = second.aggregateFit(i + 3, r, [], y).values));
      expect([...y.get('a')!]).toEqual([...x.get('a')!]);
    }
  });
});

describe('robust strategies bound a sign-flipped ×100 update from 1 of 10 clients', () => {
  it('S12: fedavg is pulled far away; median, trimmed mean, krum, multi-krum and centered clipping stay close', () => {
    const rng = mulberry32(2024);
    const size = (s: TensorSpec) => s.shape.reduce((x, y) => x * y, 1);
    const mean = specs.map((s) => Float64Array.from({ length: size(s) }, () => 2 * rng() - 1));
    const honest = Array.from({ length: 10 }, (_, i) =>
      update(`c${i}`, new Map(specs.map((s, t) => [s.name, Float32Array.from(mean[t], (m) => m + 0.1 * randomNormal(rng))]))),
    );
    const clean = createStrategy({ strategy: 'fedavg' }, { manifest: specs }).aggregateFit(1, honest, [], zeros()).values;
    const attacked = honest.map((u, i) => (i === 3 ? { ...u, deltas: new Map([...u.deltas].map(([k, v]) => [k, v.map((x) => -100 * x)])) } : u));
    const distance = (values: Map<string, Float64Array>) =>
      Math.sqrt(specs.reduce((acc, { name }) => acc + values.get(name)!.reduce((s, v, j) => s + (v - clean.get(name)![j]) ** 2, 0), 0));
    const cleanNorm = distance(zeros());
    // The yardstick: how far a typical honest update lies from the clean aggregate (Krum returns one of them).
    const toF64 = (u: ClientUpdate) => new Map([...u.deltas].map(([k, v]) => [k, Float64Array.from(v)]));
    const honestSpread = honest.reduce((acc, u) => acc + distance(toF64(u)), 0) / honest.length;
    const options: Record<string, StrategyOptions> = {
      fedavg: { strategy: 'fedavg' },
      fedmedian: { strategy: 'fedmedian' },
      fedtrimmedavg: { strategy: 'fedtrimmedavg', trim_fraction: 0.2 },
      krum: { strategy: 'krum', num_byzantine: 1 },
      multikrum: { strategy: 'multikrum', num_byzantine: 1 },
      'centered-clipping': { strategy: 'centered-clipping', clipping_radius: 2, clipping_iterations: 10 },
    };
    const report: Record<string, number> = {};
    for (const [name, o] of Object.entries(options)) {
      report[name] = distance(createStrategy(o, { manifest: specs }).aggregateFit(1, attacked, [], zeros()).values);
    }
    console.log(`distance to the clean aggregate (its norm ${cleanNorm.toFixed(2)}, honest spread ${honestSpread.toFixed(2)}): ${JSON.stringify(report, (_k, v) => (typeof v === 'number' ? Number(v.toFixed(3)) : v))}`);
    expect(report.fedavg).toBeGreaterThan(20 * honestSpread);
    expect(report.fedavg).toBeGreaterThan(2 * cleanNorm);
    for (const robust of ['fedmedian', 'fedtrimmedavg', 'krum', 'multikrum', 'centered-clipping'] satisfies FederatedStrategyName[]) {
      expect(report[robust], robust).toBeLessThan(1.5 * honestSpread);
    }
  });
});
