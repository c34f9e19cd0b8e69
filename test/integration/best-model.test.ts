/**
 * Hugging Face Trainer evaluation and best-model semantics on a real data-parallel run (2 in-process workers over
 * loopback WebSockets): `eval_strategy: steps` evaluates every `eval_steps`, `load_best_model_at_end` exports the
 * best checkpoint's adapter, keeps it from `save_total_limit` pruning, and records `best_metric` /
 * `best_model_checkpoint` in `trainer_state.json` and `eval_results.json`.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCoordinator, type RunResult } from '../../coordinator/run.js';
import { compileConfig, type RunConfig } from '../../shared/config.js';
import { connectWithRetry } from '../../worker/transport-ws.js';
import { runWorkerSession } from '../../worker/worker-runtime.js';
import { selectBackend, type BackendReport } from '../../worker/backend.js';
import { dpConfig, makeDpFixture, type DpFixture } from '../helpers/dp-fixture.js';

let fixture: DpFixture;
let backend: BackendReport;

class Killed extends Error {}

/** Runs `config` with 2 in-process workers; `killAtStep` makes the run die right after logging that step. */
async function run(config: RunConfig, killAtStep?: number): Promise<RunResult> {
  const sessions: Promise<unknown>[] = [];
  try {
    return await runCoordinator(config, {
      log: () => undefined,
      onListening: (url) => {
        for (let i = 0; i < 2; i++) sessions.push(connectWithRetry(url).then((transport) => runWorkerSession({ transport, backend, log: () => undefined })));
      },
      onMetrics: (record) => {
        if (record.event === 'train' && record.step === killAtStep) throw new Killed(`killed after step ${killAtStep}`);
      },
    });
  } finally {
    await Promise.allSettled(sessions);
  }
}

async function jsonl(path: string): Promise<Record<string, unknown>[]> {
  return (await readFile(path, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
}

beforeAll(async () => {
  fixture = await makeDpFixture();
  backend = await selectBackend('auto');
}, 60_000);

// 36 training examples, global batch 6: 6 steps an epoch, 12 in all; an evaluation and a save every 2 steps.
// greater_is_better: true on the loss ranks the worst checkpoint first: an early one, not the last (whose adapter is
// what a run without load_best_model_at_end exports), so the copy is visible.
function bestConfig(outputDir: string, overrides: Record<string, unknown> = {}): RunConfig {
  return compileConfig({
    ...dpConfig(fixture, 2, { max_steps: -1, num_train_epochs: 2, output_dir: outputDir, learning_rate: 5e-2 }),
    eval_strategy: 'steps',
    eval_steps: 2,
    save_strategy: 'steps',
    save_steps: 2,
    save_total_limit: 1,
    load_best_model_at_end: true,
    metric_for_best_model: 'loss',
    greater_is_better: true,
    ...overrides,
  });
}

describe('load_best_model_at_end (data-parallel)', () => {
  it('evaluates every eval_steps, exports the best checkpoint by the metric and direction asked, and keeps it from pruning', { timeout: 60_000 }, async () => {
    const outputDir = join(fixture.dir, 'best-loss-greater');
    const result = await run(bestConfig(outputDir));
    expect(result.steps).toBe(12);

    const evals = (await jsonl(join(outputDir, 'metrics.jsonl'))).filter((r) => r.event === 'eval');
    expect(evals.map((r) => r.step)).toEqual([2, 4, 6, 8, 10, 12]);
    // HF keeps the first of equal values (a strict comparison).
    const expected = evals.reduce((best, r) => ((r.eval_loss as number) > (best.eval_loss as number) ? r : best));
    const bestDir = join(outputDir, `checkpoint-${expected.step as number}`);
    expect(expected.step).not.toBe(12); // the seeded run's loss falls: the worst checkpoint is an early one

    const state = JSON.parse(await readFile(join(outputDir, 'trainer_state.json'), 'utf8')) as Record<string, unknown>;
    expect(state.best_model_checkpoint).toBe(bestDir);
    expect(state.best_metric).toBe(expected.eval_loss);
    expect(state.metric_for_best_model).toBe('eval_loss');
    expect((state.log_history as unknown[]).length).toBe(6);

    const results = JSON.parse(await readFile(join(outputDir, 'eval_results.json'), 'utf8')) as Record<string, unknown>;
    expect(results.best_model_checkpoint).toBe(bestDir);
    expect(results.best_metric).toBe(expected.eval_loss);
    expect(results.eval_loss).toBe(expected.eval_loss);
    expect(result.evalLoss).toBe(expected.eval_loss);

    // save_total_limit 1 keeps the newest checkpoint and the best one.
    const checkpoints = (await readdir(outputDir)).filter((n) => n.startsWith('checkpoint-')).sort();
    expect(checkpoints).toEqual([...new Set([`checkpoint-${expected.step as number}`, 'checkpoint-12'])].sort());
    const exported = await readFile(join(outputDir, 'adapter', 'adapter_model.safetensors'));
    expect(exported.equals(await readFile(join(bestDir, 'adapter_model.safetensors')))).toBe(true);
    expect(exported.equals(await readFile(join(outputDir, 'checkpoint-12', 'adapter_model.safetensors')))).toBe(false);
  });

  it('S13: a run killed after the best checkpoint and resumed still exports that checkpoint, as the uninterrupted run does', { timeout: 60_000 }, async () => {
    const reference = join(fixture.dir, 'best-reference');
    await run(bestConfig(reference));
    const referenceState = JSON.parse(await readFile(join(reference, 'trainer_state.json'), 'utf8')) as Record<string, unknown>;

    const outputDir = join(fixture.dir, 'best-killed');
    await expect(run(bestConfig(outputDir), 7)).rejects.toThrow(Killed);
    await run(bestConfig(outputDir, { resume_from_checkpoint: true }));
    const state = JSON.parse(await readFile(join(outputDir, 'trainer_state.json'), 'utf8')) as Record<string, unknown>;
    expect(state.best_metric).toBe(referenceState.best_metric);
    expect(state.best_global_step).toBe(referenceState.best_global_step);
    expect((state.log_history as { step: number }[]).map((e) => e.step)).toEqual([2, 4, 6, 8, 10, 12]);
    const exported = await readFile(join(outputDir, 'adapter', 'adapter_model.safetensors'));
    expect(exported.equals(await readFile(join(reference, 'adapter', 'adapter_model.safetensors')))).toBe(true);
  });

  it('eval_strategy: no evaluates only once, at the end, and writes no best checkpoint', { timeout: 60_000 }, async () => {
    const outputDir = join(fixture.dir, 'eval-no');
    const config = compileConfig({ ...dpConfig(fixture, 2, { max_steps: 4, output_dir: outputDir }), eval_strategy: 'no', save_strategy: 'no' });
    await run(config);
    const evals = (await jsonl(join(outputDir, 'metrics.jsonl'))).filter((r) => r.event === 'eval');
    expect(evals).toEqual([]);
    const results = JSON.parse(await readFile(join(outputDir, 'eval_results.json'), 'utf8')) as Record<string, unknown>;
    expect(results.step).toBe(4);
    expect(results.best_model_checkpoint).toBeUndefined();
    const state = JSON.parse(await readFile(join(outputDir, 'trainer_state.json'), 'utf8')) as Record<string, unknown>;
    expect(state.best_model_checkpoint).toBeNull();
  });
});
