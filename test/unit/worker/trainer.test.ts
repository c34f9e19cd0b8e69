import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { float32Blob, tensorsToBlobs } from '../../../shared/codec.js';
import { batchToWire } from '../../../shared/protocol/batch.js';
import { decodeTensor } from '../../../shared/codecs/index.js';
import { makeMessage } from '../../../shared/protocol/build.js';
import { MsgKind } from '../../../shared/protocol/messages.js';
import { randomBaseWeights } from '../../../shared/model/random-weights.js';
import { TaskModel } from '../../../shared/model/task-model.js';
import { ErrorCode, OrchestratorError } from '../../../shared/errors.js';
import { selectBackend } from '../../../worker/backend.js';
import { DataParallelRank } from '../../../worker/trainer.js';
import { DEFAULT_TOPK_GRADIENT_OPTIONS } from '../../../worker/topk-gradients.js';
import { makeBatch, modelSpec, tinyConfig } from '../shared/model/tiny-models.js';

const config = tinyConfig();
let model: TaskModel;
let rank: DataParallelRank;

beforeAll(async () => {
  await selectBackend('auto');
  model = TaskModel.create(config, randomBaseWeights(config, 3), modelSpec('classification'));
  rank = new DataParallelRank(model);
});

afterAll(() => model.dispose());

function gradRequest(step: number, params?: Map<string, Float32Array>) {
  const batch = makeBatch(step, [5, 7, 3], 8, 'classification', config.vocabSize);
  return makeMessage(MsgKind.GRAD_REQUEST, {
    step,
    paramsVersion: step,
    ...(params ? { params: tensorsToBlobs(params, model.manifest) } : {}),
    batch: batchToWire(batch),
    dropoutSeed: step,
  });
}

describe('DataParallelRank', () => {
  it('keeps tf.memory().numTensors flat across 20 gradient steps with new parameters each step', () => {
    let afterFirst = -1;
    for (let step = 0; step < 20; step++) {
      const reply = rank.gradients(gradRequest(step, model.initTrainable(step)));
      expect(reply.grads.map((g) => g.name)).toEqual(model.manifest.map((s) => s.name));
      expect(reply.stats.numSamples).toBe(3);
      if (step === 0) afterFirst = tf.memory().numTensors;
    }
    expect(tf.memory().numTensors).toBe(afterFirst);
  });

  it('rejects a NaN parameter naming the tensor and keeps the parameters it had', () => {
    const good = model.initTrainable(100);
    rank.gradients(gradRequest(100, good));
    const before = rank.evaluate(makeMessage(MsgKind.EVAL_REQUEST, { step: 100, paramsVersion: 100, batch: gradRequest(1).batch }));
    const bad = tensorsToBlobs(good, model.manifest);
    const victim = model.manifest[0];
    const poisoned = new Float32Array(good.get(victim.name)!);
    poisoned[3] = Number.NaN;
    bad[0] = float32Blob(victim.name, victim.shape, poisoned);
    const request = { ...gradRequest(101), params: bad };
    expect(() => rank.gradients(request)).toThrow(victim.name);
    expect(() => rank.gradients(request)).toThrow(expect.objectContaining({ code: ErrorCode.TENSOR_NON_FINITE }));
    const after = rank.evaluate(makeMessage(MsgKind.EVAL_REQUEST, { step: 100, paramsVersion: 100, batch: gradRequest(1).batch }));
    expect(after.stats).toEqual(before.stats);
  });

  it('refuses a request without parameters for a version it does not hold', () => {
    expect(() => rank.gradients(gradRequest(555))).toThrow(OrchestratorError);
  });

  it('sparse_optimizer worker: sends sparse updates, computes at θ + residual, and evaluates at θ', () => {
    const policy = { default: { codec: 'topk' as const, density: 0.05 }, overrides: [] };
    const worker = new DataParallelRank(model, policy, true, undefined, {
      adamw: { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 },
      schedule: { baseLearningRate: 0.01, type: 'constant', warmupSteps: 0, totalSteps: 10 },
      maxGradNorm: 1,
      lookahead: true,
    });
    const params = model.initTrainable(7);
    const plain = new DataParallelRank(model);
    plain.gradients({ ...gradRequest(300, params), paramsVersion: 300 });
    const reference = plain.evaluate(makeMessage(MsgKind.EVAL_REQUEST, { step: 300, paramsVersion: 300, batch: gradRequest(1).batch }));
    const evalAt = (r: DataParallelRank) => r.evaluate(makeMessage(MsgKind.EVAL_REQUEST, { step: 200, paramsVersion: 200, batch: gradRequest(1).batch }));
    const first = worker.gradients({ ...gradRequest(200, params), paramsVersion: 200 });
    // An AdamW update's entries are about ±lr, never a raw gradient's scale.
    const sent = first.grads.flatMap((b) => [...decodeTensor(b)]).filter((v) => v !== 0);
    expect(sent.length).toBeGreaterThan(0);
    for (const v of sent) expect(Math.abs(v)).toBeLessThanOrEqual(0.0101);
    const before = tf.memory().numTensors;
    for (let step = 1; step < 4; step++) worker.gradients({ ...gradRequest(200 + step), paramsVersion: 200 });
    expect(tf.memory().numTensors).toBe(before);
    // The model held θ + residual for the gradients; evaluation puts θ back, as a plain rank holding θ sees it.
    expect(evalAt(worker).stats).toEqual(reference.stats);
  });

  it('sparse_optimizer worker with Fisher ranking over one global budget: ⌊density · all coordinates⌋ entries a result', () => {
    const policy = { default: { codec: 'topk' as const, density: 0.05 }, overrides: [] };
    const worker = new DataParallelRank(model, policy, true, { ...DEFAULT_TOPK_GRADIENT_OPTIONS, scope: 'global', selection: 'fisher' }, {
      adamw: { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 },
      schedule: { baseLearningRate: 0.01, type: 'constant', warmupSteps: 0, totalSteps: 10 },
      maxGradNorm: 1,
      lookahead: true,
      momentumMasking: true,
      residualDecay: 0.9,
      selection: 'fisher',
    });
    const total = model.manifest.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    const params = model.initTrainable(9);
    for (let step = 0; step < 3; step++) {
      const reply = worker.gradients({ ...gradRequest(400 + step, step === 0 ? params : undefined), paramsVersion: 400 });
      expect(reply.grads.reduce((k, b) => k + b.data.byteLength / 8, 0)).toBe(Math.floor(0.05 * total));
    }
  });
});
