/**
 * The main job as `npm start` runs it: `swarmtune run --config examples/main-job.yaml` fine-tunes the embedded
 * models/swarmtune-mini (made by `npm run pretrain`) with LoRA on spam-assassin with 2 local worker processes, and
 * prints per-epoch training loss, eval loss and accuracy, then where the outputs are.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../shared/config.js';
import { loadModel } from '../../shared/model/load-model.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'swarmtune.mjs');
const MODEL = join(ROOT, 'models', 'swarmtune-mini');
const JOB = join(ROOT, 'examples', 'main-job.yaml');
const hasModel = existsSync(join(MODEL, 'config.json'));
if (!hasModel) console.warn(`SKIPPING main-job tests: ${MODEL} is absent (npm run pretrain makes it)`);

describe.skipIf(!hasModel)('the main job on the embedded model', () => {
  it('the shipped config names the embedded model, a LoRA classifier and 2 workers', async () => {
    const config = await resolveConfig({ file: JOB, env: {}, sets: [] });
    expect(config.model).toBe('models/swarmtune-mini');
    expect(config.peft.method).toBe('lora');
    expect(config.peft.target_modules).toContain('embed');
    expect(config.workers).toBe(2);
    const loaded = await loadModel(MODEL);
    expect(loaded.tokenizer.decode(loaded.tokenizer.encode('Dear friend, your account', { addBos: true }))).toBe('Dear friend, your account');
  });

  // About 2 minutes on an idle 2-core machine (0.977 measured); longer while the rest of the suite runs beside it.
  it('npm start reaches eval_accuracy >= 0.95 and writes eval_results.json and the adapter', () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmtune-main-'));
    const result = spawnSync(process.execPath, [BIN, 'run', '--config', JOB, '-o', dir], { cwd: ROOT, encoding: 'utf8', timeout: 900_000 });
    expect(result.status, result.stderr.slice(-3000)).toBe(0);
    const results = JSON.parse(readFileSync(join(dir, 'eval_results.json'), 'utf8')) as { eval_accuracy: number };
    expect(results.eval_accuracy).toBeGreaterThanOrEqual(0.95);
    expect(result.stderr).toMatch(/epoch 1: eval_loss [0-9.]+ {2}eval_accuracy [0-9.]+/);
    for (const file of ['adapter/adapter_model.safetensors', 'adapter/adapter_config.json', 'metrics.jsonl']) expect(existsSync(join(dir, file)), file).toBe(true);
  }, 900_000);
});
