import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LORA_EMBEDDING_A, LORA_EMBEDDING_B } from '../../../../shared/adapters/lora-embedding.js';
import { mergeLora } from '../../../../shared/adapters/lora.js';
import { embeddingColumnLookup, embeddingGradPath, type EmbeddingGradPath } from '../../../../shared/model/embedding-lookup.js';
import { randomBaseWeights } from '../../../../shared/model/random-weights.js';
import { TaskModel } from '../../../../shared/model/task-model.js';
import type { BaseWeights, Batch, LoraSpec } from '../../../../shared/model/types.js';
import { mulberry32 } from '../../../../shared/random.js';
import type { NamedTensors } from '../../../../shared/tensors.js';
import { selectBackend } from '../../../../worker/backend.js';
import { referenceLogits } from './reference-llama.js';
import { loraSpec, makeBatch, modelSpec, relativeError, tinyConfig, withNonZeroB } from './tiny-models.js';
import { maxAbsDiff } from '../../../helpers/max-abs-diff.js';

const config = tinyConfig();
const RANK = 3;
const VOCAB = 11;
const IDS = Int32Array.from([3, 0, 3, 10, 7, 3, 0]);

/** d/dTable of sum(columns ⊙ W) for a seeded W, by `path`, and the expected scatter of W into the used columns. */
function columnGradient(path: EmbeddingGradPath | undefined): { grad: Float32Array; expected: Float32Array; value: Float32Array } {
  const rng = mulberry32(2);
  const table = Float32Array.from({ length: RANK * VOCAB }, () => 2 * rng() - 1);
  const weights = Float32Array.from({ length: IDS.length * RANK }, () => 2 * rng() - 1);
  const expected = new Float32Array(RANK * VOCAB);
  IDS.forEach((id, i) => {
    for (let k = 0; k < RANK; k++) expected[k * VOCAB + id] += weights[i * RANK + k];
  });
  const { grad, value } = tf.tidy(() => {
    const w = tf.tensor2d(weights, [IDS.length, RANK]);
    const f = (x: tf.Tensor): tf.Scalar => tf.sum(tf.mul(embeddingColumnLookup(x as tf.Tensor2D, IDS, path), w));
    const g = tf.grad(f)(tf.tensor2d(table, [RANK, VOCAB]));
    const v = embeddingColumnLookup(tf.tensor2d(table, [RANK, VOCAB]), IDS, path);
    return { grad: g.dataSync() as Float32Array, value: v.dataSync() as Float32Array };
  });
  IDS.forEach((id, i) => {
    for (let k = 0; k < RANK; k++) expect(value[i * RANK + k]).toBe(table[k * VOCAB + id]);
  });
  return { grad, expected, value };
}

/** Seeded values with every factor non-zero: linear B and embedding A (both start at zero). */
function adapted(model: TaskModel, seed: number): NamedTensors {
  const rng = mulberry32(seed);
  const values = withNonZeroB(model.initTrainable(seed), seed + 1, 0.3);
  const a = values.get(LORA_EMBEDDING_A);
  if (a) values.set(LORA_EMBEDDING_A, Float32Array.from(a, () => 0.3 * (2 * rng() - 1)));
  return values;
}

/** The base with the embedding adapter folded in by float64 sums; the output projection keeps the unmerged table. */
function mergedEmbedding(base: BaseWeights, spec: LoraSpec, a: Float32Array, b: Float32Array): BaseWeights {
  const w = base.get('token_embd.weight')!;
  const out = new Float32Array(w.length);
  const scale = spec.loraAlpha / spec.r;
  for (let t = 0; t < config.vocabSize; t++) {
    for (let j = 0; j < config.dim; j++) {
      let s = 0;
      for (let k = 0; k < spec.r; k++) s += b[j * spec.r + k] * a[k * config.vocabSize + t];
      out[t * config.dim + j] = w[t * config.dim + j] + scale * s;
    }
  }
  return new Map([...base, ['token_embd.weight', out], ['output.weight', base.get('output.weight') ?? w]]);
}

/** Float64 causal-lm loss sum of one unpadded sequence (the plain-JS reference forward). */
function referenceLoss(weights: BaseWeights, ids: readonly number[]): number {
  const logits = referenceLogits(config, weights, ids);
  let loss = 0;
  for (let t = 0; t + 1 < ids.length; t++) {
    const row = logits[t];
    const max = Math.max(...row);
    const logSum = Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) + max;
    loss += logSum - row[ids[t + 1]];
  }
  return loss;
}

