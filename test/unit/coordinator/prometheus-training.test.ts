import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerTrainingMetrics, type MeteredPool, type MeteredSession } from '../../../coordinator/prometheus-training.js';
import { parsePrometheusStrict, valueOf } from '../../helpers/prometheus-strict.js';

/** A worker pool driven by hand: sessions with byte counters the test sets. */
function handPool() {
  const listeners = new Set<Parameters<MeteredPool['subscribe']>[0]>();
  const ready = new Set<MeteredSession>();
  const pool: MeteredPool = {
    ready: () => [...ready],
    subscribe: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  const emit = (type: string, session: MeteredSession) => {
    if (type === 'joined') ready.add(session);
    else ready.delete(session);
    for (const listener of listeners) listener({ type, session });
  };
  return { pool, emit };
}

function sessionWithBytes(id: string) {
  const bytes = { inBytes: 0, outBytes: 0 };
  const messageHandlers: ((msg: { kind: string }) => void)[] = [];
  const transport = { wireBytes: () => ({ ...bytes }), onMessage: (h: (msg: { kind: string }) => void) => messageHandlers.push(h) };
  return { session: { id, state: 'ready', transport }, bytes, deliver: (msg: { kind: string }) => messageHandlers.forEach((h) => h(msg)) };
}

async function scrape(registry: Registry) {
  return parsePrometheusStrict(await registry.metrics());
}

describe('training metrics', () => {
  it('per-worker byte counters add up across a worker\'s sessions (a rejoin continues the count)', async () => {
    const registry = new Registry();
    const { pool, emit } = handPool();
    const metrics = registerTrainingMetrics(registry, pool);
    const first = sessionWithBytes('w-1');
    emit('joined', first.session);
    first.bytes.inBytes = 100;
    first.bytes.outBytes = 1000;
    let families = await scrape(registry);
    expect(valueOf(families, 'swarmtune_worker_received_bytes_total', { worker: 'w-1' })).toBe(100);
    expect(valueOf(families, 'swarmtune_worker_sent_bytes_total', { worker: 'w-1' })).toBe(1000);
    expect(valueOf(families, 'swarmtune_workers_connected')).toBe(1);
    first.bytes.inBytes = 150;
    emit('lost', first.session);
    const second = sessionWithBytes('w-1');
    emit('joined', second.session);
    second.bytes.inBytes = 7;
    metrics.watchConnection(second.session.transport);
    second.deliver({ kind: 'grad_result', stats: { numSamples: 3 } } as { kind: string });
    second.deliver({ kind: 'pong' });
    families = await scrape(registry);
    expect(valueOf(families, 'swarmtune_worker_received_bytes_total', { worker: 'w-1' })).toBe(157);
    expect(valueOf(families, 'swarmtune_worker_sent_bytes_total', { worker: 'w-1' })).toBe(1000);
    expect(valueOf(families, 'swarmtune_worker_results_total', { worker: 'w-1' })).toBe(1);
    expect(valueOf(families, 'swarmtune_worker_samples_total', { worker: 'w-1' })).toBe(3);
    expect(metrics.workers()).toEqual([{ id: 'w-1', state: 'ready', results: 1, samples: 3, bytesIn: 157, bytesOut: 1000 }]);
    metrics.close();
  });

  it('failures are counted by kind and code from the records; gauges follow the newest record', async () => {
    const registry = new Registry();
    const metrics = registerTrainingMetrics(registry, handPool().pool);
    metrics.onRecord({ event: 'worker_lost', worker_id: 'w-1', reason: 'closed' });
    metrics.onRecord({ event: 'slice_failed', step: 3, code: 'E_TIMEOUT' });
    metrics.onRecord({ event: 'slice_failed', step: 4, code: 'E_TIMEOUT' });
    metrics.onRecord({ event: 'worker_quarantined', code: 'E_TENSOR_NON_FINITE' });
    metrics.onRecord({ event: 'auth_rejected', reason: 'bad_token' });
    metrics.onRecord({ event: 'round', round: 2, train_loss: 0.5, round_ms: 1500, num_examples: 30, failures: [{ client: 'c1', code: 'E_WORKER_LOST' }] });
    metrics.onRecord({ event: 'eval', round: 2, eval_loss: 0.4, eval_accuracy: 0.75 });
    metrics.onRecord({ event: 'eval', round: 3, eval_loss: Number.NaN, eval_accuracy: 0.8 });
    const families = await scrape(registry);
    const failures = (kind: string, code: string) => valueOf(families, 'swarmtune_failures_total', { kind, code });
    expect(failures('worker_lost', '')).toBe(1);
    expect(failures('slice_failed', 'E_TIMEOUT')).toBe(2);
    expect(failures('worker_quarantined', 'E_TENSOR_NON_FINITE')).toBe(1);
    expect(failures('auth_rejected', 'bad_token')).toBe(1);
    expect(failures('client_failed', 'E_WORKER_LOST')).toBe(1);
    expect(valueOf(families, 'swarmtune_round')).toBe(2);
    expect(valueOf(families, 'swarmtune_samples_per_second')).toBe(20);
    expect(valueOf(families, 'swarmtune_round_duration_seconds', { le: '2.5' }, 'swarmtune_round_duration_seconds_bucket')).toBe(1);
    expect(valueOf(families, 'swarmtune_round_duration_seconds', { le: '1' }, 'swarmtune_round_duration_seconds_bucket')).toBe(0);
    // A non-finite figure is not a reading: the gauge keeps the last finite one.
    expect(valueOf(families, 'swarmtune_eval_loss')).toBe(0.4);
    expect(valueOf(families, 'swarmtune_eval_accuracy')).toBe(0.8);
  });

  it('the strict parser refuses what Prometheus would refuse', () => {
    expect(() => parsePrometheusStrict('x 1\n')).toThrow(/undeclared family/);
    expect(() => parsePrometheusStrict('# HELP x h\n# TYPE x counter\nx{a="1} 1\n')).toThrow(/not a sample line|bad labels/);
    expect(() => parsePrometheusStrict('# HELP x h\n# TYPE x counter\nx one\n')).toThrow(/bad sample value/);
    expect(() => parsePrometheusStrict('# HELP x h\n# TYPE x histogram\nx_bucket{le="1"} 2\nx_bucket{le="+Inf"} 1\nx_sum 1\nx_count 1\n')).toThrow(/cumulative/);
    expect(() => parsePrometheusStrict('# HELP x h\n# TYPE x gauge\nx 1')).toThrow(/newline/);
  });
});
