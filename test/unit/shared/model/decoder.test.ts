import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomBaseWeights } from '../../../../shared/model/random-weights.js';
import { TaskModel } from '../../../../shared/model/task-model.js';
import { selectBackend } from '../../../../worker/backend.js';
import { referenceLogits } from './reference-llama.js';
import { loraSpec, modelSpec, relativeError, tinyConfig } from './tiny-models.js';

describe('decoder forward pass', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  for (const [nHeads, nKvHeads, untiedOutput] of [
    [4, 2, true],
    [4, 4, false],
    [4, 1, false],
  ] as const) {
    it(`matches a float64 llama2.c-style reference (${nHeads} heads, ${nKvHeads} kv heads, ${untiedOutput ? 'untied' : 'tied'} output)`, () => {
      const config = tinyConfig({ nHeads, nKvHeads, nLayers: 3 });
      const weights = randomBaseWeights(config, 17, { std: 0.4, untiedOutput });
      const model = TaskModel.create(config, weights, modelSpec('causal-lm', { peft: loraSpec({ targetModules: ['q'] }) }));
      const ids = [1, 9, 4, 33, 2, 17, 5, 5, 30];
      const reference = referenceLogits(config, weights, ids);
      for (let t = 1; t <= ids.length; t++) expect(relativeError(model.nextTokenLogits(ids.slice(0, t)), reference[t - 1])).toBeLessThan(1e-5);
      model.dispose();
      expect(tf.memory().numTensors).toBe(0);
    });
  }
});
