import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { errorCodeOf } from '../../../../shared/errors.js';
import type { GenerationTokenizer } from '../../../../shared/model/generate.js';
import { argMax, generate, sampleFromLogits } from '../../../../shared/model/generate.js';
import { randomBaseWeights } from '../../../../shared/model/random-weights.js';
import { TaskModel } from '../../../../shared/model/task-model.js';
import { selectBackend } from '../../../../worker/backend.js';
import { modelSpec, tinyConfig } from './tiny-models.js';

/** Token 0 is BOS (decoded as nothing when first, '^' elsewhere); token i ≥ 1 is the letter 96 + i. */
function letterTokenizer(eosId: number): GenerationTokenizer {
  return {
    eosId,
    encode: (text, opts) => [...(opts?.addBos ? [0] : []), ...[...text].map((c) => c.charCodeAt(0) - 96)],
    decode: (ids) =>
      ids
        .filter((i, at) => !(at === 0 && i === 0) && i !== eosId)
        .map((i) => (i === 0 ? '^' : String.fromCharCode(96 + i)))
        .join(''),
  };
}

describe('generate', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('greedy decoding follows the argmax of nextTokenLogits and returns only the continuation', () => {
    const config = tinyConfig({ vocabSize: 27 });
    const model = TaskModel.create(config, randomBaseWeights(config, 5, { std: 0.5 }), modelSpec('causal-lm'));
    try {
      const tokenizer = letterTokenizer(99);
      const text = generate(model, tokenizer, 'abc', { maxNewTokens: 6 });
      const ids = [0, 1, 2, 3];
      for (let i = 0; i < 6; i++) ids.push(argMax(model.nextTokenLogits(ids)));
      expect(text).toBe(tokenizer.decode(ids).slice(3));
      expect(text).toHaveLength(6);
      expect(generate(model, tokenizer, 'abc', { maxNewTokens: 6 })).toBe(text);
    } finally {
      model.dispose();
    }
  });

  it('stops at EOS, at maxNewTokens and at the context length; sampling is seeded', () => {
    const config = tinyConfig({ vocabSize: 27, contextLength: 8 });
    const model = TaskModel.create(config, randomBaseWeights(config, 6, { std: 0.5 }), modelSpec('causal-lm'));
    const first = argMax(model.nextTokenLogits([0]));
    expect(generate(model, letterTokenizer(first), '', { maxNewTokens: 5 })).toBe('');
    expect(generate(model, letterTokenizer(99), '', { maxNewTokens: 0 })).toBe('');
    expect(generate(model, letterTokenizer(99), 'ab', { maxNewTokens: 50 }).length).toBe(8 - 3);
    const hot = (seed: number): string => generate(model, letterTokenizer(99), 'a', { maxNewTokens: 6, temperature: 1.5, seed });
    expect(hot(1)).toBe(hot(1));
    expect(new Set([hot(1), hot(2), hot(3), hot(4)]).size).toBeGreaterThan(1);
    let err: unknown;
    try {
      generate(model, letterTokenizer(99), 'a', { maxNewTokens: -1 });
    } catch (e) {
      err = e;
    }
    expect(errorCodeOf(err)).toBe('E_CONFIG_INVALID');
    model.dispose();
    expect(tf.memory().numTensors).toBe(0);
  });

  it('samples in proportion to softmax(logits / temperature)', () => {
    const logits = Float32Array.from([Math.log(1), Math.log(3)]);
    expect(sampleFromLogits(logits, 1, 0.2)).toBe(0);
    expect(sampleFromLogits(logits, 1, 0.3)).toBe(1);
    expect(sampleFromLogits(logits, 1, 0.99)).toBe(1);
    expect(argMax(Float32Array.from([1, 5, 5, 2]))).toBe(1);
  });
});
