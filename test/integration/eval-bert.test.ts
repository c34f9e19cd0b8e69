/**
 * `swarmtune eval` and `swarmtune generate` on the BERT family: a short data-parallel run with 2 in-process workers
 * on the Hugging Face BERT fixture (classification, then masked-LM), after which `evalCommand` with the run's adapter
 * gives the run's own `eval_results.json`; without an adapter it evaluates the base; `generate` on an encoder and
 * `task: instruction` on one are refused naming the reason.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileConfig } from '../../shared/config.js';
import { ErrorCode } from '../../shared/errors.js';
import { evalCommand } from '../../worker/eval-cli.js';
import { selectBackend, type BackendReport } from '../../worker/backend.js';
import { runWithInProcessWorkers } from '../helpers/in-process-workers.js';

const REPO = join(import.meta.dirname, '../..');
const BERT_DIR = join(REPO, 'test/fixtures/hf-bert');
const BIN = join(REPO, 'bin/swarmtune.mjs');

/** The run settings that `eval` must be given again (`--set`) to see the same held-out split. */
const DATA_SETS = { max_train_samples: 32, max_eval_samples: 12, max_length: 32, per_device_eval_batch_size: 5 };

let backend: BackendReport;

beforeAll(async () => {
  backend = await selectBackend('auto');
});

function setsOf(extra: Record<string, unknown>): string[] {
  return Object.entries({ ...DATA_SETS, ...extra }).map(([key, value]) => `${key}=${String(value)}`);
}

async function trainThenEval(task: 'classification' | 'causal-lm') {
  const dir = mkdtempSync(join(tmpdir(), `swarmtune-eval-bert-${task}-`));
  const config = compileConfig({
    model: BERT_DIR,
    task,
    peft: { r: 4, lora_alpha: 8, target_modules: ['q', 'v'] },
    ...DATA_SETS,
    max_steps: 3,
    per_device_train_batch_size: 4,
    workers: 2,
    learning_rate: 5e-3,
    warmup_steps: 0,
    save_strategy: 'no',
    output_dir: join(dir, 'run'),
  });
  const { result } = await runWithInProcessWorkers(config, 2, backend);
  const runResults = JSON.parse(readFileSync(join(result.outputDir, 'eval_results.json'), 'utf8')) as Record<string, number>;
  const flags = { model: BERT_DIR, adapter: join(result.outputDir, 'adapter'), set: setsOf({ task }), backend: 'auto' as const, maxGenerate: '0' };
  const evaluated = await evalCommand(flags, () => undefined);
  const base = await evalCommand({ ...flags, adapter: undefined }, () => undefined);
  return { runResults, evaluated, base };
}

describe('swarmtune eval on BERT models', () => {
  it('classification: eval with the run adapter equals the run eval_results.json; without it, the base', async () => {
    const { runResults, evaluated, base } = await trainThenEval('classification');
    expect(evaluated.task).toBe('classification');
    expect(evaluated.eval_samples).toBe(runResults.eval_samples);
    expect(evaluated.eval_loss).toBeCloseTo(runResults.eval_loss, 5);
    expect(evaluated.eval_accuracy).toBeCloseTo(runResults.eval_accuracy, 6);
    expect(base.adapter).toBeNull();
    expect(base.eval_samples).toBe(runResults.eval_samples);
    expect(Number.isFinite(base.eval_loss)).toBe(true);
    expect(Math.abs(base.eval_loss - evaluated.eval_loss)).toBeGreaterThan(1e-4);
  });

  it('causal-lm (masked-LM): eval with the run adapter scores the run evaluation mask and equals eval_results.json', async () => {
    const { runResults, evaluated, base } = await trainThenEval('causal-lm');
    expect(evaluated.eval_loss_items).toBeGreaterThan(0);
    expect(evaluated.eval_loss).toBeCloseTo(runResults.eval_loss, 5);
    expect(evaluated.eval_accuracy).toBeCloseTo(runResults.eval_accuracy, 6);
    expect(evaluated.perplexity).toBeCloseTo(runResults.perplexity, 3);
    expect(base.eval_loss_items).toBe(evaluated.eval_loss_items);
    expect(Math.abs(base.eval_loss - evaluated.eval_loss)).toBeGreaterThan(1e-4);
  });

  it('task instruction on a BERT model is refused naming the reason', async () => {
    const flags = { model: BERT_DIR, set: setsOf({ task: 'instruction', dataset: 'spam-instructions' }), backend: 'auto' as const, maxGenerate: '0' };
    await expect(evalCommand(flags, () => undefined)).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID, message: expect.stringMatching(/BERT encoder/) });
  });

  it('swarmtune generate on a BERT model exits with a refusal that names the reason', () => {
    const run = spawnSync(process.execPath, [BIN, 'generate', '--model', BERT_DIR, '--prompt', 'Hello'], { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/BERT encoder/);
    expect(run.stderr).toMatch(/no next-token \(causal\) language-model head/);
    expect(run.stderr).toMatch(/E_CONFIG_INVALID|LLaMA-family decoder/);
  });
});
