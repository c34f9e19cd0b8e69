/**
 * Many virtual federated clients in one worker process (simulation): one base model and ONE set of trainable
 * tensors shared by all, plus each client's small state in a bounded store.
 *
 * A client's turn loads the round's global values into the shared trainable tensors, trains (or evaluates), reads
 * the delta out as plain arrays, and leaves no tensor behind: `tf.memory().numTensors` is the same after every
 * client. What a client keeps between rounds is plain data:
 * - its example indices (train and held-out) into the process's datasets, registered once;
 * - its local optimizer state, only when `keepOptimizerState` is on, in a least-recently-used store bounded in
 *   bytes (an evicted client starts its next round with a fresh optimizer, as Flower's clients do every round);
 * - no random-number state: shuffles and dropout come from the round's per-client `config.seed`, so a client gives
 *   the same update wherever the coordinator schedules it and whatever was evicted.
 */
import type { TrainableModel } from '../shared/model/trainable-model.js';
import type { BatchStats } from '../shared/model/types.js';
import type { TokenizedItem } from '../shared/data/types.js';
import type { NamedTensors } from '../shared/tensors.js';
import { ConfigError, ErrorCode, OrchestratorError } from '../shared/errors.js';
import type { ClientShard, LocalOptimizerState, LocalTrainingOptions, LocalTrainingResult, PaddingOptions } from './local-training.js';
import { trainLocally } from './local-training.js';
import { evaluateClient } from './client-eval.js';

/** Default cap on registered clients per process. */
export const DEFAULT_MAX_CLIENTS = 100_000;
/** Default cap on the bytes of kept optimizer states per process (256 MiB). */
export const DEFAULT_MAX_OPTIMIZER_STATE_BYTES = 256 * 1024 * 1024;

/** Options of {@link VirtualClientHost}. */
export interface VirtualClientHostOptions {
  /** The shared task model (its base is shared by construction; its trainable tensors are reused by every client). */
  readonly model: TrainableModel;
  /** The training examples this process holds; clients' train indices point into it. */
  readonly dataset: readonly TokenizedItem[];
  /** The held-out examples clients' eval indices point into. @default `dataset` */
  readonly evalDataset?: readonly TokenizedItem[];
  readonly padding: PaddingOptions;
  /** Most clients registered at once. @default DEFAULT_MAX_CLIENTS (100,000) */
  readonly maxClients?: number;
  /** Keep each client's local optimizer state between rounds (momentum, Adam moments). @default false */
  readonly keepOptimizerState?: boolean;
  /** Bound on the bytes of kept optimizer states; least recently used go first. @default 256 MiB */
  readonly maxOptimizerStateBytes?: number;
}

/** A client's examples in this process. */
export interface VirtualClientData {
  /** Indices into the host's `dataset`. */
  readonly trainIndices: readonly number[];
  /** Indices into the host's `evalDataset` (federated evaluation on held-out data). @default none */
  readonly evalIndices?: readonly number[];
}

/** Counters of the store, for logs and tests. */
export interface VirtualClientStats {
  readonly clients: number;
  readonly optimizerStates: number;
  readonly optimizerStateBytes: number;
  /** Optimizer states dropped to stay under the byte bound, since the host was made. */
  readonly optimizerStatesEvicted: number;
  /** Local trainings run, since the host was made. */
  readonly fits: number;
}

interface ClientRecord {
  readonly trainIndices: readonly number[];
  readonly evalIndices: readonly number[];
}

/** Hosts many virtual clients over one shared model; see the module comment. */
export class VirtualClientHost {
  private readonly clients = new Map<string, ClientRecord>();
  /** Kept optimizer states in least-recently-used order (a Map iterates in insertion order). */
  private readonly optimizerStates = new Map<string, { state: LocalOptimizerState; bytes: number }>();
  private optimizerStateBytes = 0;
  private optimizerStatesEvicted = 0;
  private fits = 0;
  private readonly maxClients: number;
  private readonly maxOptimizerStateBytes: number;

  /** @throws ConfigError E_CONFIG_INVALID for a bound that is not a positive integer. */
  constructor(private readonly options: VirtualClientHostOptions) {
    this.maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
    this.maxOptimizerStateBytes = options.maxOptimizerStateBytes ?? DEFAULT_MAX_OPTIMIZER_STATE_BYTES;
    if (!Number.isInteger(this.maxClients) || this.maxClients < 1) {
      throw new ConfigError(ErrorCode.CONFIG_INVALID, `virtual clients: maxClients must be an integer >= 1, got ${this.maxClients}`);
    }
    if (!Number.isInteger(this.maxOptimizerStateBytes) || this.maxOptimizerStateBytes < 0) {
      throw new ConfigError(ErrorCode.CONFIG_INVALID, `virtual clients: maxOptimizerStateBytes must be an integer >= 0, got ${this.maxOptimizerStateBytes}`);
    }
  }

