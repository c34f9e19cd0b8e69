/**
 * The training metrics of `/metrics` (prom-client, registered on the coordinator's own registry, see
 * coordinator/prometheus.ts): progress (step, epoch, round), throughput, losses, evaluation, per-worker wire bytes
 * and work, workers connected, failures by kind, and step and round duration histograms.
 *
 * Most figures are read from the `metrics.jsonl` records as they are written ({@link TrainingMetrics.onRecord}), so
 * `/metrics` and `metrics.jsonl` agree by construction: a gauge holds the value of the newest record that carries it.
 * Per-step figures of data-parallel runs come from {@link TrainingMetrics.observeStep}; per-worker figures from the
 * worker pool and its connections.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { MetricsRecord } from './metrics.js';

/** Metric names, prefixed `swarmtune_` (the older `rejected_messages_total` keeps its name). */
export const TrainingMetricName = {
  STEPS: 'swarmtune_steps_total',
  ROUNDS: 'swarmtune_rounds_total',
  SAMPLES: 'swarmtune_samples_total',
  TOKENS: 'swarmtune_tokens_total',
  SAMPLES_PER_SECOND: 'swarmtune_samples_per_second',
  TOKENS_PER_SECOND: 'swarmtune_tokens_per_second',
  TRAIN_LOSS: 'swarmtune_train_loss',
  LEARNING_RATE: 'swarmtune_learning_rate',
  GRAD_NORM: 'swarmtune_grad_norm',
  EVAL_LOSS: 'swarmtune_eval_loss',
  EVAL_ACCURACY: 'swarmtune_eval_accuracy',
  STEP: 'swarmtune_step',
  EPOCH: 'swarmtune_epoch',
  ROUND: 'swarmtune_round',
  WORKER_BYTES_IN: 'swarmtune_worker_received_bytes_total',
  WORKER_BYTES_OUT: 'swarmtune_worker_sent_bytes_total',
  WORKER_RESULTS: 'swarmtune_worker_results_total',
  WORKER_SAMPLES: 'swarmtune_worker_samples_total',
  WORKERS_CONNECTED: 'swarmtune_workers_connected',
  FAILURES: 'swarmtune_failures_total',
  STEP_DURATION: 'swarmtune_step_duration_seconds',
  ROUND_DURATION: 'swarmtune_round_duration_seconds',
} as const;

/** Buckets of the step duration histogram, in seconds. */
export const STEP_DURATION_BUCKETS_S: readonly number[] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Buckets of the round duration histogram, in seconds. */
export const ROUND_DURATION_BUCKETS_S: readonly number[] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** Cumulative bytes of one connection, as `ServerConnection.wireBytes()` (coordinator/transport-ws.ts) reports them. */
export type WireBytes = () => { readonly inBytes: number; readonly outBytes: number };

/** What these metrics read of a worker session. */
export interface MeteredSession {
  readonly id: string;
  readonly state: string;
  readonly transport: object & { readonly wireBytes?: WireBytes };
}

/** The worker pool as these metrics see it (a `WorkerRegistry` fits). */
export interface MeteredPool {
  /** Workers that completed the handshake and are not lost. */
  ready(): readonly MeteredSession[];
  subscribe(listener: (event: { readonly type: string; readonly session?: MeteredSession }) => void): () => void;
}

/** A connection whose result frames are counted per worker (the transport the registry admitted). */
export interface MeteredConnection {
  onMessage(handler: (msg: { readonly kind: string }) => void): void;
}

/** One finished data-parallel optimizer step. */
export interface StepObservation {
  /** Wall time of the step, milliseconds. */
  readonly wallMs: number;
  readonly stats: { readonly numSamples: number; readonly numTokens: number };
}

