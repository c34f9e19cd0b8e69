import { describe, expect, it } from 'vitest';
import { exactLoraAggregate } from '../../../../coordinator/federated/aggregation/lora-exact.js';
import { loraModulesOf, parseLoraName } from '../../../../coordinator/federated/aggregation/lora-names.js';
import { createStrategy } from '../../../../coordinator/federated/strategy.js';
import type { ClientUpdate, WeightedUpdate } from '../../../../coordinator/federated/types.js';
import { canonicalTargets, initLoraTensors, loraManifest, loraScale, mergeLora } from '../../../../shared/adapters/lora.js';
import { linearShapeOf } from '../../../../shared/model/llama-config.js';
import type { BaseWeights, LlamaConfig, LoraSpec } from '../../../../shared/model/types.js';
import { mulberry32, randomNormal } from '../../../../shared/random.js';
import type { NamedTensors } from '../../../../shared/tensors.js';

const config: LlamaConfig = { vocabSize: 16, dim: 12, nLayers: 2, nHeads: 3, nKvHeads: 1, hiddenDim: 20, normEps: 1e-5, ropeTheta: 10000, contextLength: 32 };
const spec: LoraSpec = { method: 'lora', r: 4, loraAlpha: 8, loraDropout: 0, targetModules: ['q', 'v', 'down'], useRslora: false };
const manifest = [...loraManifest(config, spec), { name: 'score.weight', shape: [2, config.dim] }];
const scale = loraScale(spec);
const NUM_CLIENTS = 5;
const BATCH = 6;

/** The frozen base weights of the adapted linears, random. */
function randomBase(seed: number): BaseWeights {
  const rng = mulberry32(seed);
  const base: BaseWeights = new Map();
  for (const m of loraModulesOf(manifest)) {
    const [out, inF] = [m.b.shape[0], m.a.shape[1]];
    base.set(m.baseWeightName, Float32Array.from({ length: out * inF }, () => 0.3 * randomNormal(rng)));
  }
  return base;
}

/** The outputs `y = x·Wᵀ` `[BATCH, out]` of every adapted linear of a (merged) model on the same inputs. */
function layerOutputs(weights: BaseWeights, inputs: Map<string, Float32Array>): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  for (const layer of [0, 1]) {
    for (const target of canonicalTargets(spec)) {
      const [o, i] = linearShapeOf(config, target);
      const name = `blk.${layer}.${{ q: 'attn_q', v: 'attn_v', down: 'ffn_down' }[target as 'q' | 'v' | 'down']}.weight`;
      const w = weights.get(name)!;
      const x = inputs.get(name)!;
      const y = new Float64Array(BATCH * o);
      for (let b = 0; b < BATCH; b++) for (let r = 0; r < o; r++) for (let c = 0; c < i; c++) y[b * o + r] += x[b * i + c] * w[r * i + c];
      out.set(name, y);
    }
  }
  return out;
}

function setup() {
  const rng = mulberry32(7);
  const base = randomBase(3);
  const global = initLoraTensors(config, spec, mulberry32(11));
  global.set('score.weight', Float32Array.from({ length: 2 * config.dim }, () => randomNormal(rng)));
  // Clients moved A and B well away from the global adapter, as after local training on heterogeneous data.
  const clients: NamedTensors[] = Array.from({ length: NUM_CLIENTS }, () => {
    const local: NamedTensors = new Map();
    for (const { name } of manifest) local.set(name, Float32Array.from(global.get(name)!, (v) => v + 0.5 * randomNormal(rng)));
    return local;
  });
  const weights = Array.from({ length: NUM_CLIENTS }, () => 1 + Math.floor(rng() * 50));
  const inputs = new Map<string, Float32Array>();
  for (const m of loraModulesOf(manifest)) {
    inputs.set(m.baseWeightName, Float32Array.from({ length: BATCH * m.a.shape[1] }, () => randomNormal(rng)));
  }
  const current = new Map([...global].map(([k, v]) => [k, Float64Array.from(v)]));
  const updates: ClientUpdate[] = clients.map((local, i) => ({
    clientId: `client-${i}`,
    numExamples: weights[i],
    numTokens: 10 * weights[i],
    deltas: new Map([...local].map(([k, v]) => [k, Float32Array.from(v, (x, j) => x - global.get(k)![j])])),
  }));
  return { base, global, clients, weights, inputs, current, updates };
}

