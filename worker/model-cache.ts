/**
 * What a worker keeps between sessions of one run: the loaded model (a TrainableModel over the base weights), its
 * tokenizer and, for `data_delivery: local`, the tokenized dataset. A worker that lost its connection and rejoins
 * the same run (same run id, same model sha256, same model spec) skips reloading; anything else reloads.
 *
 * Ownership: a session {@link WorkerModelCache.take}s the entry (the cache then holds nothing) and
 * {@link WorkerModelCache.keep}s it back when the session ends, so a model is never disposed while in use.
 */
import type { TrainableModel } from '../shared/model/trainable-model.js';
import type { LoadedModel } from '../shared/model/load-gguf.js';
import type { LocalRunData } from './federated-rank.js';

/** One loaded model and what was derived from it for a run. */
export interface CachedModel {
  readonly runId: string;
  /** sha256 of the base model file. */
  readonly sha256: string;
  /** The run's model spec, as JSON (a different spec builds a different model). */
  readonly specJson: string;
  readonly model: TrainableModel;
  readonly tokenizer: LoadedModel['tokenizer'];
  /** Where the model file was read from (for logs). */
  readonly modelPath: string;
  /** The run's tokenized dataset, when the worker loads data itself. @default undefined */
  readonly localData?: LocalRunData;
}

/** Holds at most one {@link CachedModel}; see the module comment. */
export class WorkerModelCache {
  private entry?: CachedModel;

  /**
   * The cached model when it matches `runId`, `sha256` and `modelSpec` (ownership passes to the caller);
   * otherwise disposes whatever is cached and returns undefined.
   */
  take(runId: string, sha256: string, modelSpec: unknown): CachedModel | undefined {
    const entry = this.entry;
    this.entry = undefined;
    if (entry && entry.runId === runId && entry.sha256 === sha256 && entry.specJson === JSON.stringify(modelSpec)) return entry;
    entry?.model.dispose();
    return undefined;
  }

  /** Keeps `entry` for the next session (disposing a different one held before). */
  keep(entry: CachedModel): void {
    if (this.entry && this.entry.model !== entry.model) this.entry.model.dispose();
    this.entry = entry;
  }

  /** Whether a model is held. */
  get isHolding(): boolean {
    return this.entry !== undefined;
  }

  /** Disposes the held model, if any. Idempotent. */
  dispose(): void {
    this.entry?.model.dispose();
    this.entry = undefined;
  }
}