/** One worker's figures (for progress bars and tests): cumulative over every session under its id. */
export interface WorkerFigures {
  readonly id: string;
  readonly state: string;
  /** Training results returned (data-parallel slices, federated client updates). */
  readonly results: number;
  /** Samples in those results. */
  readonly samples: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** The training metrics of one coordinator. */
export interface TrainingMetrics {
  /** Updates the metrics from one `metrics.jsonl` record. Never throws. */
  onRecord(record: MetricsRecord): void;
  /** Counts one data-parallel optimizer step (steps, samples, tokens, duration). */
  observeStep(step: StepObservation): void;
  /** Counts the result frames of a connection for its worker. Call once per accepted connection, after the registry's `admit`. */
  watchConnection(connection: MeteredConnection): void;
  /** Every worker seen so far, in joining order. */
  workers(): WorkerFigures[];
  /** Stops listening to the pool. */
  close(): void;
}

const RESULT_KINDS: ReadonlySet<string> = new Set(['grad_result', 'update_result']);

interface WorkerTally {
  id: string;
  state: string;
  results: number;
  samples: number;
  /** Bytes of this worker's closed sessions. */
  closedIn: number;
  closedOut: number;
  live?: WireBytes;
  /** What the byte counters hold already. */
  reportedIn: number;
  reportedOut: number;
}

/**
 * Registers the training metrics on `registry` and keeps them current from `pool`.
 * Byte counters are cumulative per worker id across its sessions (a rejoin adds to them).
 */
export function registerTrainingMetrics(registry: Registry, pool: MeteredPool): TrainingMetrics {
  const registers = [registry];
  const tallies = new Map<string, WorkerTally>();
  const byTransport = new WeakMap<object, WorkerTally>();
  const tallyOf = (id: string): WorkerTally => {
    let tally = tallies.get(id);
    if (!tally) tallies.set(id, (tally = { id, state: 'joining', results: 0, samples: 0, closedIn: 0, closedOut: 0, reportedIn: 0, reportedOut: 0 }));
    return tally;
  };
  const foldLive = (tally: WorkerTally) => {
    if (!tally.live) return;
    const bytes = tally.live();
    tally.closedIn += bytes.inBytes;
    tally.closedOut += bytes.outBytes;
    tally.live = undefined;
  };
  const totalsOf = (tally: WorkerTally) => {
    const live = tally.live?.() ?? { inBytes: 0, outBytes: 0 };
    return { inBytes: tally.closedIn + live.inBytes, outBytes: tally.closedOut + live.outBytes };
  };

  // Brought up to date at each scrape (the first counter's collect runs before either renders): the sockets count
  // the bytes, these counters add what is new since the last scrape.
  const bytesIn = new Counter({ name: TrainingMetricName.WORKER_BYTES_IN, help: 'Bytes received from each worker on its WebSocket connections (TCP payload, TLS included).', labelNames: ['worker'] as const, registers, collect: () => syncBytes() });
  const bytesOut = new Counter({ name: TrainingMetricName.WORKER_BYTES_OUT, help: 'Bytes sent to each worker on its WebSocket connections (TCP payload, TLS included).', labelNames: ['worker'] as const, registers });
  const syncBytes = () => {
    for (const tally of tallies.values()) {
      const now = totalsOf(tally);
      if (now.inBytes > tally.reportedIn) bytesIn.inc({ worker: tally.id }, now.inBytes - tally.reportedIn);
      if (now.outBytes > tally.reportedOut) bytesOut.inc({ worker: tally.id }, now.outBytes - tally.reportedOut);
      tally.reportedIn = Math.max(tally.reportedIn, now.inBytes);
      tally.reportedOut = Math.max(tally.reportedOut, now.outBytes);
    }
  };
  new Gauge({
    name: TrainingMetricName.WORKERS_CONNECTED,
    help: 'Workers that completed the handshake and are not lost.',
    registers,
    collect() {
      this.set(pool.ready().length);
    },
  });
  const workerResults = new Counter({ name: TrainingMetricName.WORKER_RESULTS, help: 'Training results returned by each worker (data-parallel slices, federated client updates).', labelNames: ['worker'] as const, registers });
  const workerSamples = new Counter({ name: TrainingMetricName.WORKER_SAMPLES, help: 'Samples in the training results returned by each worker.', labelNames: ['worker'] as const, registers });

  const steps = new Counter({ name: TrainingMetricName.STEPS, help: 'Data-parallel optimizer steps taken by this coordinator process.', registers });
  const rounds = new Counter({ name: TrainingMetricName.ROUNDS, help: 'Federated rounds (or FedBuff aggregations) finished by this coordinator process.', registers });
  const samples = new Counter({ name: TrainingMetricName.SAMPLES, help: 'Training samples processed (data-parallel: global batches; federated: client examples of finished rounds).', registers });
  const tokens = new Counter({ name: TrainingMetricName.TOKENS, help: 'Training tokens processed (data-parallel).', registers });
  const gauge = (name: string, help: string) => new Gauge({ name, help, registers });
  const samplesPerSecond = gauge(TrainingMetricName.SAMPLES_PER_SECOND, 'samples_per_s of the newest train record (its logging window), or the newest round\'s examples per second.');
  const tokensPerSecond = gauge(TrainingMetricName.TOKENS_PER_SECOND, 'tokens_per_s of the newest train record (its logging window).');
  const trainLoss = gauge(TrainingMetricName.TRAIN_LOSS, 'Training loss of the newest train record (mean over its logging window) or round (train_loss).');
  const learningRate = gauge(TrainingMetricName.LEARNING_RATE, 'learning_rate of the newest train record.');
  const gradNorm = gauge(TrainingMetricName.GRAD_NORM, 'grad_norm (before clipping) of the newest train record.');
  const evalLoss = gauge(TrainingMetricName.EVAL_LOSS, 'eval_loss of the newest centralized evaluation.');
  const evalAccuracy = gauge(TrainingMetricName.EVAL_ACCURACY, 'eval_accuracy of the newest centralized evaluation.');
  const step = gauge(TrainingMetricName.STEP, 'Optimizer steps done in the run (the newest train record\'s step; resumed runs start at their checkpoint).');
  const epoch = gauge(TrainingMetricName.EPOCH, 'Epoch progress of the newest train or eval record (fractional).');
  const round = gauge(TrainingMetricName.ROUND, 'The newest finished federated round.');
  const failures = new Counter({
    name: TrainingMetricName.FAILURES,
    help: 'Failures by kind (worker_lost, slice_failed, worker_quarantined, auth_rejected, client_failed) and error code.',
    labelNames: ['kind', 'code'] as const,
    registers,
  });
  const stepDuration = new Histogram({ name: TrainingMetricName.STEP_DURATION, help: 'Wall time of data-parallel optimizer steps, seconds.', buckets: [...STEP_DURATION_BUCKETS_S], registers });
  const roundDuration = new Histogram({ name: TrainingMetricName.ROUND_DURATION, help: 'Wall time of federated rounds (round_ms), seconds.', buckets: [...ROUND_DURATION_BUCKETS_S], registers });

  const unsubscribe = pool.subscribe((event) => {
    const session = event.session;
    if (!session) return;
    const tally = tallyOf(session.id);
    if (event.type === 'joined') {
      foldLive(tally);
      tally.live = session.transport.wireBytes;
      tally.state = 'ready';
      byTransport.set(session.transport, tally);
    } else if (event.type === 'lost' || event.type === 'quarantined') {
      if (byTransport.get(session.transport) === tally) foldLive(tally);
      tally.state = event.type;
    }
  });

  const num = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);
  const setIf = (target: Gauge, value: unknown) => {
    const n = num(value);
    if (n !== undefined) target.set(n);
  };
  const fail = (kind: string, code: unknown) => failures.inc({ kind, code: typeof code === 'string' ? code : '' });

