/**
 * Federated rounds over the worker pool (DESIGN §2, Flower semantics): each round the strategy samples clients,
 * the trainer sends each its `fit_request` (the global parameters as a delta against what its worker holds, its
 * examples, the round's local-training config) and collects updates until every sampled client has answered or
 * the round's deadline passes. A result that arrives after the deadline, or names another round, is stale and
 * never counted; a client that fails or times out is a failure the strategy sees as data. If fewer than
 * `minCompletionRate` of the sampled clients delivered, the round is skipped and the global model stays as it was.
 */
import type { TokenizedItem } from '../../shared/data/types.js';
import type { ClientData, LocalTrainingConfig } from '../../shared/protocol/messages.js';
import { MsgKind } from '../../shared/protocol/messages.js';
import { float32Blob, validateTensors } from '../../shared/codec.js';
import { ParamSync, type IsLossless, type ParamUpdate, type TensorEncoder } from '../../shared/param-sync.js';
import type { NamedTensors, TensorSpec } from '../../shared/tensors.js';
import { ErrorCode, OrchestratorError, TimeoutError, WorkerLostError, errorCodeOf } from '../../shared/errors.js';
import type { BatchStats, RunTask } from '../../shared/model/types.js';
import { collateBatch, mixSeeds, sequentialBatchIndices } from '../../shared/data/index.js';
import { batchToWire } from '../../shared/protocol/batch.js';
import { addStats, EMPTY_STATS } from '../aggregation.js';
import type { WorkerRegistry } from '../registry.js';
import type { WorkerSession } from '../worker-session.js';
import type { ClientFailure, ClientUpdate, EvaluateResult } from './types.js';
import { PinnedClients, placeVirtualClients } from './client-placement.js';
import { failureOf, shipExamples, StaleResultError, toEvaluateResult } from './client-wire.js';
import type { Strategy } from './strategy.js';
import type { LoraResidual } from './aggregation/lora-exact.js';
import type { RoundMetrics } from './types.js';
import { mulberry32 } from '../../shared/random.js';
import { isGateRejection } from '../quarantine.js';

/** One client of the shard plan: its id and its examples (indices into the training set). */
export interface PlannedClient {
  readonly id: string;
  readonly indices: readonly number[];
  /** Its federated-evaluation examples (indices into the evaluation set). @default none */
  readonly evalIndices?: readonly number[];
}

/** How the trainer runs rounds. */
export interface FederatedTrainerOptions {
  readonly manifest: readonly TensorSpec[];
  readonly clients: readonly PlannedClient[];
  /** One client per worker (a real deployment) or virtual clients placed each round (a simulation). */
  readonly placement: 'pinned' | 'virtual';
  /** `local`: clients index the training set they prepared themselves; `ship`: their examples travel in the request. */
  readonly delivery: 'local' | 'ship';
  /** The training and evaluation sets, as the coordinator prepared them (shipped from, and sized from). */
  readonly train: readonly TokenizedItem[];
  readonly eval: readonly TokenizedItem[];
  /** The initial global trainable values (float32, every manifest tensor). */
  readonly initial: NamedTensors;
  /** Seeds client sampling (mixed with the round number). */
  readonly seed: number;
  /** The round's local-training config for one client (seed, epochs, optimizer...); `proximalMu` and `frozen` come from the strategy. */
  readonly localConfig: (round: number, clientId: string) => Omit<LocalTrainingConfig, 'frozen' | 'proximalMu'>;
  readonly roundTimeoutMs: number;
  readonly minCompletionRate: number;
  readonly minAvailableClients: number;
  /** Examples per forward pass in federated evaluation. */
  readonly evalBatchSize: number;
  readonly encodeParam?: TensorEncoder;
  readonly isParamLossless?: IsLossless;
}

