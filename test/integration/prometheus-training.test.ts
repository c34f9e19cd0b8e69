/**
 * `/metrics` during real 2-worker runs (coordinator in this process, two workers over real WebSockets on loopback):
 * scraped with node's fetch (and curl where installed) while training goes on, parsed strictly as Prometheus text,
 * and checked against metrics.jsonl: step counters and gauges equal the train record of the same step, eval gauges
 * an eval record, per-worker byte counters bound the tensor bytes the records report, and /healthz answers.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCoordinator, type RunResult } from '../../coordinator/run.js';
import type { MetricsRecord } from '../../coordinator/metrics.js';
import type { RunConfig } from '../../shared/config.js';
import { selectBackend, type BackendReport } from '../../worker/backend.js';
import { connectWithRetry } from '../../worker/transport-ws.js';
import { runWorkerSession, type WorkerOutcome } from '../../worker/worker-runtime.js';
import { dpConfig, makeDpFixture, type DpFixture } from '../helpers/dp-fixture.js';
import { parsePrometheusStrict, valueOf, type PromFamily } from '../helpers/prometheus-strict.js';

const run = promisify(execFile);
let fixture: DpFixture;
let backend: BackendReport;
let hasCurl = false;

beforeAll(async () => {
  [fixture, backend] = await Promise.all([makeDpFixture(), selectBackend('auto')]);
  hasCurl = await run('curl', ['--version']).then(() => true, () => false);
  if (!hasCurl) console.warn('prometheus test: curl not installed, scraping with fetch only');
});

type Row = Record<string, number | string | unknown[]>;
type Families = Map<string, PromFamily>;

function readRecords(outputDir: string): Row[] {
  return readFileSync(join(outputDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Row);
}

/**
 * Runs `config` with two in-process workers; at each record `scrapeAt` selects, scrapes /metrics (one scrape in
 * flight at a time) and /healthz. Every scrape must succeed: the selected records come well before the run ends.
 */
async function runScraping(config: RunConfig, scrapeAt: (record: MetricsRecord) => boolean): Promise<{ result: RunResult; scrapes: Families[]; curlScrapes: Families[]; health: unknown[] }> {
  const sessions: Promise<WorkerOutcome>[] = [];
  const scrapes: Families[] = [];
  const curlScrapes: Families[] = [];
  const health: unknown[] = [];
  const pending: Promise<void>[] = [];
  let base = '';
  let inFlight = false;
  const scrape = async () => {
    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    scrapes.push(parsePrometheusStrict(await response.text()));
    health.push(await (await fetch(`${base}/healthz`)).json());
    // curl runs as its own process: the coordinator's event loop (this process) stays free to answer it.
    if (hasCurl) curlScrapes.push(parsePrometheusStrict((await run('curl', ['-sf', `${base}/metrics`])).stdout));
  };
  const result = await runCoordinator(config, {
    log: () => undefined,
    onListening: (url) => {
      base = url.replace(/^ws/, 'http');
      for (let i = 0; i < 2; i++) sessions.push(connectWithRetry(url).then((transport) => runWorkerSession({ transport, backend, log: () => undefined })));
    },
    onMetrics: (record) => {
      if (inFlight || !scrapeAt(record)) return;
      inFlight = true;
      pending.push(scrape().finally(() => (inFlight = false)));
    },
  });
  await Promise.all([...pending, ...sessions]);
  return { result, scrapes, curlScrapes, health };
}