  return {
    onRecord(record) {
      const r = record as Record<string, unknown>;
      switch (record.event) {
        case 'run_start':
          setIf(step, r.step);
          setIf(round, r.round);
          break;
        case 'train':
          setIf(step, r.step);
          setIf(epoch, r.epoch);
          setIf(trainLoss, r.loss);
          setIf(learningRate, r.learning_rate);
          setIf(gradNorm, r.grad_norm);
          setIf(samplesPerSecond, r.samples_per_s);
          setIf(tokensPerSecond, r.tokens_per_s);
          break;
        case 'round': {
          rounds.inc();
          setIf(round, r.round);
          setIf(trainLoss, r.train_loss);
          const roundMs = num(r.round_ms);
          const examples = num(r.num_examples);
          if (roundMs !== undefined) roundDuration.observe(roundMs / 1000);
          if (examples !== undefined) samples.inc(examples);
          if (roundMs !== undefined && roundMs > 0 && examples !== undefined) samplesPerSecond.set((examples / roundMs) * 1000);
          for (const failure of Array.isArray(r.failures) ? (r.failures as { code?: unknown }[]) : []) fail('client_failed', failure?.code);
          break;
        }
        case 'eval':
          setIf(evalLoss, r.eval_loss);
          setIf(evalAccuracy, r.eval_accuracy);
          setIf(epoch, r.epoch);
          break;
        case 'worker_lost':
          fail('worker_lost', '');
          break;
        case 'slice_failed':
          fail('slice_failed', r.code);
          break;
        case 'worker_quarantined':
          fail('worker_quarantined', r.code);
          break;
        case 'auth_rejected':
          fail('auth_rejected', r.reason);
          break;
        default:
          break;
      }
    },
    observeStep(observation) {
      steps.inc();
      samples.inc(observation.stats.numSamples);
      tokens.inc(observation.stats.numTokens);
      stepDuration.observe(observation.wallMs / 1000);
    },
    watchConnection(connection) {
      connection.onMessage((msg) => {
        if (!RESULT_KINDS.has(msg.kind)) return;
        const tally = byTransport.get(connection);
        if (!tally) return;
        const work = msg as { stats?: { numSamples?: unknown }; numExamples?: unknown };
        const count = num(work.stats?.numSamples) ?? num(work.numExamples) ?? 0;
        tally.results += 1;
        tally.samples += count;
        workerResults.inc({ worker: tally.id });
        if (count > 0) workerSamples.inc({ worker: tally.id }, count);
      });
    },
    workers() {
      return [...tallies.values()].map((t) => {
        const bytes = totalsOf(t);
        return { id: t.id, state: t.state, results: t.results, samples: t.samples, bytesIn: bytes.inBytes, bytesOut: bytes.outBytes };
      });
    },
    close() {
      unsubscribe();
    },
  };
}
