import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobToFloat32, tensorsToBlobs } from '../../../shared/codec.js';
import { collateBatch } from '../../../shared/data/index.js';
import type { TokenizedItem } from '../../../shared/data/types.js';
import { ErrorCode } from '../../../shared/errors.js';
import type { TaskModel } from '../../../shared/model/task-model.js';
import { batchToWire } from '../../../shared/protocol/batch.js';
import { makeMessage } from '../../../shared/protocol/build.js';
import { MsgKind } from '../../../shared/protocol/messages.js';
import type { NamedTensors } from '../../../shared/tensors.js';
import { selectBackend } from '../../../worker/backend.js';
import { loraANames, trainLocally, type LocalTrainingOptions } from '../../../worker/local-training.js';
import { DataParallelRank } from '../../../worker/trainer.js';
import { relativeError } from '../shared/model/tiny-models.js';
import { globalValues, makeExamples, makeModel, PAD_ID, sgdConfig } from './federated-fixture.js';

let model: TaskModel;
/** An independent model (same base) for reference computations. */
let reference: TaskModel;
let global: NamedTensors;
const dataset = makeExamples(20, 11);
/** The client's examples: 6 of the 20. */
const indices = [3, 17, 0, 9, 12, 5];
const shard = { dataset, indices };
const padding = { padId: PAD_ID };

beforeAll(async () => {
  await selectBackend('auto');
  model = makeModel();
  reference = makeModel();
  global = globalValues(model);
});

afterAll(() => {
  model.dispose();
  reference.dispose();
});

function train(config: LocalTrainingOptions) {
  return trainLocally({ model, global, shard, config, padding });
}

/** Mean gradient (over loss items) of `items` at `values`, through the data-parallel rank's gradient request. */
function dataParallelMeanGradient(values: NamedTensors, items: readonly TokenizedItem[], version: number) {
  const rank = new DataParallelRank(reference);
  const batch = collateBatch(items, { task: 'classification', padId: PAD_ID });
  const reply = rank.gradients(
    makeMessage(MsgKind.GRAD_REQUEST, { step: 0, paramsVersion: version, params: tensorsToBlobs(values, reference.manifest), batch: batchToWire(batch), dropoutSeed: 0 }),
  );
  const mean = new Map<string, Float64Array>();
  for (const blob of reply.grads) mean.set(blob.name, Float64Array.from(blobToFloat32(blob), (g) => g / reply.stats.numLossItems));
  return { mean, loss: reply.stats.lossSum / reply.stats.numLossItems };
}

function expectClose(actual: NamedTensors, expected: Map<string, ArrayLike<number>>, tolerance: number) {
  expect([...actual.keys()]).toEqual([...expected.keys()]);
  for (const [name, e] of expected) expect(relativeError(actual.get(name)!, e), name).toBeLessThan(tolerance);
}

const shardItems = () => indices.map((i) => dataset[i]);

