/**
 * The real pretrained checkpoint (../shared/models/stories260K.gguf, see PROVENANCE.md): facts the model must
 * reproduce if the decoder, RoPE layout, GQA and tokenizer are right. Skipped, loudly, when the file is absent.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../../../../shared/model/generate.js';
import type { LoadedModel } from '../../../../shared/model/load-gguf.js';
import { loadLlamaGguf } from '../../../../shared/model/load-gguf.js';
import { randomBaseWeights } from '../../../../shared/model/random-weights.js';
import { TaskModel } from '../../../../shared/model/task-model.js';
import type { Batch, ModelSpec } from '../../../../shared/model/types.js';
import { selectBackend } from '../../../../worker/backend.js';
import { referenceLogits } from './reference-llama.js';
import { relativeError } from './tiny-models.js';

const MODEL_PATH = fileURLToPath(new URL('../../../../../shared/models/stories260K.gguf', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../../../fixtures/tinystories.txt', import.meta.url));
const hasModel = existsSync(MODEL_PATH);
if (!hasModel) console.warn(`\n*** SKIPPING stories260K checkpoint tests: ${MODEL_PATH} is absent ***\n`);

const SPEC: ModelSpec = {
  task: 'causal-lm',
  numLabels: 2,
  pooling: 'mean',
  peft: { method: 'lora', r: 4, loraAlpha: 8, loraDropout: 0, targetModules: ['q', 'v'], useRslora: false },
};

/** One right-padded causal-lm batch of every story of the fixture, each starting with BOS. */
function storiesBatch(loaded: LoadedModel): Batch {
  const stories = readFileSync(FIXTURE, 'utf8').split(/\n\s*\n/).map((s) => s.trim()).filter(Boolean);
  const encoded = stories.map((s) => loaded.tokenizer.encode(s, { addBos: true }));
  const seqLen = Math.max(...encoded.map((e) => e.length));
  const batchSize = encoded.length;
  const inputIds = new Int32Array(batchSize * seqLen);
  const attentionMask = new Int32Array(batchSize * seqLen);
  const labels = new Int32Array(batchSize * seqLen).fill(-100);
  encoded.forEach((ids, b) => {
    ids.forEach((id, t) => {
      inputIds[b * seqLen + t] = id;
      attentionMask[b * seqLen + t] = 1;
      if (t + 1 < ids.length) labels[b * seqLen + t] = ids[t + 1];
    });
  });
  return { batchSize, seqLen, inputIds, attentionMask, labels };
}

describe.skipIf(!hasModel)('stories260K.gguf', () => {
  let loaded: LoadedModel;
  let model: TaskModel;

  beforeAll(async () => {
    await selectBackend('wasm');
    loaded = await loadLlamaGguf(MODEL_PATH);
    model = TaskModel.create(loaded.config, loaded.weights, SPEC);
  });
  afterAll(() => {
    model?.dispose();
    expect(tf.memory().numTensors).toBe(0);
  });

  it('greedy decoding from BOS tells the story of Lily', () => {
    const text = generate(model, loaded.tokenizer, '', { maxNewTokens: 40 });
    expect(text).toMatch(/^Once upon a time, there was a little girl named Lily\. She loved to play outside in the park\./);
  });

  it('gives the logits of an independent float64 llama2.c-style forward pass', () => {
    const ids = loaded.tokenizer.encode('Tim had a small dog named Max. Max liked to run.', { addBos: true });
    const reference = referenceLogits(loaded.config, loaded.weights, ids);
    for (const t of [1, 5, ids.length]) expect(relativeError(model.nextTokenLogits(ids.slice(0, t)), reference[t - 1])).toBeLessThan(1e-5);
  });

  // PROVENANCE.md says "about 0.65 nats"; measured here: 1.21 on this hand-written fixture, 1.40 on the model's own
  // temperature-1 samples, 0.59 on its temperature-0.5 samples (llama2.c reports val loss ≈ 1.3 for this model).
  // 0.65 is the entropy of the model's low-temperature text, not of human-written stories, so the bound is 1.5:
  // far below a random model's ln 512 = 6.24, which is what this test tells apart.
  it('predicts the TinyStories-style fixture at under 1.5 nats per token; a random model of the same shape does not', () => {
    const batch = storiesBatch(loaded);
    const stats = model.evaluate(batch);
    const nll = stats.lossSum / stats.numLossItems;
    expect(stats.numLossItems).toBeGreaterThan(500);
    expect(nll).toBeLessThan(1.5);
    expect(nll).toBeGreaterThan(0.3);

    const random = TaskModel.create(loaded.config, randomBaseWeights(loaded.config, 1, { std: 0.05 }), SPEC);
    const randomStats = random.evaluate(batch);
    random.dispose();
    expect(randomStats.lossSum / randomStats.numLossItems).toBeGreaterThan(Math.log(512));
  });
});
