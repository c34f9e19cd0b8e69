import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCodeOf } from '../../../../shared/errors.js';
import { additiveAttentionMask } from '../../../../shared/model/attention.js';
import { decoderForward, embedTokens } from '../../../../shared/model/decoder.js';
import { FrozenBase } from '../../../../shared/model/frozen-base.js';
import { opsFor } from '../../../../shared/model/ops.js';
import { randomBaseWeights } from '../../../../shared/model/random-weights.js';
import { ropeTables } from '../../../../shared/model/rope.js';
import { TaskModel } from '../../../../shared/model/task-model.js';
import { SCORE_WEIGHT } from '../../../../shared/model/trainable.js';
import type { Batch, LlamaConfig } from '../../../../shared/model/types.js';
import type { NamedTensors } from '../../../../shared/tensors.js';
import { selectBackend } from '../../../../worker/backend.js';
import { addGrads, loraSpec, makeBatch, modelSpec, relativeError, sliceBatch, tinyConfig, withNonZeroB } from './tiny-models.js';
import { caught } from '../../../helpers/caught.js';

const config = tinyConfig();
const weights = randomBaseWeights(config, 7, { std: 0.3 });

function expectGradsClose(actual: NamedTensors, expected: NamedTensors, tolerance: number): void {
  expect([...actual.keys()]).toEqual([...expected.keys()]);
  for (const [name, g] of expected) {
    const err = relativeError(actual.get(name) as Float32Array, g);
    if (!(err < tolerance)) throw new Error(`gradient of ${name}: relative error ${err} ≥ ${tolerance}`);
  }
}

/** Base-model logits of every position through decoderForward without any adapter, for a single sequence. */
function baseLogits(cfg: LlamaConfig, w: Map<string, Float32Array>, ids: number[]): Float32Array {
  const base = FrozenBase.fromWeights(cfg, w);
  const t = ids.length;
  const headDim = cfg.dim / cfg.nHeads;
  const tables = ropeTables(t, headDim, cfg.ropeTheta);
  const out = tf.tidy(() => {
    const hidden = decoderForward(
      base,
      {
        batchSize: 1,
        seqLen: t,
        embeddings: embedTokens(base, Int32Array.from(ids)),
        mask: tf.tensor3d(additiveAttentionMask(new Int32Array(t).fill(1), 1, t), [1, t, t]),
        ropeCos: tf.tensor4d(tables.cos, [1, t, 1, headDim]),
        ropeSinSigned: tf.tensor4d(tables.sinSigned, [1, t, 1, headDim]),
      },
      opsFor('fast'),
    );
    return tf.matMul(tf.slice(hidden, [t - 1, 0], [1, cfg.dim]), base.outputMatrix().wt).dataSync() as Float32Array;
  });
  base.dispose();
  return out;
}

