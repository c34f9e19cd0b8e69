/**
 * Federated rounds end to end over real WebSockets on loopback: the round engine, the strategy, local training on
 * workers, centralized evaluation, and the FedAvg invariant (one client, one local SGD step = one SGD step of the
 * same batch computed independently in one process).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { prepareRun } from '../../coordinator/run.js';
import { runWithInProcessWorkers } from '../helpers/in-process-workers.js';
import type { RunConfig } from '../../shared/config.js';
import { collateBatch } from '../../shared/data/index.js';
import { buildTrainableModel } from '../../shared/model/build-trainable-model.js';
import { readSafetensors } from '../../shared/formats/safetensors.js';
import { selectBackend, type BackendReport } from '../../worker/backend.js';
import { dpConfig, makeDpFixture, maxRelativeDifference, type DpFixture } from '../helpers/dp-fixture.js';

let fixture: DpFixture;
let backend: BackendReport;

beforeAll(async () => {
  fixture = await makeDpFixture();
  backend = await selectBackend('auto');
});

const runWithWorkers = (config: RunConfig, numWorkers: number) => runWithInProcessWorkers(config, numWorkers, backend);

function metricsOf(outputDir: string): Record<string, unknown>[] {
  return readFileSync(join(outputDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
}

describe('federated rounds over WebSockets', () => {
  it('FedAvg with one client, one local SGD step on its whole shard equals one SGD step computed in one process', async () => {
    const config = dpConfig(fixture, 1, {
      mode: 'federated',
      num_rounds: 1,
      min_fit_clients: 1,
      min_available_clients: 1,
      client_optimizer: 'sgd',
      local_steps: 1,
      per_device_train_batch_size: 64,
      learning_rate: 0.5,
      weight_decay: 0,
      max_grad_norm: 0,
      warmup_steps: 0,
    });
    const { result, outcomes } = await runWithWorkers(config, 1);
    expect(outcomes.map((o) => o.kind)).toEqual(['stopped']);

    const prepared = await prepareRun(config);
    const model = buildTrainableModel(prepared.loaded, prepared.modelSpec);
    try {
      model.setTrainable(prepared.initial);
      const batch = collateBatch(prepared.train, { task: config.task, padId: prepared.loaded.tokenizer.padId });
      const { grads, stats } = model.computeGradients(batch);
      const expected = new Map([...prepared.initial].map(([name, w]) => {
        const g = grads.get(name)!;
        return [name, Float32Array.from(w, (v, i) => v - (config.learning_rate * g[i]) / stats.numLossItems)];
      }));
      expect(maxRelativeDifference(expected, prepared.initial)).toBeGreaterThan(1e-3);
      expect(maxRelativeDifference(result.params, expected)).toBeLessThan(1e-5);
    } finally {
      model.dispose();
    }
  });

  it('runs rounds of sampled virtual clients on two workers, evaluates centrally and on clients, and records the shard plan', async () => {
    const config = dpConfig(fixture, 2, {
      mode: 'federated',
      num_rounds: 3,
      num_clients: 4,
      fraction_fit: 0.5,
      fraction_evaluate: 0.5,
      min_fit_clients: 2,
      min_evaluate_clients: 2,
      min_available_clients: 2,
      partition: 'dirichlet',
      dirichlet_alpha: 5,
      local_epochs: 1,
    });
    const { result, outcomes } = await runWithWorkers(config, 2);
    expect(outcomes.map((o) => o.kind)).toEqual(['stopped', 'stopped']);
    expect(result.steps).toBe(3);
    const records = metricsOf(result.outputDir);
    const rounds = records.filter((r) => r.event === 'round');
    expect(rounds.map((r) => r.round)).toEqual([1, 2, 3]);
    for (const round of rounds) {
      expect(round.sampled).toBe(2);
      expect(round.completed).toBe(2);
      expect(round.aggregated).toBe(true);
      expect(Number.isFinite(round.train_loss)).toBe(true);
    }
    const federatedEvals = records.filter((r) => r.event === 'federated_eval');
    expect(federatedEvals).toHaveLength(3);
    expect((federatedEvals[0].per_client as unknown[]).length).toBe(2);
    expect(records.filter((r) => r.event === 'eval')).toHaveLength(3);
    const manifest = JSON.parse(readFileSync(join(result.outputDir, 'manifest.json'), 'utf8'));
    expect(manifest.shard_plan.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.shard_plan.plan.clients).toHaveLength(4);
    const { initial } = await prepareRun(config);
    expect(maxRelativeDifference(result.params, initial)).toBeGreaterThan(1e-3);
  });

  it('FedBuff: aggregates every K arrivals without round barriers, with staleness recorded', async () => {
    const config = dpConfig(fixture, 2, {
      mode: 'federated',
      num_rounds: 3,
      num_clients: 6,
      fraction_fit: 0.5,
      min_fit_clients: 2,
      min_available_clients: 2,
      async_buffer_size: 2,
      local_epochs: 1,
    });
    const { result, outcomes } = await runWithWorkers(config, 2);
    expect(outcomes.map((o) => o.kind)).toEqual(['stopped', 'stopped']);
    const aggregations = metricsOf(result.outputDir).filter((r) => r.event === 'round');
    expect(aggregations.map((r) => r.round)).toEqual([1, 2, 3]);
    for (const a of aggregations) {
      expect(a.mode).toBe('fedbuff');
      expect(a.completed).toBe(2);
    }
    // Three clients train at once on two workers: the third started from version 0 lands after the first step.
    const staleness = aggregations.flatMap((a) => a.staleness as number[]);
    expect(Math.max(...staleness)).toBeGreaterThan(0);
    const { initial } = await prepareRun(config);
    expect(maxRelativeDifference(result.params, initial)).toBeGreaterThan(1e-3);
  });

  it('exact LoRA aggregation: workers compute with the residual folded into their base, as the saved residuals say', async () => {
    const config = dpConfig(fixture, 2, {
      mode: 'federated',
      num_rounds: 2,
      num_clients: 4,
      fraction_fit: 1,
      min_fit_clients: 2,
      min_available_clients: 2,
      lora_aggregation: 'exact',
      local_epochs: 2,
    });
    const { result } = await runWithWorkers(config, 2);
    const residualFile = await readSafetensors(join(result.outputDir, 'base_residuals.safetensors'));
    expect(residualFile.tensors.length).toBeGreaterThan(0);
    const residualNorm = Math.hypot(...residualFile.tensors.flatMap((t) => [...t.data]));
    expect(residualNorm).toBeGreaterThan(1e-6);

    // The eval loss the workers reported must be the loss of base + residual + adapter, recomputed here.
    const prepared = await prepareRun(config);
    const model = buildTrainableModel(prepared.loaded, prepared.modelSpec);
    try {
      model.setTrainable(result.params);
      const batch = collateBatch(prepared.eval, { task: config.task, padId: prepared.loaded.tokenizer.padId });
      const withoutResidual = model.evaluate(batch);
      model.setBaseResiduals(new Map(residualFile.tensors.map((t) => [t.name, t.data])));
      const withResidual = model.evaluate(batch);
      const lossOf = (stats: { lossSum: number; numLossItems: number }) => stats.lossSum / stats.numLossItems;
      expect(Math.abs(lossOf(withResidual) - result.evalLoss)).toBeLessThan(1e-4);
      expect(Math.abs(lossOf(withoutResidual) - result.evalLoss)).toBeGreaterThan(Math.abs(lossOf(withResidual) - result.evalLoss));
    } finally {
      model.dispose();
    }
  });

  it('the same shard plan gives the same model whether clients load data locally or get it shipped, and whether they are virtual or pinned to workers', async () => {
    const base = { mode: 'federated', num_rounds: 2, fraction_fit: 1, min_fit_clients: 2, min_available_clients: 2, partition: 'iid' };
    const local = await runWithWorkers(dpConfig(fixture, 2, { ...base, num_clients: 2, data_delivery: 'local' }), 2);
    const shipped = await runWithWorkers(dpConfig(fixture, 2, { ...base, num_clients: 2, data_delivery: 'ship' }), 2);
    const pinned = await runWithWorkers(dpConfig(fixture, 2, { ...base, num_clients: -1, data_delivery: 'local' }), 2);
    const planOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).shard_plan.sha256;
    expect(planOf(shipped.result.outputDir)).toBe(planOf(local.result.outputDir));
    expect(planOf(pinned.result.outputDir)).toBe(planOf(local.result.outputDir));
    expect(maxRelativeDifference(shipped.result.params, local.result.params)).toBeLessThan(1e-6);
    expect(maxRelativeDifference(pinned.result.params, local.result.params)).toBeLessThan(1e-6);
  });
});
