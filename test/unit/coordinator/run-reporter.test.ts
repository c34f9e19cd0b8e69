import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { resolveLogFormat } from '../../../coordinator/log-format.js';
import { createRunReporter } from '../../../coordinator/run-reporter.js';
import { formatBytes } from '../../../coordinator/progress-bars.js';
import type { MetricsRecord } from '../../../coordinator/metrics.js';

/** A stream that keeps what is written; `isTTY` as a terminal would set it. */
function captureStream(isTTY: boolean): Writable & { text: () => string; isTTY: boolean; columns: number } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  return Object.assign(stream, { text: () => chunks.join(''), isTTY, columns: 160 });
}

const RUN: MetricsRecord[] = [
  { event: 'run_start', step: 0, total_steps: 4, global_batch_size: 6, workers: 2 },
  { event: 'train', step: 1, epoch: 0.25, loss: 0.69, learning_rate: 0.01, grad_norm: 1.5, samples_per_s: 12.5, tokens_per_s: 300 },
  { event: 'worker_lost', worker_id: 'w-2', reason: 'closed' },
  { event: 'train', step: 4, epoch: 1, loss: 0.5, learning_rate: 0.001, grad_norm: 0.5, samples_per_s: 13, tokens_per_s: 310 },
  { event: 'eval', step: 4, epoch: 1, eval_loss: 0.45, eval_accuracy: 0.8 },
];

describe('--log-format', () => {
  it('auto is pretty on a terminal and json otherwise; anything else is refused', () => {
    expect(resolveLogFormat(undefined, true)).toBe('pretty');
    expect(resolveLogFormat('auto', false)).toBe('json');
    expect(resolveLogFormat('pretty', false)).toBe('pretty');
    expect(resolveLogFormat('json', true)).toBe('json');
    expect(() => resolveLogFormat('yaml', true)).toThrow(expect.objectContaining({ code: 'E_CONFIG_INVALID', message: expect.stringContaining('"yaml"') }));
  });

  it('json: one pino line per step with the record\'s figures, the human line as msg; losses are warnings', () => {
    const stream = captureStream(false);
    const reporter = createRunReporter({ format: 'json', stream, shape: { mode: 'data-parallel' } });
    reporter.config({ learning_rate: 0.01, auth_token: null });
    reporter.line('coordinator listening on ws://127.0.0.1:7070; waiting for 2 worker(s)');
    reporter.line('[worker 0] backend: wasm', 'worker');
    for (const record of RUN) reporter.record({ time: '2026-01-01T00:00:00.000Z', ...record });
    reporter.close();
    const lines = stream.text().trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toHaveLength(3 + RUN.length);
    expect(lines[0]).toMatchObject({ level: 30, name: 'swarmtune', msg: 'resolved configuration', config: { learning_rate: 0.01, auth_token: null } });
    expect(lines[2]).toMatchObject({ source: 'worker', msg: '[worker 0] backend: wasm' });
    const train = lines.filter((l) => l.event === 'train');
    expect(train.map((l) => l.loss)).toEqual([0.69, 0.5]);
    expect(train[1]).toMatchObject({ step: 4, learning_rate: 0.001, samples_per_s: 13, msg: 'step 4/4  epoch 1.00  loss 0.5000  lr 1.00e-3  grad_norm 0.500  13.0 samples/s' });
    expect(lines.find((l) => l.event === 'worker_lost')).toMatchObject({ level: 40, msg: 'worker lost w-2' });
    expect(lines.find((l) => l.event === 'eval')).toMatchObject({ eval_accuracy: 0.8, msg: 'epoch 1: eval_loss 0.4500  eval_accuracy 0.8000' });
    // pino stamps its own time; the record's is not repeated.
    expect(lines.every((l) => typeof l.time === 'string' && l.time !== '2026-01-01T00:00:00.000Z')).toBe(true);
  });

  it('pretty without a terminal: the Trainer-style lines, no bars', () => {
    const stream = captureStream(false);
    const reporter = createRunReporter({ format: 'pretty', stream, shape: { mode: 'data-parallel' } });
    for (const record of RUN) reporter.record(record);
    reporter.close();
    expect(stream.text()).toBe('step 1/4  epoch 0.25  loss 0.6900  lr 1.00e-2  grad_norm 1.500  12.5 samples/s\nstep 4/4  epoch 1.00  loss 0.5000  lr 1.00e-3  grad_norm 0.500  13.0 samples/s\nepoch 1: eval_loss 0.4500  eval_accuracy 0.8000\n');
  });

  it('pretty on a terminal: a run bar and one bar per worker, lines printed above them', () => {
    const stream = captureStream(true);
    const reporter = createRunReporter({ format: 'pretty', stream, shape: { mode: 'data-parallel' } });
    reporter.watchWorkers(() => [
      { id: 'w-1', state: 'ready', results: 4, samples: 12, bytesIn: 2048, bytesOut: 4096 },
      { id: 'w-2', state: 'lost', results: 1, samples: 3, bytesIn: 100, bytesOut: 200 },
    ]);
    for (const record of RUN) reporter.record(record);
    reporter.close();
    const text = stream.text();
    expect(text).toMatch(/train\s+\|[^|]+\| 4\/4 steps {2}epoch 1\.00 {2}loss 0\.5000 {2}13\.0 samples\/s/);
    expect(text).toMatch(/w-1\s+\|[^|]+\| 4\/4 results {2}12 samples {2}in 2\.0 KiB {2}out 4\.0 KiB {2}ready/);
    expect(text).toMatch(/w-2\s+\|[^|]+\| 1\/4 results {2}3 samples {2}in 100 B {2}out 200 B {2}lost/);
    expect(text).toContain('epoch 1: eval_loss 0.4500  eval_accuracy 0.8000\n');
    expect(text).toContain('step 1/4  epoch 0.25');
  });

  it('formats byte counts in binary units', () => {
    expect([formatBytes(0), formatBytes(1023), formatBytes(1536), formatBytes(5 * 1024 ** 3)]).toEqual(['0 B', '1023 B', '1.5 KiB', '5.0 GiB']);
  });
});
