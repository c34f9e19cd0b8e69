/**
 * S1: a federated client's worker process SIGKILLed as its round's `fit_request` arrives (real processes, the
 * fault injected through the worker's environment): the coordinator sees the connection close, the round
 * completes with the survivors well inside `round_timeout` + 0.5 s, and the new global model equals FedAvg over
 * the survivors computed independently here (each survivor's update retrained with `trainLocally` from the same
 * global values, shard and seed, then averaged with example weights).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCoordinator, prepareRun } from '../../coordinator/run.js';
import { startLocalWorkers, type LocalWorkers } from '../../coordinator/local-workers.js';
import { localTrainingConfigOf, shardPlansOf } from '../../coordinator/federated/run-federated.js';
import { CRASH_FIT_ENV } from '../../worker/fault-injection.js';
import { trainLocally } from '../../worker/local-training.js';
import { selectBackend } from '../../worker/backend.js';
import { buildTrainableModel } from '../../shared/model/build-trainable-model.js';
import { dpConfig, makeDpFixture, type DpFixture } from '../helpers/dp-fixture.js';
import { recordFigure } from '../helpers/reliability-figures.js';

let fixture: DpFixture;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

beforeAll(async () => {
  fixture = await makeDpFixture();
  await selectBackend('cpu');
  process.on('unhandledRejection', onUnhandled);
});

afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
});

/** Generous: the crashed round is the first one, with cold kernels on a loaded machine; survivors end it early. */
const ROUND_TIMEOUT_S = 20;
const NUM_WORKERS = 3;
const CRASHED_WORKER = 1;

describe('S1: a worker SIGKILLed in its local step', () => {
  it('S1: the round completes with the survivors within round_timeout + 0.5 s and the aggregate equals FedAvg over the survivors', { timeout: 120_000 }, async () => {
    const config = dpConfig(fixture, NUM_WORKERS, {
      mode: 'federated',
      backend: 'cpu',
      num_rounds: 1,
      num_clients: -1,
      fraction_fit: 1,
      min_fit_clients: 2,
      min_available_clients: NUM_WORKERS,
      min_completion_rate: 0.5,
      round_timeout: ROUND_TIMEOUT_S,
      local_epochs: 2,
      eval_on_start: false,
    });
    let workers!: LocalWorkers;
    const lines: string[] = [];
    const result = await runCoordinator(config, {
      log: (line) => lines.push(line),
      onListening: (url) => {
        workers = startLocalWorkers(NUM_WORKERS, url, ['--backend', 'cpu'], (line) => lines.push(line), (index): Record<string, string> =>
          index === CRASHED_WORKER ? { [CRASH_FIT_ENV]: 'round=1' } : {},
        );
      },
    });
    await workers.stop();
    expect(workers.processes[CRASHED_WORKER].signalCode).toBe('SIGKILL');

    const records = readFileSync(join(result.outputDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const round = records.find((r) => r.event === 'round' && r.round === 1);
    expect(round.sampled).toBe(NUM_WORKERS);
    expect(round.completed).toBe(NUM_WORKERS - 1);
    expect(round.completed / round.sampled).toBeGreaterThanOrEqual(0.5);
    expect(round.aggregated).toBe(true);
    expect(round.failures.map((f: { code: string }) => f.code)).toEqual(['E_WORKER_LOST']);
    expect(round.round_ms).toBeLessThanOrEqual(ROUND_TIMEOUT_S * 1000 + 500);
    const survivors: string[] = round.completed_clients;
    expect(survivors).not.toContain(round.failures[0].client);

    // The reference: each survivor's update retrained here from the initial global values, then FedAvg.
    const prepared = await prepareRun(config);
    const plans = shardPlansOf(config, prepared, NUM_WORKERS);
    const model = buildTrainableModel(prepared.loaded, prepared.modelSpec);
    const sums = new Map([...prepared.initial].map(([name, v]) => [name, new Float64Array(v.length)]));
    let totalWeight = 0;
    try {
      for (const clientId of survivors) {
        const planId = Number(/^client-(\d+)$/.exec(clientId)![1]);
        const local = await trainLocally({
          model,
          global: prepared.initial,
          shard: { dataset: prepared.train, indices: plans.train.clients[planId].indices },
          config: { ...localTrainingConfigOf(config, 1, planId), proximalMu: 0 },
          padding: { padId: prepared.loaded.tokenizer.padId },
        });
        totalWeight += local.numExamples;
        for (const [name, d] of local.delta) {
          const sum = sums.get(name)!;
          for (let i = 0; i < d.length; i++) sum[i] += local.numExamples * d[i];
        }
      }
    } finally {
      model.dispose();
    }
    let maxAbsDiff = 0;
    let maxDelta = 0;
    for (const [name, initial] of prepared.initial) {
      const got = result.params.get(name)!;
      const sum = sums.get(name)!;
      for (let i = 0; i < initial.length; i++) {
        const expected = Math.fround(initial[i] + sum[i] / totalWeight);
        maxAbsDiff = Math.max(maxAbsDiff, Math.abs(got[i] - expected));
        maxDelta = Math.max(maxDelta, Math.abs(sum[i] / totalWeight));
      }
    }
    // The round moved the model (so the comparison means something), and exactly to the survivors' FedAvg.
    expect(maxDelta).toBeGreaterThan(1e-3);
    expect(maxAbsDiff).toBeLessThanOrEqual(1e-6);
    expect(unhandled).toEqual([]);
    recordFigure('S1', `round with ${survivors.length}/${round.sampled} survivors: ${round.round_ms.toFixed(0)} ms (round_timeout ${ROUND_TIMEOUT_S} s), max abs diff to survivors' FedAvg ${maxAbsDiff.toExponential(2)}`);
  });
});
