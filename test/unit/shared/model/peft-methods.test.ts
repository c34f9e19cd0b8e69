/**
 * Every fine-tuning method beside LoRA (adapter, prompt, feature, full) on a tiny random decoder: manifests, the
 * starting point, gradients against the naive formulation and a finite difference, a few steps lowering the loss,
 * and flat tensor counts. Full fine-tuning runs on wasm (no UnsortedSegmentSum kernel) and on cpu.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBED_TOKENS, FINAL_NORM, LM_HEAD } from '../../../../shared/adapters/base-tuning.js';
import { PROMPT_EMBEDDINGS } from '../../../../shared/adapters/prompt-tuning.js';
import { errorCodeOf } from '../../../../shared/errors.js';
import { randomBaseWeights } from '../../../../shared/model/random-weights.js';
import { TaskModel } from '../../../../shared/model/task-model.js';
import { SCORE_WEIGHT, initTrainableValues, trainableManifest, validateModelSpec } from '../../../../shared/model/trainable.js';
import type { Batch, ModelSpec, PeftSpec, Task } from '../../../../shared/model/types.js';
import type { NamedTensors } from '../../../../shared/tensors.js';
import { selectBackend } from '../../../../worker/backend.js';
import { makeBatch, relativeError, tinyConfig } from './tiny-models.js';

const config = tinyConfig();
const weights = randomBaseWeights(config, 7, { std: 0.3 });

const METHODS: Record<string, PeftSpec> = {
  adapter: { method: 'adapter', adapterSize: 4, nonLinearity: 'silu' },
  prompt: { method: 'prompt', numVirtualTokens: 3 },
  'feature k=0': { method: 'feature', trainableTopLayers: 0 },
  'feature k=1': { method: 'feature', trainableTopLayers: 1 },
  full: { method: 'full' },
};

function spec(task: Task, peft: PeftSpec): ModelSpec {
  return { task, numLabels: 3, pooling: 'mean', peft };
}

function batchFor(task: Task, seed = 11): Batch {
  return makeBatch(seed, [6, 4, 5], 6, task, config.vocabSize);
}

/** Non-zero values everywhere (so that adapter `up` and every path carry gradient), deterministic in `seed`. */
function perturbed(values: NamedTensors, seed: number, scale = 0.1): NamedTensors {
  let s = seed;
  const out: NamedTensors = new Map();
  for (const [name, v] of values) {
    out.set(
      name,
      Float32Array.from(v, (x) => {
        s = (s * 1103515245 + 12345) % 2147483648;
        return x + scale * (s / 2147483648 - 0.5);
      }),
    );
  }
  return out;
}

function lossOf(model: TaskModel, batch: Batch): number {
  return model.evaluate(batch).lossSum;
}

/** Plain Adam on the summed loss, a few steps; returns the losses before each step. */
function train(model: TaskModel, batch: Batch, steps: number, lr: number): number[] {
  const losses: number[] = [];
  const params = model.getTrainable();
  const m = new Map([...params].map(([n, v]) => [n, new Float64Array(v.length)]));
  const v2 = new Map([...params].map(([n, v]) => [n, new Float64Array(v.length)]));
  for (let t = 1; t <= steps; t++) {
    const { stats, grads } = model.computeGradients(batch);
    losses.push(stats.lossSum / stats.numLossItems);
    for (const [name, p] of params) {
      const g = grads.get(name) as Float32Array;
      const mm = m.get(name) as Float64Array;
      const vv = v2.get(name) as Float64Array;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i] / stats.numLossItems;
        mm[i] = 0.9 * mm[i] + 0.1 * gi;
        vv[i] = 0.999 * vv[i] + 0.001 * gi * gi;
        p[i] -= (lr * (mm[i] / (1 - 0.9 ** t))) / (Math.sqrt(vv[i] / (1 - 0.999 ** t)) + 1e-8);
      }
    }
    model.setTrainable(params);
  }
  return losses;
}

/** Central finite differences of the summed loss on the `count` coordinates with the largest |gradient|. */
function checkFiniteDifference(model: TaskModel, batch: Batch, grads: NamedTensors, count: number): void {
  const params = model.getTrainable();
  const candidates: { name: string; i: number; g: number }[] = [];
  for (const [name, g] of grads) for (let i = 0; i < g.length; i++) candidates.push({ name, i, g: g[i] });
  candidates.sort((a, b) => Math.abs(b.g) - Math.abs(a.g));
  for (const { name, i, g } of candidates.slice(0, count)) {
    const eps = 1e-2;
    const at = (delta: number): number => {
      const p = new Map(params);
      const copy = Float32Array.from(p.get(name) as Float32Array);
      copy[i] += delta;
      p.set(name, copy);
      model.setTrainable(p);
      return lossOf(model, batch);
    };
    const fd = (at(eps) - at(-eps)) / (2 * eps);
    model.setTrainable(params);
    if (!(Math.abs(fd - g) <= 0.03 * Math.abs(g) + 1e-3)) throw new Error(`${name}[${i}]: gradient ${g}, finite difference ${fd}`);
  }
}