describe('LoRA on the token embedding', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });
  afterAll(() => {
    expect(tf.memory().numTensors).toBe(0);
  });

  it('column lookup: every gradient path scatters into the used columns of A, on wasm and cpu', async () => {
    for (const backend of ['wasm', 'cpu'] as const) {
      await selectBackend(backend);
      expect(embeddingGradPath(IDS.length, VOCAB)).toBe(backend === 'wasm' ? 'one-hot' : 'segment-sum');
      const before = tf.memory().numTensors;
      const paths = backend === 'wasm' ? ([undefined, 'one-hot', 'host'] as const) : ([undefined, 'one-hot', 'host', 'segment-sum'] as const);
      for (const path of paths) {
        const { grad, expected } = columnGradient(path);
        for (let i = 0; i < expected.length; i++) expect(grad[i]).toBeCloseTo(expected[i], 5);
      }
      expect(tf.memory().numTensors).toBe(before);
    }
    await selectBackend('wasm');
  });

  it('starts at the base model (A = 0) and trains A and B with gradients that match float64 finite differences', () => {
    const spec = loraSpec({ targetModules: ['embed'] });
    const model = TaskModel.create(config, randomBaseWeights(config, 7, { std: 0.3 }), modelSpec('causal-lm', { peft: spec }));
    const base = randomBaseWeights(config, 7, { std: 0.3 });
    const ids = [1, 5, 9, 2, 30, 17, 5, 8];
    const initial = model.initTrainable(0);
    model.setTrainable(initial);
    expect(relativeError(model.nextTokenLogits(ids), Float32Array.from(referenceLogits(config, base, ids).at(-1)!))).toBeLessThan(1e-5);

    const values = adapted(model, 21);
    model.setTrainable(values);
    const batch: Batch = {
      batchSize: 1,
      seqLen: ids.length,
      inputIds: Int32Array.from(ids),
      attentionMask: new Int32Array(ids.length).fill(1),
      labels: Int32Array.from(ids.map((_, t) => (t + 1 < ids.length ? ids[t + 1] : -100))),
    };
    const { stats, grads } = model.computeGradients(batch);
    const a = values.get(LORA_EMBEDDING_A)!;
    const b = values.get(LORA_EMBEDDING_B)!;
    expect(stats.lossSum).toBeCloseTo(referenceLoss(mergedEmbedding(base, spec, a, b), ids), 3);
    // Columns of A for tokens absent from the batch get no gradient at all.
    const gradA = grads.get(LORA_EMBEDDING_A)!;
    for (let k = 0; k < spec.r; k++) for (const t of [0, 3, 39]) expect(gradA[k * config.vocabSize + t]).toBe(0);

    const eps = 1e-3;
    const probes: [string, number][] = [
      [LORA_EMBEDDING_A, 0 * config.vocabSize + 5],
      [LORA_EMBEDDING_A, 2 * config.vocabSize + 30],
      [LORA_EMBEDDING_A, 3 * config.vocabSize + 1],
      [LORA_EMBEDDING_B, 7],
      [LORA_EMBEDDING_B, 4 * spec.r + 2],
    ];
    for (const [name, index] of probes) {
      const shifted = (delta: number): number => {
        const pa = Float64Array.from(a);
        const pb = Float64Array.from(b);
        (name === LORA_EMBEDDING_A ? pa : pb)[index] += delta;
        return referenceLoss(mergedEmbedding(base, spec, Float32Array.from(pa), Float32Array.from(pb)), ids);
      };
      const numeric = (shifted(eps) - shifted(-eps)) / (2 * eps);
      const analytic = grads.get(name)![index];
      expect(Math.abs(analytic), name).toBeGreaterThan(1e-3);
      expect(Math.abs(numeric - analytic), `${name}[${index}]: ${analytic} vs ${numeric}`).toBeLessThan(1e-3 + 5e-3 * Math.abs(analytic));
    }
    model.dispose();
  });

  for (const untiedOutput of [false, true]) {
    it(`merged model logits equal base + adapter within 1e-5 (${untiedOutput ? 'separate lm_head' : 'tied output'})`, () => {
      const spec = loraSpec({ targetModules: ['q', 'v', 'down', 'embed'] });
      const weights = randomBaseWeights(config, 9, { std: 0.3, untiedOutput });
      const model = TaskModel.create(config, weights, modelSpec('causal-lm', { peft: spec }));
      const values = adapted(model, 31);
      model.setTrainable(values);
      const ids = [2, 11, 7, 7, 33, 0, 19];
      const logits = model.nextTokenLogits(ids);
      const merged = TaskModel.create(config, mergeLora(config, weights, spec, values), modelSpec('causal-lm', { peft: spec }));
      const base = TaskModel.create(config, weights, modelSpec('causal-lm', { peft: spec }));
      const mergedLogits = merged.nextTokenLogits(ids);
      expect(relativeError(logits, base.nextTokenLogits(ids))).toBeGreaterThan(1e-3);
      expect(maxAbsDiff(logits, mergedLogits)).toBeLessThan(1e-5);
      for (const m of [model, merged, base]) m.dispose();
    });
  }

  it('keeps tf.memory().numTensors flat across steps (classification and causal-lm)', () => {
    for (const task of ['classification', 'causal-lm'] as const) {
      const model = TaskModel.create(config, randomBaseWeights(config, 7, { std: 0.3 }), modelSpec(task, { peft: loraSpec({ targetModules: ['q', 'embed'], loraDropout: 0.1 }) }));
      model.setTrainable(adapted(model, 4));
      const batch = makeBatch(3, [8, 5, 6], 8, task, config.vocabSize);
      model.computeGradients(batch);
      model.evaluate(batch);
      // The first call of a new sequence length caches its RoPE tables.
      if (task === 'causal-lm') model.nextTokenLogits([1, 2, 3]);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 10; i++) model.computeGradients(batch);
      model.evaluate(batch);
      if (task === 'causal-lm') model.nextTokenLogits([1, 2, 3]);
      expect(tf.memory().numTensors).toBe(before);
      model.dispose();
    }
  });
});