/** {@link FederatedTrainer}'s global model as data (what a checkpoint stores). */
export interface FederatedTrainerSnapshot {
  readonly version: number;
  readonly global: Readonly<Record<string, Float64Array>>;
  readonly residualVersion: number;
  readonly residuals: Readonly<Record<string, { readonly shape: readonly number[]; readonly values: Float64Array }>>;
}

/** What happened in one round. */
export interface RoundReport {
  readonly round: number;
  readonly sampled: number;
  readonly completed: number;
  /** Clients whose updates were received in time, in plan order. */
  readonly completedClients: readonly string[];
  readonly failures: readonly ClientFailure[];
  /** Late (an earlier round's, arrived during this one) or mismatched results thrown away. */
  readonly stale: number;
  readonly aggregated: boolean;
  /** Example-weighted mean of the clients' local training losses (NaN when none delivered). */
  readonly trainLoss: number;
  readonly numExamples: number;
  readonly wallMs: number;
  /** Sum over clients of their workers' reported compute time. */
  readonly clientComputeMs: number;
  /** Longest total compute time any one worker spent on this round's clients. */
  readonly busiestWorkerComputeMs: number;
  readonly paramBytes: number;
  readonly updateBytes: number;
  readonly metrics: RoundMetrics;
}

/**
 * Runs federated rounds on the registry's workers against one strategy. The strategy owns the global model;
 * the trainer owns the schedule, the wire and the deadline.
 */
export class FederatedTrainer {
  private readonly paramSync: ParamSync;
  private readonly pinned?: PinnedClients;
  private readonly clientsById: Map<string, PlannedClient>;
  /** The global trainable values, float64 masters (the strategy returns new values for the tensors it aggregates). */
  private readonly global = new Map<string, Float64Array>();
  /** Exact LoRA: the cumulative residual folded into each adapted base weight, by GGUF name; its version; per worker, the version it holds. */
  private readonly residuals = new Map<string, { shape: readonly number[]; values: Float64Array }>();
  private residualVersion = 0;
  private readonly residualSent = new Map<string, number>();
  /** Global-model version: bumped by every aggregated round (what ParamSync mirrors are keyed on). */
  private version = 0;
  private traffic = { paramBytes: 0, updateBytes: 0 };
  /** Stale replies already attributed to a round (see `fitRound`). */
  private staleCounted = 0;

  constructor(
    private readonly registry: WorkerRegistry,
    private readonly strategy: Strategy,
    private readonly options: FederatedTrainerOptions,
  ) {
    this.paramSync = new ParamSync(options.manifest, options.encodeParam ?? float32Blob, options.isParamLossless ?? (() => true));
    this.clientsById = new Map(options.clients.map((c) => [c.id, c]));
    if (options.placement === 'pinned') this.pinned = new PinnedClients(options.clients.map((c) => c.id));
    for (const spec of options.manifest) this.global.set(spec.name, Float64Array.from(options.initial.get(spec.name)!));
    // A worker rejoining under its old id holds nothing we sent its previous session: its next request is a full sync.
    registry.subscribe((event) => {
      if (event.type === 'joined') this.forget(event.session);
    });
  }

  /** The global trainable values in float32, as workers receive them (fresh arrays). */
  globalFloat32(): NamedTensors {
    return new Map([...this.global].map(([name, values]) => [name, Float32Array.from(values)]));
  }

  /** The global model as data (float64 masters, version, cumulative exact-LoRA residuals), for checkpoints. */
  exportState(): FederatedTrainerSnapshot {
    return {
      version: this.version,
      global: Object.fromEntries([...this.global].map(([name, values]) => [name, Float64Array.from(values)])),
      residualVersion: this.residualVersion,
      residuals: Object.fromEntries([...this.residuals].map(([name, r]) => [name, { shape: [...r.shape], values: Float64Array.from(r.values) }])),
    };
  }

