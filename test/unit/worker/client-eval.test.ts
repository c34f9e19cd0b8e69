import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collateBatch } from '../../../shared/data/index.js';
import { ErrorCode } from '../../../shared/errors.js';
import type { TaskModel } from '../../../shared/model/task-model.js';
import { selectBackend } from '../../../worker/backend.js';
import { evaluateClient } from '../../../worker/client-eval.js';
import { globalValues, makeExamples, makeModel, PAD_ID } from './federated-fixture.js';

const dataset = makeExamples(30, 21);
const indices = [29, 4, 8, 15, 16, 23, 2];
const padding = { padId: PAD_ID };
let model: TaskModel;
let reference: TaskModel;

beforeAll(async () => {
  await selectBackend('auto');
  model = makeModel();
  reference = makeModel();
});

afterAll(() => {
  model.dispose();
  reference.dispose();
});

describe('evaluateClient', () => {
  it('sums the statistics of the global values over the client examples, whatever the batch size', async () => {
    const global = globalValues(model, 2);
    reference.setTrainable(global);
    const expected = reference.evaluate(collateBatch(indices.map((i) => dataset[i]), { task: 'classification', padId: PAD_ID }));
    for (const batchSize of [1, 3, 100]) {
      const stats = evaluateClient({ model, global, shard: { dataset, indices }, batchSize, padding });
      expect(stats.numSamples).toBe(indices.length);
      expect(stats.numLossItems).toBe(expected.numLossItems);
      expect(stats.numCorrect).toBe(expected.numCorrect);
      expect(stats.numTokens).toBe(expected.numTokens);
      expect(stats.lossSum).toBeCloseTo(expected.lossSum, 4);
    }
    const other = evaluateClient({ model, global: globalValues(model, 3), shard: { dataset, indices }, batchSize: 4, padding });
    expect(other.lossSum).not.toBeCloseTo(expected.lossSum, 4);
  });

  it('gives zero statistics for no examples and refuses an index outside the dataset', async () => {
    const global = globalValues(model);
    expect(evaluateClient({ model, global, shard: { dataset, indices: [] }, batchSize: 4, padding })).toEqual({
      lossSum: 0,
      numSamples: 0,
      numLossItems: 0,
      numTokens: 0,
      numCorrect: 0,
    });
    expect(() => evaluateClient({ model, global, shard: { dataset, indices: [30] }, batchSize: 4, padding })).toThrow(
      expect.objectContaining({ code: ErrorCode.TENSOR_RANGE }),
    );
  });
});