describe('Prometheus /metrics during a run', () => {
  it('data-parallel: step, loss, throughput, eval, bytes per worker and workers connected agree with metrics.jsonl', async () => {
    const maxSteps = 14;
    const config = dpConfig(fixture, 2, { max_steps: maxSteps, eval_strategy: 'steps', eval_steps: 3, save_strategy: 'no' });
    const { result, scrapes, curlScrapes, health } = await runScraping(config, (r) => r.event === 'train' && (r.step ?? 0) >= 2 && (r.step ?? 0) <= maxSteps - 4);
    const records = readRecords(result.outputDir);
    const train = records.filter((r) => r.event === 'train');
    const evals = records.filter((r) => r.event === 'eval');
    const workerIds = records.filter((r) => r.event === 'worker_joined').map((r) => String(r.worker_id));
    const globalBatch = Number(records.find((r) => r.event === 'run_start')!.global_batch_size);
    expect(train).toHaveLength(maxSteps);
    expect(workerIds).toHaveLength(2);
    expect(scrapes.length).toBeGreaterThanOrEqual(2);
    expect(curlScrapes.length).toBe(hasCurl ? scrapes.length : 0);

    for (const families of [...scrapes, ...curlScrapes]) {
      const step = valueOf(families, 'swarmtune_step');
      const record = train.find((r) => r.step === step);
      expect(record, `a train record for step ${step}`).toBeDefined();
      // Steps are counted and recorded in the same turn of the event loop: a scrape sees both or neither.
      expect(valueOf(families, 'swarmtune_steps_total')).toBe(step);
      expect(valueOf(families, 'swarmtune_samples_total')).toBe(step * globalBatch);
      expect(valueOf(families, 'swarmtune_tokens_total')).toBeGreaterThan(valueOf(families, 'swarmtune_samples_total'));
      expect(valueOf(families, 'swarmtune_train_loss')).toBe(record!.loss);
      expect(valueOf(families, 'swarmtune_learning_rate')).toBe(record!.learning_rate);
      expect(valueOf(families, 'swarmtune_grad_norm')).toBe(record!.grad_norm);
      expect(valueOf(families, 'swarmtune_samples_per_second')).toBe(record!.samples_per_s);
      expect(valueOf(families, 'swarmtune_tokens_per_second')).toBe(record!.tokens_per_s);
      expect(valueOf(families, 'swarmtune_step_duration_seconds', {}, 'swarmtune_step_duration_seconds_count')).toBe(step);
      expect(valueOf(families, 'swarmtune_workers_connected')).toBe(2);
      expect(families.get('swarmtune_failures_total')!.samples).toEqual([]);
      // The eval gauges hold an evaluation at or before this step: the newest before it, or the one at it.
      const before = evals.filter((r) => Number(r.step) <= step);
      const candidates = before.slice(Number(before.at(-1)?.step) === step ? -2 : -1);
      if (candidates.length > 0) {
        const loss = valueOf(families, 'swarmtune_eval_loss');
        expect(candidates.map((r) => r.eval_loss)).toContain(loss);
        expect(valueOf(families, 'swarmtune_eval_accuracy')).toBe(candidates.find((r) => r.eval_loss === loss)!.eval_accuracy);
      }
      // Wire bytes bound the tensor bytes the records count (frames, chunk headers and the handshake come on top).
      const upTo = train.filter((r) => Number(r.step) <= step);
      const sent = workerIds.reduce((n, id) => n + valueOf(families, 'swarmtune_worker_sent_bytes_total', { worker: id }), 0);
      const received = workerIds.reduce((n, id) => n + valueOf(families, 'swarmtune_worker_received_bytes_total', { worker: id }), 0);
      expect(sent).toBeGreaterThanOrEqual(upTo.reduce((n, r) => n + Number(r.param_bytes_per_step), 0));
      expect(received).toBeGreaterThanOrEqual(upTo.reduce((n, r) => n + Number(r.grad_bytes_per_step), 0));
      for (const id of workerIds) {
        expect(valueOf(families, 'swarmtune_worker_results_total', { worker: id })).toBeGreaterThanOrEqual(step);
        expect(valueOf(families, 'swarmtune_worker_samples_total', { worker: id })).toBeGreaterThanOrEqual(step * (globalBatch / 2));
      }
    }
    // Counters never go back between scrapes.
    for (let i = 1; i < scrapes.length; i++) {
      for (const id of workerIds) {
        expect(valueOf(scrapes[i], 'swarmtune_worker_sent_bytes_total', { worker: id })).toBeGreaterThanOrEqual(valueOf(scrapes[i - 1], 'swarmtune_worker_sent_bytes_total', { worker: id }));
      }
    }
    expect(health.every((h) => (h as { status: string }).status === 'ok' && (h as { workers_ready: number }).workers_ready === 2)).toBe(true);
    // The frame-refusal counter of coordinator/prometheus.ts is still served beside these.
    expect(scrapes[0].get('rejected_messages_total')?.type).toBe('counter');
  });

  it('federated: round, rounds_total, train loss and the round duration histogram agree with the round records', async () => {
    const numRounds = 4;
    const config = dpConfig(fixture, 2, { mode: 'federated', num_rounds: numRounds, fraction_fit: 1, min_fit_clients: 2, min_available_clients: 2, partition: 'iid', num_clients: 2, local_steps: 1 });
    const { result, scrapes } = await runScraping(config, (r) => r.event === 'round' && (r.round ?? 0) <= numRounds - 2);
    const rounds = readRecords(result.outputDir).filter((r) => r.event === 'round');
    expect(rounds).toHaveLength(numRounds);
    expect(scrapes.length).toBeGreaterThanOrEqual(1);
    for (const families of scrapes) {
      const round = valueOf(families, 'swarmtune_round');
      const record = rounds.find((r) => r.round === round)!;
      expect(record).toBeDefined();
      expect(valueOf(families, 'swarmtune_rounds_total')).toBe(round);
      expect(valueOf(families, 'swarmtune_train_loss')).toBe(record.train_loss);
      expect(valueOf(families, 'swarmtune_round_duration_seconds', {}, 'swarmtune_round_duration_seconds_count')).toBe(round);
      const sumS = rounds.filter((r) => Number(r.round) <= round).reduce((n, r) => n + Number(r.round_ms) / 1000, 0);
      expect(valueOf(families, 'swarmtune_round_duration_seconds', {}, 'swarmtune_round_duration_seconds_sum')).toBeCloseTo(sumS, 9);
      expect(valueOf(families, 'swarmtune_samples_total')).toBe(rounds.filter((r) => Number(r.round) <= round).reduce((n, r) => n + Number(r.num_examples), 0));
      expect(valueOf(families, 'swarmtune_workers_connected')).toBe(2);
    }
  });
});