  /**
   * Puts back a state from {@link exportState} (read from a checkpoint). Workers are new after a restart: each gets
   * the full parameters and residuals with its first request.
   * @throws Error when a global tensor is missing or has another length than the manifest says
   */
  restoreState(snapshot: FederatedTrainerSnapshot): void {
    for (const [name, values] of this.global) {
      const saved = snapshot.global[name];
      if (!saved || saved.length !== values.length) throw new Error(`restoreState: global tensor "${name}" is missing or has ${saved?.length} values, expected ${values.length}`);
      values.set(saved);
    }
    this.residuals.clear();
    for (const [name, r] of Object.entries(snapshot.residuals)) this.residuals.set(name, { shape: [...r.shape], values: Float64Array.from(r.values) });
    this.residualVersion = snapshot.residualVersion;
    this.version = snapshot.version;
  }

  /** Global-model version (the number of aggregated rounds so far). */
  get modelVersion(): number {
    return this.version;
  }

  /**
   * One training round.
   * @throws OrchestratorError E_NO_WORKERS when fewer than `minAvailableClients` clients are available
   */
  async fitRound(round: number): Promise<RoundReport> {
    const started = performance.now();
    this.traffic = { paramBytes: 0, updateBytes: 0 };
    const available = this.availableClients();
    const plan = this.strategy.configureFit(round, [...available.keys()], this.rng(round, 'fit'));
    const sampled = [...plan.clients];
    const frozen = this.strategy.frozenTensors;
    const global = this.globalFloat32();
    const deadline = performance.now() + this.options.roundTimeoutMs;
    const results: ClientUpdate[] = [];
    const failures: ClientFailure[] = [];
    const computeByWorker = new Map<string, number>();
    let stale = 0;
    let clientComputeMs = 0;

    const localConfig = { proximalMu: plan.config.proximal_mu, frozen };
    await Promise.all(
      [...this.placeRound(sampled, available)].flatMap(([worker, clientIds]) =>
        clientIds.map(async (clientId) => {
          try {
            const { update, computeMs } = await this.fitClient(worker, clientId, round, global, deadline, localConfig);
            results.push(update);
            clientComputeMs += computeMs;
            computeByWorker.set(worker.id, (computeByWorker.get(worker.id) ?? 0) + computeMs);
          } catch (err) {
            if (err instanceof StaleResultError) stale++;
            else failures.push(failureOf(clientId, err));
          }
        }),
      ),
    );

    // Replies to earlier rounds' timed-out requests, counted since the previous round ended, so that a late reply landing between rounds (during evaluation or a
    // checkpoint save) is not missed.
    const staleNow = this.staleReplies();
    stale += Math.max(0, staleNow - this.staleCounted);
    this.staleCounted = staleNow;
    // Aggregate in plan order whatever order replies arrived in: the same inputs give the same model.
    results.sort((a, b) => sampled.indexOf(a.clientId) - sampled.indexOf(b.clientId));
    const completion = sampled.length === 0 ? 0 : results.length / sampled.length;
    const isComplete = results.length > 0 && completion >= this.options.minCompletionRate;
    let metrics: RoundMetrics = {};
    let aggregated = isComplete;
    if (isComplete) {
      try {
        const aggregate = this.strategy.aggregateFit(round, results, failures, this.global);
        for (const [name, values] of aggregate.values) this.global.set(name, values);
        if (aggregate.residuals.length > 0) this.foldResiduals(aggregate.residuals);
        metrics = aggregate.metrics;
        this.version++;
      } catch (err) {
        // Zero total weight, or an update the strategy refused: the round is skipped and the model left unchanged.
        aggregated = false;
        metrics = { fit_error: `${errorCodeOf(err)}: ${(err as Error).message}` };
      }
    }
    const numExamples = results.reduce((n, r) => n + r.numExamples, 0);
    const trainLoss = results.reduce((sum, r) => sum + (r.metrics?.train_loss ?? 0) * r.numExamples, 0) / numExamples;
    return {
      round,
      sampled: sampled.length,
      completed: results.length,
      completedClients: results.map((r) => r.clientId),
      failures,
      stale,
      aggregated,
      trainLoss,
      numExamples,
      wallMs: performance.now() - started,
      clientComputeMs,
      busiestWorkerComputeMs: Math.max(0, ...computeByWorker.values()),
      ...this.traffic,
      metrics,
    };
  }