describe('trainLocally', () => {
  it('gives the same delta for the same inputs, and another for another seed', async () => {
    const config = sgdConfig({ localEpochs: 2, momentum: 0.9 });
    const a = await train(config);
    const b = await train(config);
    expect(a.steps).toBe(4);
    for (const [name, d] of a.delta) expect(b.delta.get(name), name).toEqual(d);
    const c = await train({ ...config, seed: 8 });
    expect(relativeError(c.delta.get('score.weight')!, a.delta.get('score.weight')!)).toBeGreaterThan(1e-4);
  });

  it('one SGD step on the whole shard: delta = −η · the data-parallel mean gradient (FedAvg building block)', async () => {
    const learningRate = 0.05;
    const result = await train(sgdConfig({ localSteps: 1, batchSize: indices.length, learningRate }));
    const { mean, loss } = dataParallelMeanGradient(global, shardItems(), 1);
    const expected = new Map([...mean].map(([name, g]) => [name, g.map((x) => -learningRate * x)]));
    expectClose(result.delta, expected, 1e-5);
    expect(result.steps).toBe(1);
    expect(result.numExamples).toBe(6);
    expect(result.numExamplesSeen).toBe(6);
    expect(result.numTokens).toBe(shardItems().reduce((s, item) => s + item.ids.length, 0));
    expect(result.trainLoss).toBeCloseTo(loss, 5);
    // A's gradient is not zero (B is non-zero), so the check covers every tensor.
    const firstA = loraANames(model.manifest)[0];
    expect(Math.max(...result.delta.get(firstA)!.map(Math.abs))).toBeGreaterThan(0);
  });

  it('FedProx: μ·(w − w_global) joins the gradient; two full-batch SGD steps equal the hand computation', async () => {
    const eta = 0.1;
    const mu = 2;
    const config = sgdConfig({ localSteps: 2, batchSize: indices.length, learningRate: eta });
    const prox = await train({ ...config, proximalMu: mu });
    const plain = await train(config);

    // Hand computation, float64: w1 = wg − η g(wg);  w2 = w1 − η (g(w1) + μ (w1 − wg)).
    const g0 = dataParallelMeanGradient(global, shardItems(), 10).mean;
    const w1 = new Map([...g0].map(([name, g]) => [name, Float64Array.from(global.get(name)!, (w, i) => w - eta * g[i])]));
    const g1 = dataParallelMeanGradient(new Map([...w1].map(([n, w]) => [n, Float32Array.from(w)])), shardItems(), 11).mean;
    const expectedProx = new Map<string, Float64Array>();
    const expectedPlain = new Map<string, Float64Array>();
    for (const [name, w] of w1) {
      const wg = global.get(name)!;
      const g = g1.get(name)!;
      expectedProx.set(name, w.map((x, i) => x - eta * (g[i] + mu * (x - wg[i])) - wg[i]));
      expectedPlain.set(name, w.map((x, i) => x - eta * g[i] - wg[i]));
    }
    expectClose(prox.delta, expectedProx, 1e-5);
    expectClose(plain.delta, expectedPlain, 1e-5);
    // The proximal term pulls towards the global weights: it changes the result, by far more than the tolerance.
    expect(relativeError(prox.delta.get('score.weight')!, plain.delta.get('score.weight')!)).toBeGreaterThan(1e-3);
  });

  it('FFA-LoRA: with every lora_A frozen, returns only B and the head and leaves A at its global value', async () => {
    const frozen = loraANames(model.manifest);
    expect(frozen.length).toBeGreaterThan(0);
    const result = await train(sgdConfig({ localEpochs: 2, frozen, momentum: 0.9, weightDecay: 0.1 }));
    const expectedNames = model.manifest.map((s) => s.name).filter((n) => !frozen.includes(n));
    expect([...result.delta.keys()]).toEqual(expectedNames);
    const after = model.getTrainable();
    for (const name of frozen) expect(after.get(name), name).toEqual(global.get(name));
    const someB = expectedNames.find((n) => n.includes('lora_B'))!;
    expect(Math.max(...result.delta.get(someB)!.map(Math.abs))).toBeGreaterThan(0);
  });

  it('runs AdamW and counts steps over epochs (ceil(6 / 4) = 2 per epoch), examples and tokens seen', async () => {
    const result = await train(sgdConfig({ optimizer: 'adamw', learningRate: 1e-2, localEpochs: 3, maxGradNorm: 1 }));
    expect(result.steps).toBe(6);
    expect(result.numExamplesSeen).toBe(18);
    expect(result.numTokensSeen).toBe(3 * result.numTokens);
    expect(result.optimizerState.kind).toBe('adamw');
    expect(result.optimizerState.state.step).toBe(6);
    for (const d of result.delta.values()) expect(d.every(Number.isFinite)).toBe(true);
    expect(Math.max(...result.delta.get('score.weight')!.map(Math.abs))).toBeGreaterThan(1e-3);
  });

  it('local_steps cycles through reshuffled epochs', async () => {
    expect((await train(sgdConfig({ localSteps: 5, batchSize: 4 }))).steps).toBe(5);
    expect((await train(sgdConfig({ localSteps: 5, batchSize: 4 }))).numExamplesSeen).toBe(4 + 2 + 4 + 2 + 4);
  });

  it('refuses bad configs, unknown frozen names and empty or out-of-range shards with stable codes', async () => {
    await expect(train(sgdConfig({ batchSize: 0 }))).rejects.toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
    await expect(train(sgdConfig({ localSteps: 0 }))).rejects.toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
    await expect(train(sgdConfig({ momentum: 1 }))).rejects.toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
    await expect(train(sgdConfig({ proximalMu: -1 }))).rejects.toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
    await expect(train(sgdConfig({ frozen: ['nope.weight'] }))).rejects.toThrow(expect.objectContaining({ code: ErrorCode.TENSOR_NAME }));
    const cfg = sgdConfig();
    await expect(trainLocally({ model, global, shard: { dataset, indices: [] }, config: cfg, padding })).rejects.toThrow(
      expect.objectContaining({ code: ErrorCode.DATASET }),
    );
    await expect(trainLocally({ model, global, shard: { dataset, indices: [20] }, config: cfg, padding })).rejects.toThrow(
      expect.objectContaining({ code: ErrorCode.TENSOR_RANGE }),
    );
  });

  it('reports divergence as a non-finite delta error naming the tensor', async () => {
    await expect(train(sgdConfig({ learningRate: 1e300, localEpochs: 2 }))).rejects.toThrow(expect.objectContaining({ code: ErrorCode.TENSOR_NON_FINITE }));
  });
});