  /**
   * Register (or re-register, replacing its indices) a client.
   * @throws ConfigError E_CONFIG_INVALID when the host already holds `maxClients` other clients.
   * @throws ShapeError E_TENSOR_RANGE (at training or evaluation) for indices outside the datasets.
   */
  register(clientId: string, data: VirtualClientData): void {
    if (!this.clients.has(clientId) && this.clients.size >= this.maxClients) {
      throw new ConfigError(ErrorCode.CONFIG_INVALID, `virtual clients: cannot host client "${clientId}": this process already holds its maximum of ${this.maxClients}`);
    }
    this.clients.set(clientId, { trainIndices: [...data.trainIndices], evalIndices: [...(data.evalIndices ?? [])] });
  }

  /** Whether `clientId` is registered. */
  has(clientId: string): boolean {
    return this.clients.has(clientId);
  }

  /** Drop a client and its kept state. */
  forget(clientId: string): void {
    this.clients.delete(clientId);
    this.dropOptimizerState(clientId);
  }

  /**
   * One round of local training for `clientId` from the `global` values; see worker/local-training.ts.
   * @param shard the client's examples, when the request brings them (shipped examples, or indices the coordinator
   *   names); @default the registered train indices into the host's `dataset`
   * @throws OrchestratorError E_DATASET for an unknown client without a `shard`; whatever {@link trainLocally} throws.
   */
  async fit(clientId: string, global: NamedTensors, config: LocalTrainingOptions, shard?: ClientShard): Promise<LocalTrainingResult> {
    const resolved = shard ?? { dataset: this.options.dataset, indices: this.record(clientId).trainIndices };
    const kept = this.options.keepOptimizerState ? this.optimizerStates.get(clientId)?.state : undefined;
    const result = await trainLocally({ model: this.options.model, global, shard: resolved, config, padding: this.options.padding, optimizerState: kept });
    this.fits++;
    if (this.options.keepOptimizerState) this.keepOptimizerState(clientId, result.optimizerState);
    return result;
  }

  /**
   * Summed loss statistics of the `global` values on the client's held-out examples (or on `shard`).
   * @param batchSize examples per forward pass. @default 32
   * @throws OrchestratorError E_DATASET for an unknown client without a `shard`; whatever {@link evaluateClient} throws.
   */
  evaluate(clientId: string, global: NamedTensors, batchSize = 32, shard?: ClientShard): BatchStats {
    const resolved = shard ?? {
      dataset: this.options.evalDataset ?? this.options.dataset,
      indices: this.record(clientId).evalIndices,
    };
    return evaluateClient({ model: this.options.model, global, shard: resolved, batchSize, padding: this.options.padding });
  }

  /** Current counters. */
  stats(): VirtualClientStats {
    return {
      clients: this.clients.size,
      optimizerStates: this.optimizerStates.size,
      optimizerStateBytes: this.optimizerStateBytes,
      optimizerStatesEvicted: this.optimizerStatesEvicted,
      fits: this.fits,
    };
  }

  private record(clientId: string): ClientRecord {
    const record = this.clients.get(clientId);
    if (!record) throw new OrchestratorError(ErrorCode.DATASET, `virtual clients: client "${clientId}" is not hosted by this process and the request names no examples`);
    return record;
  }

  private keepOptimizerState(clientId: string, state: LocalOptimizerState): void {
    this.dropOptimizerState(clientId);
    const bytes = optimizerStateBytes(state);
    if (bytes > this.maxOptimizerStateBytes) {
      this.optimizerStatesEvicted++;
      return;
    }
    this.optimizerStates.set(clientId, { state, bytes });
    this.optimizerStateBytes += bytes;
    for (const [oldest, entry] of this.optimizerStates) {
      if (this.optimizerStateBytes <= this.maxOptimizerStateBytes) break;
      this.optimizerStates.delete(oldest);
      this.optimizerStateBytes -= entry.bytes;
      this.optimizerStatesEvicted++;
    }
  }

  private dropOptimizerState(clientId: string): void {
    const entry = this.optimizerStates.get(clientId);
    if (!entry) return;
    this.optimizerStates.delete(clientId);
    this.optimizerStateBytes -= entry.bytes;
  }
}

/** Bytes held by an optimizer state's buffers. */
export function optimizerStateBytes(state: LocalOptimizerState): number {
  let bytes = 0;
  const buffers = state.kind === 'sgd' ? [state.state.momentumBuffer] : [state.state.firstMoment, state.state.secondMoment];
  for (const map of buffers) for (const b of map.values()) bytes += b.byteLength;
  return bytes;
}