  /**
   * Sends one client its `fit_request` at the current global version and returns its validated update.
   * @throws StaleResultError when the reply names another round or client; TimeoutError after `deadline`;
   *   WorkerLostError; RemoteError (the client failed); ShapeError / OrchestratorError for an update that fails the gate
   */
  async fitClient(
    worker: WorkerSession,
    clientId: string,
    round: number,
    global: NamedTensors,
    deadline: number,
    strategyConfig: { proximalMu: number; frozen: readonly string[] },
  ): Promise<{ update: ClientUpdate; computeMs: number; baseVersion: number }> {
    const client = this.clientsById.get(clientId)!;
    const baseVersion = this.version;
    const { frozen, proximalMu } = strategyConfig;
    try {
      const reply = await worker.request(
        {
          kind: MsgKind.FIT_REQUEST,
          round,
          clientId,
          ...this.paramsFor(worker, global),
          data: this.clientData(client.indices, this.options.train),
          config: { ...this.options.localConfig(round, clientId), proximalMu, ...(frozen.length ? { frozen } : {}) },
        },
        MsgKind.FIT_RESULT,
        Math.max(1, deadline - performance.now()),
      );
      this.traffic.updateBytes += reply.delta.reduce((n, b) => n + b.data.byteLength, 0);
      if (reply.round !== round || reply.clientId !== clientId) {
        throw new StaleResultError(`client ${clientId}: a result for round ${reply.round} of ${reply.clientId} answered round ${round}`);
      }
      // The gate before anything touches the global model: names, shapes, dtypes and finite values.
      const deltas = validateTensors(reply.delta, this.strategy.aggregatedTensors);
      if (!Number.isFinite(reply.trainLoss)) {
        throw new OrchestratorError(ErrorCode.TENSOR_NON_FINITE, `client ${clientId} reported a non-finite training loss (${reply.trainLoss})`);
      }
      const update = { clientId, deltas, numExamples: reply.numExamples, numTokens: reply.numTokens, metrics: { train_loss: reply.trainLoss } };
      return { update, computeMs: reply.computeMs, baseVersion };
    } catch (err) {
      // Unless the request merely ran out of time, what the worker holds is no longer known for sure.
      if (!(err instanceof TimeoutError) && !(err instanceof StaleResultError)) this.forget(worker);
      // An update refused at the gate is a strike; the third quarantines the worker (closed, its id refused).
      if (isGateRejection(err)) this.registry.strike(worker, err);
      throw err;
    }
  }

  /** The exact-LoRA residuals a worker lacks (all of them, cumulative), or nothing when it is current. */
  private residualsFor(worker: WorkerSession): Pick<ParamUpdate, 'residualVersion' | 'baseResiduals'> {
    if (this.residualVersion === 0 || this.residualSent.get(worker.id) === this.residualVersion) return {};
    this.residualSent.set(worker.id, this.residualVersion);
    const baseResiduals = [...this.residuals].map(([name, r]) => float32Blob(name, r.shape, Float32Array.from(r.values)));
    this.traffic.paramBytes += baseResiduals.reduce((n, b) => n + b.data.byteLength, 0);
    return { residualVersion: this.residualVersion, baseResiduals };
  }

  /** Adds a round's exact-LoRA residuals to the cumulative ones every worker must compute with. */
  private foldResiduals(residuals: readonly LoraResidual[]): void {
    for (const r of residuals) {
      const held = this.residuals.get(r.baseWeightName);
      if (!held) this.residuals.set(r.baseWeightName, { shape: r.shape, values: Float64Array.from(r.values) });
      else for (let i = 0; i < held.values.length; i++) held.values[i] += r.values[i];
    }
    this.residualVersion++;
  }