describe('TaskModel', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });
  afterAll(() => {
    expect(tf.memory().numTensors).toBe(0);
  });

  it('lists trainable tensors in canonical order whatever the config order', () => {
    const model = TaskModel.create(config, weights, modelSpec('classification', { peft: loraSpec({ targetModules: ['v', 'down', 'q'] }) }));
    expect(model.manifest.map((s) => s.name)).toEqual([
      'model.layers.0.self_attn.q_proj.lora_A.weight',
      'model.layers.0.self_attn.q_proj.lora_B.weight',
      'model.layers.0.self_attn.v_proj.lora_A.weight',
      'model.layers.0.self_attn.v_proj.lora_B.weight',
      'model.layers.0.mlp.down_proj.lora_A.weight',
      'model.layers.0.mlp.down_proj.lora_B.weight',
      'model.layers.1.self_attn.q_proj.lora_A.weight',
      'model.layers.1.self_attn.q_proj.lora_B.weight',
      'model.layers.1.self_attn.v_proj.lora_A.weight',
      'model.layers.1.self_attn.v_proj.lora_B.weight',
      'model.layers.1.mlp.down_proj.lora_A.weight',
      'model.layers.1.mlp.down_proj.lora_B.weight',
      SCORE_WEIGHT,
    ]);
    // v: [kvDim = 2 heads · 4, dim]; down: [dim, hidden]
    expect(model.manifest[2].shape).toEqual([4, 16]);
    expect(model.manifest[3].shape).toEqual([8, 4]);
    expect(model.manifest[5].shape).toEqual([16, 4]);
    expect(model.manifest[12].shape).toEqual([3, 16]);
    model.dispose();
  });

  it('initialises deterministically: PEFT A bounds, B zero, head N(0, 0.02)', () => {
    const model = TaskModel.create(config, weights, modelSpec('classification'));
    const a = model.initTrainable(5);
    const b = model.initTrainable(5);
    const c = model.initTrainable(6);
    expect(a).toEqual(b);
    expect(a.get(SCORE_WEIGHT)).not.toEqual(c.get(SCORE_WEIGHT));
    const qa = a.get('model.layers.0.self_attn.q_proj.lora_A.weight') as Float32Array;
    expect(Math.max(...qa.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(16));
    expect(Math.max(...qa.map(Math.abs))).toBeGreaterThan(0.5 / Math.sqrt(16));
    expect((a.get('model.layers.1.mlp.down_proj.lora_B.weight') as Float32Array).every((v) => v === 0)).toBe(true);
    const score = a.get(SCORE_WEIGHT) as Float32Array;
    const std = Math.sqrt(score.reduce((s, v) => s + v * v, 0) / score.length);
    expect(std).toBeGreaterThan(0.01);
    expect(std).toBeLessThan(0.04);
    model.dispose();
  });

  it('rejects wrong trainable names and shapes with stable codes', () => {
    const model = TaskModel.create(config, weights, modelSpec('classification'));
    const good = model.initTrainable(1);
    const extra = new Map(good).set('model.layers.9.self_attn.q_proj.lora_A.weight', new Float32Array(4));
    expect(errorCodeOf(caught(() => model.setTrainable(extra)))).toBe('E_TENSOR_NAME');
    const missing = new Map(good);
    missing.delete(SCORE_WEIGHT);
    expect(errorCodeOf(caught(() => model.setTrainable(missing)))).toBe('E_TENSOR_NAME');
    const wrong = new Map(good).set(SCORE_WEIGHT, new Float32Array(5));
    expect(errorCodeOf(caught(() => model.setTrainable(wrong)))).toBe('E_TENSOR_SHAPE');
    model.setTrainable(good);
    expect(model.getTrainable()).toEqual(good);
    model.dispose();
  });

  it('rejects batches that do not fit, and impossible specs', () => {
    const model = TaskModel.create(config, weights, modelSpec('classification'));
    const batch = makeBatch(1, [3, 2], 4, 'classification', config.vocabSize);
    expect(errorCodeOf(caught(() => model.evaluate({ ...batch, labels: new Int32Array(3) })))).toBe('E_TENSOR_SHAPE');
    const badId = { ...batch, inputIds: batch.inputIds.map((v, i) => (i === 1 ? config.vocabSize : v)) };
    expect(errorCodeOf(caught(() => model.evaluate(badId)))).toBe('E_TENSOR_RANGE');
    expect(errorCodeOf(caught(() => model.evaluate({ ...batch, labels: Int32Array.from([0, 3]) })))).toBe('E_TENSOR_RANGE');
    const empty = { ...batch, attentionMask: new Int32Array(8).fill(1).fill(0, 4) };
    expect(errorCodeOf(caught(() => model.evaluate(empty)))).toBe('E_TENSOR_RANGE');
    const tooLong = makeBatch(1, [3], config.contextLength + 1, 'classification', config.vocabSize);
    expect(errorCodeOf(caught(() => model.evaluate(tooLong)))).toBe('E_TENSOR_SHAPE');
    expect(errorCodeOf(caught(() => TaskModel.create(config, weights, modelSpec('classification', { numLabels: 1 }))))).toBe('E_CONFIG_INVALID');
    expect(errorCodeOf(caught(() => TaskModel.create(config, weights, modelSpec('causal-lm', { peft: loraSpec({ r: 0 }) }))))).toBe('E_CONFIG_INVALID');
    const noQ = new Map(weights);
    noQ.delete('blk.1.attn_q.weight');
    expect(errorCodeOf(caught(() => TaskModel.create(config, noQ, modelSpec('causal-lm'))))).toBe('E_TENSOR_NAME');
    expect(tf.memory().numTensors).toBeGreaterThan(0);
    model.dispose();
  });

  it('with LoRA B = 0 gives exactly the base model logits', () => {
    const model = TaskModel.create(config, weights, modelSpec('causal-lm'));
    model.setTrainable(model.initTrainable(3));
    const ids = [1, 5, 9, 2, 30, 17];
    const adapted = model.nextTokenLogits(ids);
    expect(Array.from(adapted)).toEqual(Array.from(baseLogits(config, weights, ids)));
    model.setTrainable(withNonZeroB(model.initTrainable(3), 4));
    expect(relativeError(model.nextTokenLogits(ids), adapted)).toBeGreaterThan(1e-3);
    model.dispose();
  });

  for (const task of ['classification', 'causal-lm'] as const) {
    for (const pooling of task === 'classification' ? (['mean', 'last'] as const) : (['mean'] as const)) {
      it(`${task}${task === 'classification' ? ` (${pooling} pooling)` : ''}: right padding does not change any sequence's loss or gradient`, () => {
        const model = TaskModel.create(config, weights, modelSpec(task, { pooling }));
        model.setTrainable(withNonZeroB(model.initTrainable(2), 3));
        const batch = makeBatch(11, [6, 3], 6, task, config.vocabSize);
        const both = model.computeGradients(batch);
        const first = model.computeGradients(sliceBatch(batch, 0, 1));
        const second = model.computeGradients(sliceBatch(batch, 1, 2, 3));
        expect(both.stats.lossSum).toBeCloseTo(first.stats.lossSum + second.stats.lossSum, 4);
        expect(both.stats.numTokens).toBe(9);
        expect(both.stats.numLossItems).toBe(task === 'classification' ? 2 : 5 + 2);
        expectGradsClose(both.grads, addGrads(first.grads, second.grads), 1e-5);
        expect(model.evaluate(sliceBatch(batch, 1, 2, 3)).lossSum).toBeCloseTo(second.stats.lossSum, 5);
        model.dispose();
      });
    }
  }

  for (const task of ['classification', 'causal-lm'] as const) {
    it(`${task}: gradients of a batch of 4 equal the sum over its halves (sum of losses, not mean)`, () => {
      const model = TaskModel.create(config, weights, modelSpec(task));
      model.setTrainable(withNonZeroB(model.initTrainable(8), 9));
      const batch = makeBatch(21, [5, 8, 2, 7], 8, task, config.vocabSize);
      const all = model.computeGradients(batch);
      const front = model.computeGradients(sliceBatch(batch, 0, 2));
      const back = model.computeGradients(sliceBatch(batch, 2, 4));
      expectGradsClose(all.grads, addGrads(front.grads, back.grads), 1e-5);
      expect(all.stats.lossSum).toBeCloseTo(front.stats.lossSum + back.stats.lossSum, 4);
      expect(all.stats.numSamples).toBe(4);
      model.dispose();
    });

    it(`${task}: the fast formulation matches plain tf.matMul autodiff, GQA included`, () => {
      const spec = modelSpec(task);
      const fast = TaskModel.create(config, weights, spec);
      const naive = TaskModel.create(config, weights, spec, { formulation: 'naive' });
      const values = withNonZeroB(fast.initTrainable(12), 13);
      fast.setTrainable(values);
      naive.setTrainable(values);
      const batch = makeBatch(31, [7, 4, 6], 7, task, config.vocabSize);
      const a = fast.computeGradients(batch);
      const b = naive.computeGradients(batch);
      expect(a.stats.lossSum).toBeCloseTo(b.stats.lossSum, 4);
      expectGradsClose(a.grads, b.grads, 1e-4);
      fast.dispose();
      naive.dispose();
    });
  }

  it('gradients agree with central finite differences of the loss', () => {
    const model = TaskModel.create(config, weights, modelSpec('classification'));
    const values = withNonZeroB(model.initTrainable(14), 15, 0.5);
    model.setTrainable(values);
    const batch = makeBatch(41, [6, 4], 6, 'classification', config.vocabSize);
    const { grads } = model.computeGradients(batch);
    const probes: [string, number][] = [
      ['model.layers.0.self_attn.k_proj.lora_B.weight', 3],
      ['model.layers.1.mlp.gate_proj.lora_A.weight', 10],
      ['model.layers.0.self_attn.o_proj.lora_B.weight', 7],
      [SCORE_WEIGHT, 5],
    ];
    const eps = 1e-2;
    for (const [name, index] of probes) {
      const shifted = (delta: number): number => {
        const v = new Map(values);
        const t = Float32Array.from(v.get(name) as Float32Array);
        t[index] += delta;
        v.set(name, t);
        model.setTrainable(v);
        return model.evaluate(batch).lossSum;
      };
      const numeric = (shifted(eps) - shifted(-eps)) / (2 * eps);
      const analytic = (grads.get(name) as Float32Array)[index];
      expect(Math.abs(analytic)).toBeGreaterThan(1e-4);
      expect(Math.abs(numeric - analytic)).toBeLessThan(2e-3 + 2e-2 * Math.abs(analytic));
    }
    model.dispose();
  });

  it('grouped-query attention equals multi-head attention with duplicated key/value heads', () => {
    const gqa = tinyConfig({ nHeads: 4, nKvHeads: 2, nLayers: 1 });
    const mha = { ...gqa, nKvHeads: 4 };
    const w = randomBaseWeights(gqa, 3, { std: 0.3 });
    const wMha = new Map(w);
    const headDim = gqa.dim / gqa.nHeads;
    for (const name of ['blk.0.attn_k.weight', 'blk.0.attn_v.weight']) {
      const src = w.get(name) as Float32Array;
      const dst = new Float32Array(4 * headDim * gqa.dim);
      // query head h reads kv head floor(h / 2): duplicate each kv head's rows
      for (let h = 0; h < 4; h++) dst.set(src.subarray(Math.floor(h / 2) * headDim * gqa.dim, (Math.floor(h / 2) + 1) * headDim * gqa.dim), h * headDim * gqa.dim);
      wMha.set(name, dst);
    }
    const spec = modelSpec('causal-lm', { peft: loraSpec({ targetModules: ['q', 'o'] }) });
    const a = TaskModel.create(gqa, w, spec);
    const b = TaskModel.create(mha, wMha, spec);
    const values = withNonZeroB(a.initTrainable(1), 2);
    a.setTrainable(values);
    b.setTrainable(values);
    const ids = [1, 4, 8, 15, 16, 23, 4];
    expect(relativeError(a.nextTokenLogits(ids), b.nextTokenLogits(ids))).toBeLessThan(1e-6);
    a.dispose();
    b.dispose();
  });

  it('LoRA dropout is deterministic in its seed, varies across seeds, and is off in evaluate', () => {
    const model = TaskModel.create(config, weights, modelSpec('classification', { peft: loraSpec({ loraDropout: 0.3 }) }));
    model.setTrainable(withNonZeroB(model.initTrainable(1), 2));
    const batch = makeBatch(5, [5, 5], 5, 'classification', config.vocabSize);
    const a = model.computeGradients(batch, { dropoutSeed: 10 });
    const b = model.computeGradients(batch, { dropoutSeed: 10 });
    const c = model.computeGradients(batch, { dropoutSeed: 11 });
    expect(a.grads).toEqual(b.grads);
    expect(a.stats.lossSum).toBe(b.stats.lossSum);
    expect(relativeError(c.grads.get(SCORE_WEIGHT) as Float32Array, a.grads.get(SCORE_WEIGHT) as Float32Array)).toBeGreaterThan(1e-4);
    expect(model.evaluate(batch).lossSum).toBe(model.evaluate(batch).lossSum);
    model.dispose();
  });

  it('keeps tf.memory().numTensors flat across 20 computeGradients calls', () => {
    const model = TaskModel.create(config, weights, modelSpec('causal-lm', { peft: loraSpec({ loraDropout: 0.1 }) }));
    const batch: Batch = makeBatch(3, [8, 5, 6], 8, 'causal-lm', config.vocabSize);
    model.computeGradients(batch);
    model.evaluate(batch);
    model.nextTokenLogits([1, 2, 3]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) model.computeGradients(batch, { dropoutSeed: i });
    model.evaluate(batch);
    model.nextTokenLogits([1, 2, 3]);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('reports counts: samples, loss items, real tokens, correct predictions', () => {
    const model = TaskModel.create(config, weights, modelSpec('causal-lm'));
    const batch = makeBatch(9, [4, 2], 4, 'causal-lm', config.vocabSize);
    const stats = model.evaluate(batch);
    expect(stats.numSamples).toBe(2);
    expect(stats.numTokens).toBe(6);
    expect(stats.numLossItems).toBe(3 + 1);
    expect(stats.numCorrect).toBeGreaterThanOrEqual(0);
    expect(stats.numCorrect).toBeLessThanOrEqual(4);
    expect(stats.lossSum / stats.numLossItems).toBeGreaterThan(0);
    model.dispose();
  });
});
