import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  dropoutMask,
  initLoraTensors,
  loraManifest,
  loraScale,
  loraTensorName,
  mergeLora,
  mixSeed,
  validateLoraSpec,
} from '../../../../shared/adapters/lora.js';
import { errorCodeOf } from '../../../../shared/errors.js';
import { randomBaseWeights } from '../../../../shared/model/random-weights.js';
import { TaskModel } from '../../../../shared/model/task-model.js';
import type { LoraTarget } from '../../../../shared/model/types.js';
import { mulberry32 } from '../../../../shared/random.js';
import { selectBackend } from '../../../../worker/backend.js';
import { loraSpec, modelSpec, relativeError, tinyConfig, withNonZeroB } from '../model/tiny-models.js';

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    return errorCodeOf(err);
  }
  return 'no error';
}

describe('LoRA adapter bookkeeping', () => {
  it('names tensors by Hugging Face / PEFT module path', () => {
    expect(loraTensorName(3, 'q', 'A')).toBe('model.layers.3.self_attn.q_proj.lora_A.weight');
    expect(loraTensorName(0, 'o', 'B')).toBe('model.layers.0.self_attn.o_proj.lora_B.weight');
    expect(loraTensorName(1, 'gate', 'A')).toBe('model.layers.1.mlp.gate_proj.lora_A.weight');
    expect(loraTensorName(1, 'down', 'B')).toBe('model.layers.1.mlp.down_proj.lora_B.weight');
  });

  it('scales by alpha/r, or alpha/sqrt(r) with rsLoRA', () => {
    expect(loraScale(loraSpec({ r: 16, loraAlpha: 32 }))).toBe(2);
    expect(loraScale(loraSpec({ r: 16, loraAlpha: 32, useRslora: true }))).toBe(8);
  });

  it('rejects impossible specs', () => {
    expect(codeOf(() => validateLoraSpec(loraSpec({ r: 2.5 })))).toBe('E_CONFIG_INVALID');
    expect(codeOf(() => validateLoraSpec(loraSpec({ loraAlpha: 0 })))).toBe('E_CONFIG_INVALID');
    expect(codeOf(() => validateLoraSpec(loraSpec({ loraDropout: 1 })))).toBe('E_CONFIG_INVALID');
    expect(codeOf(() => validateLoraSpec(loraSpec({ targetModules: ['q', 'q'] })))).toBe('E_CONFIG_INVALID');
    expect(codeOf(() => validateLoraSpec(loraSpec({ targetModules: ['qkv' as LoraTarget] })))).toBe('E_CONFIG_INVALID');
    expect(codeOf(() => validateLoraSpec(loraSpec()))).toBe('no error');
  });

  it('shapes A as [r, in] and B as [out, r] for every target, GQA k/v included', () => {
    const config = tinyConfig();
    const shapes = new Map(loraManifest(config, loraSpec({ r: 3 })).map((s) => [s.name, s.shape]));
    expect(shapes.size).toBe(2 * 7 * 2);
    expect(shapes.get(loraTensorName(0, 'q', 'B'))).toEqual([16, 3]);
    expect(shapes.get(loraTensorName(0, 'k', 'B'))).toEqual([8, 3]);
    expect(shapes.get(loraTensorName(1, 'up', 'A'))).toEqual([3, 16]);
    expect(shapes.get(loraTensorName(1, 'down', 'A'))).toEqual([3, 24]);
    expect(shapes.get(loraTensorName(1, 'down', 'B'))).toEqual([16, 3]);
  });

  it('initialises A uniformly within ±1/sqrt(in) and B to zero, reproducibly', () => {
    const config = tinyConfig();
    const spec = loraSpec({ r: 8, targetModules: ['down'] });
    const a = initLoraTensors(config, spec, mulberry32(1));
    expect(initLoraTensors(config, spec, mulberry32(1))).toEqual(a);
    const down = a.get(loraTensorName(0, 'down', 'A')) as Float32Array;
    const bound = 1 / Math.sqrt(24);
    expect(Math.max(...down.map(Math.abs))).toBeLessThanOrEqual(bound);
    const mean = down.reduce((s, v) => s + v, 0) / down.length;
    const variance = down.reduce((s, v) => s + (v - mean) ** 2, 0) / down.length;
    expect(variance).toBeCloseTo((bound * bound) / 3, 2);
    expect((a.get(loraTensorName(1, 'down', 'B')) as Float32Array).every((v) => v === 0)).toBe(true);
  });

  it('makes inverted-dropout masks: deterministic, rate p, kept values 1/(1-p)', () => {
    const m = dropoutMask(20_000, 0.25, 42);
    expect(dropoutMask(20_000, 0.25, 42)).toEqual(m);
    expect(dropoutMask(20_000, 0.25, 43)).not.toEqual(m);
    const dropped = m.filter((v) => v === 0).length / m.length;
    expect(dropped).toBeGreaterThan(0.23);
    expect(dropped).toBeLessThan(0.27);
    expect(new Set(m)).toEqual(new Set([0, Math.fround(1 / 0.75)]));
    expect(mixSeed(1, 2, 3)).not.toBe(mixSeed(1, 3, 2));
  });
});

describe('mergeLora', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('folds s·B·A into the base weights: merged base alone == adapted model', () => {
    const config = tinyConfig();
    const weights = randomBaseWeights(config, 1, { std: 0.3 });
    const lspec = loraSpec({ r: 2, loraAlpha: 6, targetModules: ['q', 'v', 'o', 'up', 'down'] });
    const spec = modelSpec('causal-lm', { peft: lspec });
    const adapted = TaskModel.create(config, weights, spec);
    const lora = withNonZeroB(adapted.initTrainable(2), 3);
    adapted.setTrainable(lora);
    const merged = TaskModel.create(config, mergeLora(config, weights, lspec, lora), spec);
    merged.setTrainable(adapted.initTrainable(2));
    const ids = [1, 7, 3, 22, 9];
    const expected = adapted.nextTokenLogits(ids);
    expect(relativeError(merged.nextTokenLogits(ids), expected)).toBeLessThan(1e-5);
    // and the merge changed something
    const plain = TaskModel.create(config, weights, spec);
    expect(relativeError(plain.nextTokenLogits(ids), expected)).toBeGreaterThan(1e-3);
    expect(mergeLora(config, weights, lspec, lora).get('blk.0.attn_k.weight')).toBe(weights.get('blk.0.attn_k.weight'));
    for (const m of [adapted, merged, plain]) m.dispose();
    expect(tf.memory().numTensors).toBe(0);
  });

  it('rejects a missing or mis-sized factor', () => {
    const config = tinyConfig();
    const spec = loraSpec({ targetModules: ['q'] });
    const weights = randomBaseWeights(config, 1);
    const lora = initLoraTensors(config, spec, mulberry32(1));
    const missing = new Map(lora);
    missing.delete(loraTensorName(1, 'q', 'B'));
    expect(codeOf(() => mergeLora(config, weights, spec, missing))).toBe('E_TENSOR_NAME');
    const wrong = new Map(lora).set(loraTensorName(0, 'q', 'A'), new Float32Array(3));
    expect(codeOf(() => mergeLora(config, weights, spec, wrong))).toBe('E_TENSOR_SHAPE');
  });
});