describe('fine-tuning methods beside LoRA', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });
  afterAll(() => {
    expect(tf.memory().numTensors).toBe(0);
  });

  it('lists each method\'s trainable tensors, the same on the coordinator (no TF.js) and in the model', () => {
    const names = (peft: PeftSpec, task: Task): string[] => trainableManifest(config, spec(task, peft), weights).map((t) => t.name);
    expect(names(METHODS.adapter, 'classification').slice(0, 4)).toEqual([
      'model.layers.0.attn_adapter.down.weight',
      'model.layers.0.attn_adapter.down.bias',
      'model.layers.0.attn_adapter.up.weight',
      'model.layers.0.attn_adapter.up.bias',
    ]);
    expect(names(METHODS.adapter, 'classification')).toHaveLength(2 * 2 * 4 + 1);
    expect(names(METHODS.prompt, 'causal-lm')).toEqual([PROMPT_EMBEDDINGS]);
    expect(names(METHODS['feature k=0'], 'classification')).toEqual([SCORE_WEIGHT]);
    expect(names(METHODS['feature k=0'], 'causal-lm')).toEqual([LM_HEAD]);
    expect(names(METHODS['feature k=1'], 'classification')).toEqual([
      'model.layers.1.input_layernorm.weight',
      'model.layers.1.self_attn.q_proj.weight',
      'model.layers.1.self_attn.k_proj.weight',
      'model.layers.1.self_attn.v_proj.weight',
      'model.layers.1.self_attn.o_proj.weight',
      'model.layers.1.post_attention_layernorm.weight',
      'model.layers.1.mlp.gate_proj.weight',
      'model.layers.1.mlp.up_proj.weight',
      'model.layers.1.mlp.down_proj.weight',
      FINAL_NORM,
      SCORE_WEIGHT,
    ]);
    // Tied output (no output.weight): full fine-tuning trains the embedding as the output projection too.
    expect(names(METHODS.full, 'causal-lm')[0]).toBe(EMBED_TOKENS);
    expect(names(METHODS.full, 'causal-lm')).not.toContain(LM_HEAD);
    const untied = randomBaseWeights(config, 7, { std: 0.3, untiedOutput: true });
    expect(trainableManifest(config, spec('causal-lm', METHODS.full), untied).map((t) => t.name)).toContain(LM_HEAD);
    const full = trainableManifest(config, spec('classification', METHODS.full), weights);
    const baseParams = [...weights.values()].reduce((n, w) => n + w.length, 0);
    expect(full.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0)).toBe(baseParams + 3 * config.dim);
    for (const [label, peft] of Object.entries(METHODS)) {
      const model = TaskModel.create(config, weights, spec('classification', peft));
      expect(model.manifest, label).toEqual(trainableManifest(config, spec('classification', peft), weights));
      // The model's seeded init (weights read back from the device) equals the coordinator's (from the file).
      expect(model.initTrainable(3), label).toEqual(initTrainableValues(config, spec('classification', peft), 3, weights));
      model.dispose();
    }
  });

  it('adapter, feature and full start exactly at the base model; prompt tuning starts from vocabulary embeddings', () => {
    const ids = [1, 7, 3, 22, 9];
    const lora = TaskModel.create(config, weights, spec('causal-lm', { method: 'lora', r: 2, loraAlpha: 4, loraDropout: 0, targetModules: ['q'], useRslora: false }));
    const expected = lora.nextTokenLogits(ids);
    lora.dispose();
    for (const label of ['adapter', 'feature k=1', 'full']) {
      const model = TaskModel.create(config, weights, spec('causal-lm', METHODS[label]));
      expect(relativeError(model.nextTokenLogits(ids), expected), label).toBeLessThan(1e-5);
      model.dispose();
    }
    const prompt = TaskModel.create(config, weights, spec('causal-lm', METHODS.prompt));
    const init = prompt.getTrainable().get(PROMPT_EMBEDDINGS) as Float32Array;
    const table = weights.get('token_embd.weight') as Float32Array;
    for (let p = 0; p < 3; p++) {
      const row = init.subarray(p * config.dim, (p + 1) * config.dim);
      let found = false;
      for (let v = 0; v < config.vocabSize && !found; v++) found = row.every((x, j) => x === table[v * config.dim + j]);
      expect(found).toBe(true);
    }
    prompt.dispose();
  });

  for (const task of ['classification', 'causal-lm'] as const) {
    for (const [label, peft] of Object.entries(METHODS)) {
      it(`${label} (${task}): gradients match the naive formulation and finite differences; 8 steps lower the loss; tensors flat`, () => {
        const batch = batchFor(task);
        const fast = TaskModel.create(config, weights, spec(task, peft));
        const naive = TaskModel.create(config, weights, spec(task, peft), { formulation: 'naive' });
        const values = perturbed(fast.initTrainable(1), 5);
        fast.setTrainable(values);
        naive.setTrainable(values);
        const a = fast.computeGradients(batch);
        const b = naive.computeGradients(batch);
        expect(a.stats.lossSum).toBeCloseTo(b.stats.lossSum, 3);
        for (const [name, g] of b.grads) {
          const err = relativeError(a.grads.get(name) as Float32Array, g);
          if (!(err < 1e-3)) throw new Error(`${name}: relative error ${err}`);
        }
        // Every trainable tensor is reached by the loss.
        for (const [name, g] of a.grads) expect(g.some((x) => x !== 0), name).toBe(true);
        checkFiniteDifference(fast, batch, a.grads, 3);

        const before = tf.memory().numTensors;
        const losses = train(fast, batch, 8, 0.02);
        expect(tf.memory().numTensors).toBe(before);
        expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.9);
        fast.dispose();
        naive.dispose();
      });
    }
  }

  it('prompt tuning: virtual positions bear no loss, count as no tokens, and right padding changes nothing', () => {
    for (const task of ['classification', 'causal-lm'] as const) {
      const model = TaskModel.create(config, weights, spec(task, METHODS.prompt));
      model.setTrainable(perturbed(model.initTrainable(2), 3));
      const batch = batchFor(task);
      const plain = TaskModel.create(config, weights, spec(task, METHODS['feature k=0']));
      const stats = model.evaluate(batch);
      const plainStats = plain.evaluate(batch);
      expect(stats.numLossItems).toBe(plainStats.numLossItems);
      expect(stats.numTokens).toBe(plainStats.numTokens);
      // Sequence 1 (4 real tokens) alone, padded to 6 and to 4: the same loss.
      const padded = makeBatch(11, [6, 4, 5], 6, task, config.vocabSize);
      const one = (seqLen: number): Batch => {
        const ids = padded.inputIds.slice(6, 6 + seqLen);
        const mask = padded.attentionMask.slice(6, 6 + seqLen);
        const labels = task === 'classification' ? padded.labels.slice(1, 2) : padded.labels.slice(6, 6 + seqLen);
        return { batchSize: 1, seqLen, inputIds: ids, attentionMask: mask, labels };
      };
      expect(model.evaluate(one(6)).lossSum).toBeCloseTo(model.evaluate(one(4)).lossSum, 4);
      // Next-token logits see the virtual tokens too, whatever the head.
      const logits = model.nextTokenLogits([1, 5, 9]);
      expect(logits).toHaveLength(config.vocabSize);
      expect(logits.every(Number.isFinite)).toBe(true);
      model.dispose();
      plain.dispose();
    }
  });

  it('full fine-tuning gives the same gradients on wasm (one-hot embedding gradient) and on cpu (UnsortedSegmentSum)', async () => {
    const run = (): NamedTensors => {
      const model = TaskModel.create(config, weights, spec('causal-lm', METHODS.full));
      model.setTrainable(perturbed(model.initTrainable(1), 5));
      const { grads } = model.computeGradients(batchFor('causal-lm'));
      model.dispose();
      return grads;
    };
    const onWasm = run();
    await selectBackend('cpu');
    try {
      expect(tf.getBackend()).toBe('cpu');
      const onCpu = run();
      for (const [name, g] of onCpu) expect(relativeError(onWasm.get(name) as Float32Array, g), name).toBeLessThan(1e-4);
      const emb = onWasm.get(EMBED_TOKENS) as Float32Array;
      expect(emb.some((x) => x !== 0)).toBe(true);
    } finally {
      await selectBackend('wasm');
    }
  });

  it('refuses bad method settings with E_CONFIG_INVALID', () => {
    const code = (peft: unknown): string | undefined => {
      try {
        validateModelSpec(spec('classification', peft as PeftSpec), config);
      } catch (err) {
        return errorCodeOf(err);
      }
      return undefined;
    };
    expect(code({ method: 'prefix' })).toBe('E_CONFIG_INVALID');
    expect(code({ method: 'adapter', adapterSize: 0, nonLinearity: 'relu' })).toBe('E_CONFIG_INVALID');
    expect(code({ method: 'adapter', adapterSize: 4, nonLinearity: 'gelu_new' })).toBe('E_CONFIG_INVALID');
    expect(code({ method: 'prompt', numVirtualTokens: config.contextLength })).toBe('E_CONFIG_INVALID');
    expect(code({ method: 'feature', trainableTopLayers: config.nLayers + 1 })).toBe('E_CONFIG_INVALID');
    expect(code({ method: 'feature', trainableTopLayers: config.nLayers })).toBeUndefined();
    expect(code({ method: 'full' })).toBeUndefined();
  });
});
