import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../shared/errors.js';
import type { TaskModel } from '../../../shared/model/task-model.js';
import type { NamedTensors } from '../../../shared/tensors.js';
import { selectBackend } from '../../../worker/backend.js';
import { trainLocally } from '../../../worker/local-training.js';
import { optimizerStateBytes, VirtualClientHost } from '../../../worker/virtual-clients.js';
import { globalValues, makeExamples, makeModel, PAD_ID, sgdConfig } from './federated-fixture.js';

const NUM_CLIENTS = 20;
const dataset = makeExamples(NUM_CLIENTS * 8, 5);
const evalDataset = makeExamples(NUM_CLIENTS * 3, 6);
// A fixed padded length: one RoPE table for every batch, so the model's caches do not grow with new lengths.
const padding = { padId: PAD_ID, seqLen: 10 };
const clientId = (c: number) => `client-${c}`;
let model: TaskModel;

beforeAll(async () => {
  await selectBackend('auto');
  model = makeModel();
});

afterAll(() => model.dispose());

function makeHost(options: Partial<ConstructorParameters<typeof VirtualClientHost>[0]> = {}): VirtualClientHost {
  const host = new VirtualClientHost({ model, dataset, evalDataset, padding, ...options });
  for (let c = 0; c < NUM_CLIENTS; c++) {
    host.register(clientId(c), {
      trainIndices: Array.from({ length: 8 }, (_, i) => c * 8 + i),
      evalIndices: [3 * c, 3 * c + 1, 3 * c + 2],
    });
  }
  return host;
}

/** global + the plain mean of the deltas (FedAvg with equal weights), for the next round. */
function averaged(global: NamedTensors, deltas: NamedTensors[]): NamedTensors {
  const next: NamedTensors = new Map();
  for (const [name, w] of global) next.set(name, Float32Array.from(w, (x, i) => x + deltas.reduce((s, d) => s + d.get(name)![i], 0) / deltas.length));
  return next;
}

describe('VirtualClientHost', () => {
  it('keeps tf.memory().numTensors flat over 20 virtual clients × 2 rounds of training and evaluation', async () => {
    const host = makeHost();
    let global = globalValues(model);
    let baseline = -1;
    const losses: number[] = [];
    for (let round = 0; round < 2; round++) {
      const deltas: NamedTensors[] = [];
      let lossSum = 0;
      let items = 0;
      for (let c = 0; c < NUM_CLIENTS; c++) {
        const result = await host.fit(clientId(c), global, sgdConfig({ seed: 1000 * round + c, learningRate: 0.2 }));
        expect(result.numExamples).toBe(8);
        deltas.push(result.delta);
        if (baseline < 0) baseline = tf.memory().numTensors;
        expect(tf.memory().numTensors, `after fit of client ${c} in round ${round}`).toBe(baseline);
        const stats = host.evaluate(clientId(c), global, 2);
        expect(stats.numSamples).toBe(3);
        expect(tf.memory().numTensors, `after evaluation of client ${c} in round ${round}`).toBe(baseline);
        lossSum += stats.lossSum;
        items += stats.numLossItems;
      }
      losses.push(lossSum / items);
      global = averaged(global, deltas);
    }
    expect(host.stats()).toMatchObject({ clients: NUM_CLIENTS, fits: 2 * NUM_CLIENTS, optimizerStates: 0 });
    expect(losses.every(Number.isFinite)).toBe(true);
  });

  it('a client trained after others gets exactly what it gets alone on a fresh model: nothing leaks between clients', async () => {
    const host = makeHost();
    const global = globalValues(model, 4);
    const config = sgdConfig({ localEpochs: 2, momentum: 0.9, seed: 99 });
    for (let c = 0; c < 5; c++) await host.fit(clientId(c), globalValues(model, 10 + c), sgdConfig({ seed: c }));
    const shared = await host.fit(clientId(7), global, config);
    const fresh = makeModel();
    try {
      const alone = await trainLocally({ model: fresh, global, shard: { dataset, indices: Array.from({ length: 8 }, (_, i) => 56 + i) }, config, padding });
      for (const [name, d] of alone.delta) expect(shared.delta.get(name), name).toEqual(d);
      expect(shared.trainLoss).toBe(alone.trainLoss);
    } finally {
      fresh.dispose();
    }
  });

  it('keeps momentum between rounds when asked, bounded in bytes, least recently used evicted first', async () => {
    const config = sgdConfig({ momentum: 0.9, seed: 3 });
    const global = globalValues(model, 5);
    const forgetful = makeHost();
    const probe = await forgetful.fit(clientId(0), global, config);
    const perClient = optimizerStateBytes(probe.optimizerState);
    expect(perClient).toBeGreaterThan(0);
    const host = makeHost({ keepOptimizerState: true, maxOptimizerStateBytes: Math.floor(2.5 * perClient) });
    for (let c = 0; c < 5; c++) await host.fit(clientId(c), global, config);
    expect(host.stats()).toMatchObject({ optimizerStates: 2, optimizerStatesEvicted: 3, optimizerStateBytes: 2 * perClient });
    // Client 4 kept its momentum: its second round differs from a fresh optimizer's; client 0 was evicted: it does not.
    const kept = await host.fit(clientId(4), global, config);
    const freshFour = await forgetful.fit(clientId(4), global, config);
    expect(kept.delta.get('score.weight')).not.toEqual(freshFour.delta.get('score.weight'));
    expect(kept.optimizerState.state.step).toBe(4);
    const evicted = await host.fit(clientId(0), global, config);
    expect(evicted.delta.get('score.weight')).toEqual(probe.delta.get('score.weight'));
    expect(host.stats().optimizerStateBytes).toBeLessThanOrEqual(Math.floor(2.5 * perClient));
  });

  it('bounds the number of clients, and refuses a client it does not host unless the request names its examples', async () => {
    const host = new VirtualClientHost({ model, dataset, padding, maxClients: 2 });
    host.register('a', { trainIndices: [0, 1] });
    host.register('b', { trainIndices: [2, 3] });
    host.register('a', { trainIndices: [4, 5] });
    expect(() => host.register('c', { trainIndices: [6] })).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
    const global = globalValues(model);
    await expect(host.fit('zzz', global, sgdConfig())).rejects.toThrow(expect.objectContaining({ code: ErrorCode.DATASET }));
    expect((await host.fit('zzz', global, sgdConfig(), { dataset, indices: [7, 8, 9] })).numExamples).toBe(3);
    host.forget('a');
    expect(host.has('a')).toBe(false);
    expect(() => new VirtualClientHost({ model, dataset, padding, maxClients: 0 })).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
  });
});
