/**
 * Wire codecs in a real data-parallel run over loopback WebSockets: the bytes per step shrink as each codec says,
 * lossy parameter updates (deltas against the worker's exact copy) and lossy gradients still train close to fp32.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { runCoordinator } from '../../coordinator/run.js';
import type { MetricsRecord } from '../../coordinator/metrics.js';
import { selectBackend, type BackendReport } from '../../worker/backend.js';
import { connectWithRetry } from '../../worker/transport-ws.js';
import { runWorkerSession } from '../../worker/worker-runtime.js';
import { dpConfig, makeDpFixture, maxRelativeDifference, type DpFixture } from '../helpers/dp-fixture.js';

let fixture: DpFixture;
let backend: BackendReport;

beforeAll(async () => {
  fixture = await makeDpFixture();
  backend = await selectBackend('auto');
});

async function train(overrides: Record<string, unknown>, numWorkers = 2) {
  const config = dpConfig(fixture, numWorkers, { max_steps: 8, ...overrides });
  const records: MetricsRecord[] = [];
  const result = await runCoordinator(config, {
    log: () => undefined,
    onListening: (url) => {
      for (let i = 0; i < numWorkers; i++) void connectWithRetry(url).then((transport) => runWorkerSession({ transport, backend, log: () => undefined }));
    },
    onMetrics: (record) => record.event === 'train' && records.push(record),
  });
  const mean = (key: string) => records.reduce((s, r) => s + (r[key] as number), 0) / records.length;
  return { result, records, paramBytes: mean('param_bytes_per_step'), gradBytes: mean('grad_bytes_per_step') };
}

describe('wire codecs in training', () => {
  it('fp16 halves the gradient bytes, int8 takes about a quarter, and both train close to fp32', async () => {
    const fp32 = await train({});
    const fp16 = await train({ grads_codec: 'fp16', params_codec: 'fp16' });
    const int8 = await train({ grads_codec: 'int8:64', params_codec: 'fp32' });
    expect(fp16.gradBytes).toBe(fp32.gradBytes / 2);
    expect(int8.gradBytes / fp32.gradBytes).toBeGreaterThan(0.25);
    expect(int8.gradBytes / fp32.gradBytes).toBeLessThan(0.3);
    // Parameter updates after the first step are differences in fp16: fewer bytes than fp32 values.
    expect(fp16.paramBytes).toBeLessThan(fp32.paramBytes);
    // Adam divides by the gradient's scale, so elementwise weights can wander; what must hold is the loss.
    expect(Math.abs(fp16.result.evalLoss - fp32.result.evalLoss)).toBeLessThan(0.05);
    expect(Math.abs(int8.result.evalLoss - fp32.result.evalLoss)).toBeLessThan(0.05);
    expect(maxRelativeDifference(fp16.result.params, fp32.result.params)).toBeGreaterThan(0);
  });

  it('top-k gradients with error feedback send a small fraction of the bytes and still move the weights', async () => {
    const fp32 = await train({});
    const topk = await train({ grads_codec: 'topk:0.05' });
    expect(topk.gradBytes / fp32.gradBytes).toBeLessThan(0.15);
    expect(topk.result.steps).toBe(8);
    expect(Number.isFinite(topk.result.evalLoss)).toBe(true);
  });

  it('sparse_optimizer worker: one worker sending every entry of its own AdamW updates equals coordinator AdamW', async () => {
    // topk at density 1 sends all of each update, so the coordinator's linear sum must reproduce its own AdamW.
    const coordinator = await train({ max_steps: 5 }, 1);
    const worker = await train({ max_steps: 5, grads_codec: 'topk:1', sparse_optimizer: 'worker' }, 1);
    const viaCoordinator = await train({ max_steps: 5, grads_codec: 'topk:1', sparse_optimizer: 'coordinator' }, 1);
    expect(maxRelativeDifference(worker.result.params, coordinator.result.params)).toBeLessThan(1e-4);
    expect(maxRelativeDifference(viaCoordinator.result.params, coordinator.result.params)).toBeLessThan(1e-4);
    expect(worker.records.map((r) => r.learning_rate)).toEqual(coordinator.records.map((r) => r.learning_rate));
  });

  it('sparse_warmup_steps sends the first steps dense, then topk with one global budget as the workers were told', async () => {
    const fp32 = await train({ max_steps: 4 });
    const topk = await train({ max_steps: 4, grads_codec: 'topk:0.05', sparse_warmup_steps: 2, topk_scope: 'global' });
    const bytes = topk.records.map((r) => r.grad_bytes_per_step as number);
    expect(bytes.slice(0, 2)).toEqual(fp32.records.slice(0, 2).map((r) => r.grad_bytes_per_step));
    expect(bytes[2] / (fp32.records[2].grad_bytes_per_step as number)).toBeLessThan(0.15);
    expect(Number.isFinite(topk.result.evalLoss)).toBe(true);
  });
});