  /** The cumulative exact-LoRA residuals by base weight name (empty unless `lora_aggregation: exact`). */
  baseResiduals(): Map<string, { shape: readonly number[]; values: Float32Array }> {
    return new Map([...this.residuals].map(([name, r]) => [name, { shape: r.shape, values: Float32Array.from(r.values) }]));
  }

  /**
   * Adds `scale × delta` to the global values (FedBuff's server step) and bumps the model version.
   * @returns the new version
   */
  applyDelta(delta: ReadonlyMap<string, Float64Array>, scale: number): number {
    for (const [name, values] of delta) {
      const target = this.global.get(name)!;
      for (let i = 0; i < target.length; i++) target[i] += scale * values[i];
    }
    return ++this.version;
  }

  /** Federated evaluation: the global model on sampled clients' own evaluation examples. */
  async evaluateRound(round: number): Promise<{ results: EvaluateResult[]; failures: ClientFailure[]; metrics: RoundMetrics }> {
    const available = this.availableClients();
    const withEvalData = [...available.keys()].filter((id) => (this.clientsById.get(id)!.evalIndices?.length ?? 0) > 0);
    const sampled = this.strategy.configureEvaluate(round, withEvalData, this.rng(round, 'evaluate')).clients;
    if (sampled.length === 0) return { results: [], failures: [], metrics: {} };
    const global = this.globalFloat32();
    const deadline = performance.now() + this.options.roundTimeoutMs;
    const results: EvaluateResult[] = [];
    const failures: ClientFailure[] = [];
    await Promise.all(
      [...this.placeRound(sampled, available)].flatMap(([worker, clientIds]) =>
        clientIds.map(async (clientId) => {
          try {
            const reply = await worker.request(
              {
                kind: MsgKind.CLIENT_EVAL_REQUEST,
                round,
                clientId,
                ...this.paramsFor(worker, global),
                data: this.clientData(this.clientsById.get(clientId)!.evalIndices!, this.options.eval),
                batchSize: this.options.evalBatchSize,
              },
              MsgKind.CLIENT_EVAL_RESULT,
              Math.max(1, deadline - performance.now()),
            );
            if (reply.round !== round || reply.clientId !== clientId) return;
            results.push(toEvaluateResult(clientId, reply.stats));
          } catch (err) {
            if (err instanceof WorkerLostError) this.forget(worker);
            failures.push({ clientId, code: err instanceof TimeoutError ? 'E_TIMEOUT' : errorCodeOf(err), message: (err as Error).message });
          }
        }),
      ),
    );
    results.sort((a, b) => a.clientId.localeCompare(b.clientId));
    const metrics = results.some((r) => r.numExamples > 0) ? this.strategy.aggregateEvaluate(round, results, failures).metrics : { eval_num_failures: failures.length };
    return { results, failures, metrics };
  }

  /**
   * Centralized evaluation of the global model on the held-out set: batches spread over the ready workers; a
   * worker that fails hands its remaining batches to the others.
   * @throws OrchestratorError E_NO_WORKERS when every worker failed
   */
  async evaluateCentrally(examples: readonly TokenizedItem[], batchSize: number, padId: number, task: RunTask): Promise<BatchStats> {
    const global = this.globalFloat32();
    const pending = sequentialBatchIndices(examples.length, batchSize);
    const failed = new Set<WorkerSession>();
    let total: BatchStats = EMPTY_STATS;
    let lastError: Error | undefined;
    const drain = async (worker: WorkerSession): Promise<void> => {
      for (let indices = pending.shift(); indices !== undefined; indices = pending.shift()) {
        const batch = collateBatch(indices.map((i) => examples[i]), { task, padId });
        try {
          const reply = await worker.request(
            { kind: MsgKind.EVAL_REQUEST, step: this.version, ...this.paramsFor(worker, global), batch: batchToWire(batch) },
            MsgKind.EVAL_RESULT,
            this.options.roundTimeoutMs,
          );
          total = addStats(total, reply.stats);
        } catch (err) {
          this.forget(worker);
          pending.unshift(indices);
          failed.add(worker);
          lastError = err as Error;
          return;
        }
      }
    };
    while (pending.length > 0) {
      const workers = this.registry.ready().filter((w) => !failed.has(w));
      if (workers.length === 0) {
        throw new OrchestratorError(ErrorCode.NO_WORKERS, `no worker left to evaluate on${lastError ? `; last error: ${lastError.message}` : ''}`, { cause: lastError });
      }
      await Promise.all(workers.map(drain));
    }
    return total;
  }