/** Largest gap between the aggregated model's layer outputs and the weighted mean of the client models' outputs. */
function outputGap(aggregatedModel: BaseWeights, s: ReturnType<typeof setup>): number {
  const total = s.weights.reduce((a, b) => a + b, 0);
  const clientOutputs = s.clients.map((c) => layerOutputs(mergeLora(config, s.base, spec, c), s.inputs));
  const got = layerOutputs(aggregatedModel, s.inputs);
  let gap = 0;
  for (const [name, y] of got) {
    for (let j = 0; j < y.length; j++) {
      const mean = clientOutputs.reduce((acc, out, i) => acc + (s.weights[i] / total) * out.get(name)![j], 0);
      gap = Math.max(gap, Math.abs(y[j] - mean));
    }
  }
  return gap;
}

describe('exact LoRA aggregation (FedEx-LoRA)', () => {
  it('base + R with (Ā, B̄) outputs the weighted mean of the client layers within 1e-5; plain A/B averaging does not', () => {
    const s = setup();
    const strategy = createStrategy({ strategy: 'fedavg', lora_aggregation: 'exact', min_fit_clients: 1, min_available_clients: 1 }, { manifest, loraScale: scale });
    const agg = strategy.aggregateFit(1, s.updates, [], s.current);
    expect(agg.residuals.map((r) => r.module)).toEqual(loraModulesOf(manifest).map((m) => m.module));

    const folded: BaseWeights = new Map(s.base);
    for (const r of agg.residuals) {
      expect(r.shape[0] * r.shape[1]).toBe(s.base.get(r.baseWeightName)!.length);
      expect(r.values.length).toBe(r.shape[0] * r.shape[1]);
      folded.set(r.baseWeightName, Float32Array.from(s.base.get(r.baseWeightName)!, (w, j) => w + r.values[j]));
    }
    const adapter: NamedTensors = new Map([...agg.values].map(([k, v]) => [k, Float32Array.from(v)]));
    const exactGap = outputGap(mergeLora(config, folded, spec, adapter), s);

    // Plain averaging: Ā, B̄ into the unchanged base.
    const plain = new Map(agg.values);
    const total = s.weights.reduce((a, b) => a + b, 0);
    for (const { name } of manifest) {
      plain.set(name, Float64Array.from(s.global.get(name)!, (_, j) => s.clients.reduce((acc, c, i) => acc + (s.weights[i] / total) * c.get(name)![j], 0)));
    }
    const plainAdapter: NamedTensors = new Map([...plain].map(([k, v]) => [k, Float32Array.from(v)]));
    const plainGap = outputGap(mergeLora(config, s.base, spec, plainAdapter), s);

    console.log(`exact LoRA aggregation: max |output − mean client output| = ${exactGap.toExponential(2)} (exact), ${plainGap.toExponential(2)} (plain A/B averaging)`);
    expect(exactGap).toBeLessThan(1e-5);
    expect(plainGap).toBeGreaterThan(0.05);
    // The new adapter IS the plain average: only the residual differs.
    for (const { name } of manifest) expect(Math.max(...agg.values.get(name)!.map((v, j) => Math.abs(v - plain.get(name)![j])))).toBeLessThan(1e-6);
  });

  it('a single client is reproduced exactly with a zero residual', () => {
    const s = setup();
    const one: WeightedUpdate[] = [{ clientId: 'solo', weight: 3, deltas: s.updates[0].deltas }];
    const result = exactLoraAggregate(one, s.current, manifest, scale);
    for (const r of result.residuals) expect(Math.max(...r.values.map(Math.abs))).toBeLessThan(1e-12);
    expect(result.values.has('score.weight')).toBe(false);
  });

  it('parses LoRA names and maps modules to base weights', () => {
    expect(parseLoraName('model.layers.1.mlp.down_proj.lora_B.weight')).toEqual({ module: 'model.layers.1.mlp.down_proj', layer: 1, target: 'down', factor: 'B' });
    expect(parseLoraName('score.weight')).toBeUndefined();
    expect(loraModulesOf(manifest)[0].baseWeightName).toBe('blk.0.attn_q.weight');
  });
});
