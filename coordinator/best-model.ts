/**
 * The best checkpoint of a data-parallel run, as the Hugging Face Trainer keeps it with `load_best_model_at_end`:
 * at each save, the latest evaluation's `metric_for_best_model` is compared with the best so far; the best
 * checkpoint is kept from `save_total_limit` pruning and its adapter becomes the run's `adapter/` at the end.
 * `trainer_state.json` (in every checkpoint and in the run folder) records `best_metric`, `best_model_checkpoint`,
 * `best_global_step` and the evaluation log, so a resumed run knows the best so far.
 */
import { copyFile, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bestModelRule, effectiveEvalSteps, type BestModelRule } from '../shared/config/trainer-semantics.js';
import type { RunConfig } from '../shared/config.js';

/** File name of the trainer state (HF `TRAINER_STATE_NAME`). */
export const TRAINER_STATE_FILE = 'trainer_state.json';

/** Evaluation metrics at one step. */
export interface EvalMetrics {
  readonly eval_loss: number;
  readonly eval_accuracy: number;
}

/** One entry of `log_history`: an evaluation and when it happened. */
export interface EvalLogEntry extends EvalMetrics {
  readonly step: number;
  readonly epoch: number;
}

/** The best checkpoint so far. */
export interface BestCheckpoint {
  /** The value of the rule's metric at that checkpoint. */
  readonly metric: number;
  /** The checkpoint folder (absolute). */
  readonly checkpointDir: string;
  /** Optimizer steps applied when it was saved. */
  readonly step: number;
  /** Every evaluation metric at that step. */
  readonly evalMetrics: EvalMetrics;
}

/** Files of a checkpoint that are not part of the adapter (trainer state, checksums). */
const NOT_ADAPTER_FILES: ReadonlySet<string> = new Set(['swarmtune_state.json', 'swarmtune_state.bin', 'checkpoint.sha256', TRAINER_STATE_FILE]);

/** Tracks evaluations and picks the best checkpoint by a {@link BestModelRule}. */
export class BestModelTracker {
  readonly rule: BestModelRule;
  private readonly history: EvalLogEntry[] = [];
  private current: BestCheckpoint | undefined;

  constructor(private readonly config: RunConfig) {
    this.rule = bestModelRule(config);
  }

  /** The best checkpoint so far, if any save followed an evaluation. */
  get best(): BestCheckpoint | undefined {
    return this.current;
  }

  /** Records an evaluation (every one goes to `log_history`). */
  recordEval(entry: EvalLogEntry): void {
    this.history.push(entry);
  }

  /**
   * Called when checkpoint `checkpointDir` is about to be saved after `step` optimizer steps: it becomes the best
   * when the latest evaluation was at this step and its metric beats the best so far (strictly, as in HF).
   * @returns whether it is the new best
   */
  considerSave(checkpointDir: string, step: number): boolean {
    const latest = this.history.at(-1);
    if (latest === undefined || latest.step !== step) return false;
    const value = latest[this.rule.metric];
    const isBetter = this.current === undefined || (this.rule.greaterIsBetter ? value > this.current.metric : value < this.current.metric);
    if (isBetter) this.current = { metric: value, checkpointDir, step, evalMetrics: { eval_loss: latest.eval_loss, eval_accuracy: latest.eval_accuracy } };
    return isBetter;
  }

  /** The HF-style `trainer_state.json` content at `step` of `epoch`. */
  trainerState(step: number, epoch: number, maxSteps: number): Record<string, unknown> {
    return {
      best_metric: this.current?.metric ?? null,
      best_model_checkpoint: this.current?.checkpointDir ?? null,
      best_global_step: this.current?.step ?? null,
      metric_for_best_model: this.rule.metric,
      greater_is_better: this.rule.greaterIsBetter,
      epoch,
      global_step: step,
      max_steps: maxSteps,
      logging_steps: this.config.logging_steps,
      eval_steps: effectiveEvalSteps(this.config),
      save_steps: this.config.save_steps,
      num_train_epochs: this.config.num_train_epochs,
      train_batch_size: this.config.per_device_train_batch_size,
      log_history: this.history,
    };
  }

  /** Writes `trainer_state.json` into `dir`. */
  async writeTrainerState(dir: string, step: number, epoch: number, maxSteps: number): Promise<void> {
    await writeFile(join(dir, TRAINER_STATE_FILE), `${JSON.stringify(this.trainerState(step, epoch, maxSteps), null, 2)}\n`);
  }

  /**
   * Restores the evaluation log and the best checkpoint from a checkpoint's `trainer_state.json` (resume); a
   * checkpoint without one (written before this file existed) leaves the tracker empty.
   */
  async restoreFrom(checkpointDir: string): Promise<void> {
    let state: { log_history?: EvalLogEntry[]; best_metric?: number | null; best_model_checkpoint?: string | null; best_global_step?: number | null };
    try {
      state = JSON.parse(await readFile(join(checkpointDir, TRAINER_STATE_FILE), 'utf8')) as typeof state;
    } catch {
      return;
    }
    this.history.push(...(state.log_history ?? []));
    const step = state.best_global_step;
    const entry = this.history.find((e) => e.step === step);
    if (state.best_metric != null && state.best_model_checkpoint != null && step != null && entry !== undefined) {
      this.current = { metric: state.best_metric, checkpointDir: state.best_model_checkpoint, step, evalMetrics: { eval_loss: entry.eval_loss, eval_accuracy: entry.eval_accuracy } };
    }
  }
}

/**
 * Copies the adapter files of checkpoint `checkpointDir` (everything but trainer state and checksums) over those in
 * `adapterDir`: the run's exported adapter becomes the best checkpoint's.
 */
export async function exportBestAdapter(checkpointDir: string, adapterDir: string): Promise<void> {
  for (const name of await readdir(checkpointDir)) {
    if (NOT_ADAPTER_FILES.has(name)) continue;
    await copyFile(join(checkpointDir, name), join(adapterDir, name));
  }
}