  /** The seeded generator of one round's sampling (fit and evaluate draw from separate streams). */
  private rng(round: number, purpose: 'fit' | 'evaluate') {
    return mulberry32(mixSeeds(this.options.seed, round, purpose === 'fit' ? 0xf17 : 0xe7a1));
  }

  /**
   * The parameter update bringing `worker` to the current global version: nothing when it holds it already
   * (every client after the first on a worker), a delta or a full sync otherwise.
   */
  paramsFor(worker: WorkerSession, global: NamedTensors): ParamUpdate {
    const update = { ...this.paramSync.updateFor(worker.id, this.version, global), ...this.residualsFor(worker) };
    this.traffic.paramBytes += [...(update.params ?? []), ...(update.paramsDelta ?? [])].reduce((n, b) => n + b.data.byteLength, 0);
    return update;
  }

  /** A worker whose copies are no longer known: its next request carries everything again. */
  private forget(worker: WorkerSession): void {
    this.paramSync.forget(worker.id);
    this.residualSent.delete(worker.id);
  }

  private staleReplies(): number {
    return this.registry.all().reduce((n, session) => n + session.staleReplies, 0);
  }

  /**
   * Available clients and, for pinned clients, their workers.
   * @throws OrchestratorError E_NO_WORKERS when fewer than `minAvailableClients` are available
   */
  availableClients(): Map<string, WorkerSession | undefined> {
    const ready = this.registry.ready();
    let available: Map<string, WorkerSession | undefined>;
    if (this.pinned) {
      const byId = new Map<string, WorkerSession>(ready.map((w) => [w.id, w]));
      available = new Map([...this.pinned.refresh(ready.map((w) => w.id))].map(([clientId, workerId]) => [clientId, byId.get(workerId)]));
    } else {
      available = new Map(ready.length > 0 ? this.options.clients.map((c) => [c.id, undefined]) : []);
    }
    if (available.size < this.options.minAvailableClients) {
      throw new OrchestratorError(
        ErrorCode.NO_WORKERS,
        `only ${available.size} client(s) available, min_available_clients is ${this.options.minAvailableClients} (${ready.length} worker(s) ready)`,
      );
    }
    return available;
  }

  /** Worker → its clients for this round. */
  private placeRound(sampled: readonly string[], available: Map<string, WorkerSession | undefined>): Map<WorkerSession, string[]> {
    const out = new Map<WorkerSession, string[]>();
    if (this.pinned) {
      for (const clientId of sampled) {
        const worker = available.get(clientId)!;
        out.set(worker, [...(out.get(worker) ?? []), clientId]);
      }
      return out;
    }
    const workers = this.registry.ready();
    const byId = new Map<string, WorkerSession>(workers.map((w) => [w.id, w]));
    const loads = sampled.map((clientId) => ({ clientId, work: this.clientsById.get(clientId)!.indices.length }));
    for (const [workerId, clientIds] of placeVirtualClients(loads, workers.map((w) => w.id))) {
      if (clientIds.length > 0) out.set(byId.get(workerId)!, clientIds);
    }
    return out;
  }

  private clientData(indices: readonly number[], dataset: readonly TokenizedItem[]): ClientData {
    if (this.options.delivery === 'local') return { indices };
    return { examples: shipExamples(indices.map((i) => dataset[i])) };
  }
}
