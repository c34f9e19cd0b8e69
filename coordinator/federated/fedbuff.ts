/**
 * Asynchronous federated training, FedBuff (Nguyen et al. 2022): no round barrier. The coordinator keeps a fixed
 * number of clients training at once, each from the global model as it was when it started; every arrival enters a
 * buffer with its staleness (versions the model moved on since the client started), and every K arrivals the buffer
 * is aggregated with staleness weights `(1 + s)^-a` and applied as one server step, `w ← w + η · Σ c_i Δ_i`.
 * A client that fails or times out is replaced by another; an update staler than the bound is dropped.
 */
import type { NamedTensors } from '../../shared/tensors.js';
import { mulberry32 } from '../../shared/random.js';
import { mixSeeds } from '../../shared/data/index.js';
import type { WorkerRegistry } from '../registry.js';
import type { WorkerSession } from '../worker-session.js';
import type { FederatedTrainer } from './federated-trainer.js';
import { failureOf, StaleResultError } from './client-wire.js';
import { emptyBuffer, offerArrival, type BufferState } from './staleness.js';
import type { Strategy } from './strategy.js';
import type { ClientFailure, ClientUpdate } from './types.js';

/** How the asynchronous loop runs. */
export interface FedBuffOptions {
  /** Aggregations (server steps) to take before stopping. */
  readonly numAggregations: number;
  /** K: arrivals per aggregation. */
  readonly bufferSize: number;
  /** a in the polynomial staleness weight `(1 + s)^-a`. */
  readonly stalenessExponent: number;
  /** η: server learning rate of the buffered step. */
  readonly serverLearningRate: number;
  /** Longest one client may take, in milliseconds. */
  readonly clientTimeoutMs: number;
  /** Seeds client choice. */
  readonly seed: number;
  /** Examples per client (to weight updates) are in the updates; `weight_by` picks examples or tokens. */
  readonly weightBy: 'examples' | 'tokens';
  /** Told about every aggregation, with the arrivals it used. */
  readonly onAggregate: (report: FedBuffAggregation) => void;
}

/** One server step of the asynchronous loop. */
export interface FedBuffAggregation {
  /** 1-based aggregation number (the model version it produced). */
  readonly version: number;
  readonly clients: readonly string[];
  readonly staleness: readonly number[];
  /** Example-weighted mean of the buffered clients' training losses. */
  readonly trainLoss: number;
  readonly numExamples: number;
  /** Failures and dropped arrivals since the previous aggregation. */
  readonly failures: readonly ClientFailure[];
  readonly dropped: number;
  readonly wallMs: number;
}

/** Runs FedBuff on `trainer`'s clients and workers until `numAggregations` server steps are taken. */
export async function runFedBuff(trainer: FederatedTrainer, registry: WorkerRegistry, strategy: Strategy, options: FedBuffOptions): Promise<void> {
  const rng = mulberry32(mixSeeds(options.seed, 0xfeb));
  const concurrency = strategy.configureFit(0, [...trainer.availableClients().keys()], rng).clients.length;
  const inFlight = new Map<string, { worker: WorkerSession; done: Promise<void> }>();
  let buffer: BufferState<ClientUpdate> = emptyBuffer(trainer.modelVersion);
  let failures: ClientFailure[] = [];
  let dropped = 0;
  let windowStart = performance.now();
  let taken = 0;
  let dispatched = 0;

  const dispatch = (): void => {
    const clients = trainer.availableClients();
    const available = [...clients.keys()].filter((id) => !inFlight.has(id));
    if (available.length === 0) return;
    const clientId = available[Math.floor(rng() * available.length)];
    // A pinned client trains on its own worker; a virtual one on the least busy.
    const worker = clients.get(clientId) ?? leastBusy(registry.ready(), inFlight);
    const global: NamedTensors = trainer.globalFloat32();
    const round = ++dispatched;
    const done = trainer
      .fitClient(worker, clientId, round, global, performance.now() + options.clientTimeoutMs, { proximalMu: strategy.options.proximalMu, frozen: strategy.frozenTensors })
      .then(({ update, baseVersion }) => {
        if (taken >= options.numAggregations) return;
        const weight = options.weightBy === 'tokens' ? update.numTokens : update.numExamples;
        const outcome = offerArrival(buffer, { update, weight, baseVersion }, {
          bufferSize: options.bufferSize,
          weighting: { kind: 'polynomial', exponent: options.stalenessExponent },
        });
        buffer = outcome.state;
        if (outcome.kind === 'dropped') dropped++;
        if (outcome.kind !== 'aggregate') return;
        const delta = new Map<string, Float64Array>();
        for (const spec of strategy.aggregatedTensors) {
          const sum = new Float64Array(spec.shape.reduce((a, b) => a * b, 1));
          for (const c of outcome.flush.contributions) {
            const d = c.update.deltas.get(spec.name)!;
            for (let i = 0; i < sum.length; i++) sum[i] += c.aggregationWeight * d[i];
          }
          delta.set(spec.name, sum);
        }
        const version = trainer.applyDelta(delta, options.serverLearningRate);
        taken++;
        const used = outcome.flush.contributions.map((c) => c.update);
        const numExamples = used.reduce((n, u) => n + u.numExamples, 0);
        options.onAggregate({
          version,
          clients: used.map((u) => u.clientId),
          staleness: outcome.flush.contributions.map((c) => c.staleness),
          trainLoss: used.reduce((s, u) => s + (u.metrics?.train_loss ?? 0) * u.numExamples, 0) / numExamples,
          numExamples,
          failures,
          dropped,
          wallMs: performance.now() - windowStart,
        });
        failures = [];
        dropped = 0;
        windowStart = performance.now();
      })
      .catch((err: unknown) => {
        if (!(err instanceof StaleResultError)) failures.push(failureOf(clientId, err));
      })
      .finally(() => inFlight.delete(clientId));
    inFlight.set(clientId, { worker, done });
  };

  while (taken < options.numAggregations) {
    while (inFlight.size < concurrency && registry.ready().length > 0) {
      const before = inFlight.size;
      dispatch();
      if (inFlight.size === before) break;
    }
    if (inFlight.size === 0) {
      trainer.availableClients(); // throws E_NO_WORKERS naming what is missing
      break;
    }
    await Promise.race([...inFlight.values()].map((f) => f.done));
  }
  // Clients still training are abandoned: their late results are dropped as stale by their sessions.
}

/** The ready worker with the fewest clients in flight (the earliest joined on ties). */
function leastBusy(workers: readonly WorkerSession[], inFlight: ReadonlyMap<string, { worker: WorkerSession }>): WorkerSession {
  const load = new Map<WorkerSession, number>(workers.map((w) => [w, 0]));
  for (const { worker } of inFlight.values()) if (load.has(worker)) load.set(worker, load.get(worker)! + 1);
  return workers.reduce((best, w) => (load.get(w)! < load.get(best)! ? w : best), workers[0]);
}
