import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BestModelTracker, TRAINER_STATE_FILE, exportBestAdapter } from '../../../coordinator/best-model.js';
import { compileConfig } from '../../../shared/config.js';

const lossConfig = compileConfig({ eval_strategy: 'steps', save_strategy: 'steps', eval_steps: 2, save_steps: 2, load_best_model_at_end: true });

describe('BestModelTracker', () => {
  it('keeps the checkpoint with the lowest eval_loss by default, the first of equal values', () => {
    const tracker = new BestModelTracker(lossConfig);
    const losses = [0.9, 0.5, 0.7, 0.5];
    losses.forEach((loss, i) => {
      const step = 2 * (i + 1);
      tracker.recordEval({ step, epoch: step / 10, eval_loss: loss, eval_accuracy: 1 - loss });
      tracker.considerSave(`/run/checkpoint-${step}`, step);
    });
    expect(tracker.best).toEqual({ metric: 0.5, checkpointDir: '/run/checkpoint-4', step: 4, evalMetrics: { eval_loss: 0.5, eval_accuracy: 0.5 } });
  });

  it('ranks by accuracy, higher first, and ignores a save without an evaluation at its step', () => {
    const tracker = new BestModelTracker(compileConfig({ metric_for_best_model: 'accuracy' }));
    tracker.recordEval({ step: 2, epoch: 1, eval_loss: 0.1, eval_accuracy: 0.6 });
    expect(tracker.considerSave('/run/checkpoint-2', 2)).toBe(true);
    tracker.recordEval({ step: 4, epoch: 2, eval_loss: 0.9, eval_accuracy: 0.8 });
    expect(tracker.considerSave('/run/checkpoint-5', 5)).toBe(false);
    expect(tracker.considerSave('/run/checkpoint-4', 4)).toBe(true);
    expect(tracker.best?.checkpointDir).toBe('/run/checkpoint-4');
  });

  it('writes trainer_state.json that a resumed tracker restores', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'swarmtune-best-'));
    const tracker = new BestModelTracker(lossConfig);
    tracker.recordEval({ step: 2, epoch: 0.5, eval_loss: 0.4, eval_accuracy: 0.7 });
    tracker.considerSave(join(dir, 'checkpoint-2'), 2);
    await tracker.writeTrainerState(dir, 2, 0.5, 8);
    const state = JSON.parse(await readFile(join(dir, TRAINER_STATE_FILE), 'utf8')) as Record<string, unknown>;
    expect(state).toMatchObject({ best_metric: 0.4, best_model_checkpoint: join(dir, 'checkpoint-2'), best_global_step: 2, global_step: 2, max_steps: 8, eval_steps: 2 });

    const resumed = new BestModelTracker(lossConfig);
    await resumed.restoreFrom(dir);
    expect(resumed.best).toEqual(tracker.best);
    resumed.recordEval({ step: 4, epoch: 1, eval_loss: 0.6, eval_accuracy: 0.6 });
    expect(resumed.considerSave(join(dir, 'checkpoint-4'), 4)).toBe(false);

    const empty = new BestModelTracker(lossConfig);
    await empty.restoreFrom(join(dir, 'missing'));
    expect(empty.best).toBeUndefined();
  });

  it('exportBestAdapter copies the adapter files only', async () => {
    const checkpoint = await mkdtemp(join(tmpdir(), 'swarmtune-best-ckpt-'));
    const adapter = await mkdtemp(join(tmpdir(), 'swarmtune-best-adapter-'));
    for (const name of ['adapter_model.safetensors', 'adapter_config.json', 'swarmtune_state.json', 'checkpoint.sha256', TRAINER_STATE_FILE]) await writeFile(join(checkpoint, name), `best ${name}`);
    await writeFile(join(adapter, 'adapter_model.safetensors'), 'final');
    await exportBestAdapter(checkpoint, adapter);
    expect(await readFile(join(adapter, 'adapter_model.safetensors'), 'utf8')).toBe('best adapter_model.safetensors');
    await expect(readFile(join(adapter, 'swarmtune_state.json'))).rejects.toThrow();
  });
});
