import type { Batch, BatchStats, RunTask } from '../shared/model/types.js';
import type { TokenizedItem } from '../shared/data/types.js';
import { collateBatch, sequentialBatchIndices, type MlmMasking } from '../shared/data/index.js';
import { maskedIfMlm } from '../shared/model/mlm-plan.js';
import { MsgKind } from '../shared/protocol/messages.js';
import { batchToWire } from '../shared/protocol/batch.js';
import { float32Blob, validateTensors } from '../shared/codec.js';
import { ParamSync, type IsLossless, type ParamUpdate, type TensorEncoder } from '../shared/param-sync.js';
import type { NamedTensors } from '../shared/tensors.js';
import { ErrorCode, OrchestratorError, TimeoutError } from '../shared/errors.js';
import { CloseCode } from '../shared/protocol/close-codes.js';
import { releaseMessage } from '../shared/protocol/socket-transport.js';
import type { OnWorkerLoss } from '../shared/config.js';
import { addStats, EMPTY_STATS, sumContributions, sumWeightedUpdates, type GradientContribution } from './aggregation.js';
import { splitGlobalBatch, type BatchSlice } from './batch-plan.js';
import type { WorkerRegistry } from './registry.js';
import type { StepReport, TrainableState } from './trainable-state.js';
import type { WorkerSession } from './worker-session.js';
import { isGateRejection } from './quarantine.js';

/** What the synchronous data-parallel loop needs from the run. */
export interface DataParallelOptions {
  readonly task: RunTask;
  readonly padId: number;
  /**
   * Masked-LM runs: every slice is masked here, where it is collated, keyed by its examples' indices and the step
   * (evaluation: one fixed mask), so the result does not depend on how the global batch is cut. @default none
   */
  readonly mlm?: MlmMasking;
  readonly stepTimeoutMs: number;
  readonly onWorkerLoss: OnWorkerLoss;
  /** Seed mixed into each step's dropout seed. */
  readonly seed: number;
  /** How parameter updates are encoded. @default fp32 for every tensor */
  readonly encodeParam?: TensorEncoder;
  /** Whether a tensor's updates travel as absolute values (lossless codec) or differences. @default always */
  readonly isParamLossless?: IsLossless;
  /** Told about every slice a worker failed to compute (lost, timed out, or its result rejected at the gate). */
  readonly onSliceFailure?: (failure: SliceFailure) => void;
}

/** A slice a worker did not deliver, and what happens to it. */
export interface SliceFailure {
  readonly workerId: string;
  readonly sliceIndex: number;
  readonly error: Error;
  /** `reassigned` to another worker, or `dropped` (the step goes on with the survivors). */
  readonly outcome: 'reassigned' | 'dropped';
}

/** A finished optimizer step: the optimizer's report plus the counts and timing of the global batch. */
export interface DataParallelStepReport extends StepReport {
  readonly stats: BatchStats;
  readonly numWorkers: number;
  readonly wallMs: number;
  /** Tensor bytes sent to workers for this step (parameter updates). */
  readonly paramBytes: number;
  /** Tensor bytes received from workers for this step (gradients, rejected ones included). */
  readonly gradBytes: number;
}

/**
 * Synchronous data-parallel training (parameter server). For each global batch: cut it into one contiguous
 * slice per ready worker, send each worker the current parameters (when its copy is stale) and its slice,
 * collect the summed gradients, add them in slice order in float64, and take one optimizer step on the mean.
 * A worker lost mid-step has its slice recomputed by a survivor (`reassign`) or left out (`survivors`).
 */
export class DataParallelTrainer {
  private readonly paramSync: ParamSync;
  /** Tensor bytes moved since the last `step()` began, by direction. */
  private traffic = { paramBytes: 0, gradBytes: 0 };

  constructor(
    private readonly registry: WorkerRegistry,
    private readonly state: TrainableState,
    private readonly options: DataParallelOptions,
  ) {
    this.paramSync = new ParamSync(state.manifest, options.encodeParam ?? float32Blob, options.isParamLossless ?? (() => true));
    // A worker rejoining under its old id holds nothing we sent its previous session: its next request is a full sync.
    registry.subscribe((event) => {
      if (event.type === 'joined') this.paramSync.forget(event.session.id);
    });
  }

  /**
   * One optimizer step over the training examples at `globalBatch` (indices into `examples`).
   * @throws OrchestratorError E_NO_WORKERS when no worker is left to compute a slice
   */
  async step(examples: readonly TokenizedItem[], globalBatch: readonly number[]): Promise<DataParallelStepReport> {
    const started = performance.now();
    this.traffic = { paramBytes: 0, gradBytes: 0 };
    const workers = this.readyWorkers();
    const slices = splitGlobalBatch(globalBatch, workers.length);
    const params = this.state.paramsFloat32();
    const stepIndex = this.state.step;
    const results = await this.computeAll(slices, workers, (slice, worker) =>
      this.gradientsFor(worker, this.collate(examples, slice.exampleIndices, stepIndex), params, stepIndex, slice.sliceIndex),
    );
    const contributions = results.map((r) => r.value);
    // With workers' own optimizers (sparse_optimizer: worker) the results are updates, weighted like gradients.
    const summed = (this.state.updateRule === 'updates' ? sumWeightedUpdates : sumContributions)(contributions, this.state.manifest);
    // The sums are float64 copies: the replies' bytes (views of reassembly buffers) can serve the next transfer.
    for (const contribution of contributions) contribution.release();
    const report = this.state.applyGradients(summed);
    return { ...report, stats: summed.stats, numWorkers: workers.length, wallMs: performance.now() - started, ...this.traffic };
  }

  /** Loss and accuracy statistics over `examples`, spread over the ready workers in batches of `batchSize`. */
  async evaluate(examples: readonly TokenizedItem[], batchSize: number): Promise<BatchStats> {
    const workers = this.readyWorkers();
    const params = this.state.paramsFloat32();
    const slices: BatchSlice[] = sequentialBatchIndices(examples.length, batchSize).map((exampleIndices, sliceIndex) => ({ sliceIndex, exampleIndices }));
    const results = await this.computeAll(slices, workers, async (slice, worker) => {
      const batch = this.collate(examples, slice.exampleIndices, 'eval');
      const reply = await worker.request(
        { kind: MsgKind.EVAL_REQUEST, step: this.state.step, ...this.paramsFor(worker, params), batch: batchToWire(batch) },
        MsgKind.EVAL_RESULT,
        this.options.stepTimeoutMs,
      );
      return reply.stats;
    });
    return results.reduce((total, r) => addStats(total, r.value), EMPTY_STATS);
  }

  /** The padded (and, for masked-LM, masked) batch of `examples` at `indices`. */
  private collate(examples: readonly TokenizedItem[], indices: readonly number[], round: number | 'eval'): Batch {
    const batch = collateBatch(indices.map((i) => examples[i]), { task: this.options.task, padId: this.options.padId });
    return maskedIfMlm(batch, this.options.mlm, indices, round);
  }

  private readyWorkers(): WorkerSession[] {
    const workers = this.registry.ready();
    if (workers.length === 0) throw new OrchestratorError(ErrorCode.NO_WORKERS, 'no worker is ready to compute');
    return workers;
  }

  /** The parameter update that brings this worker to the current version (nothing when it is current). */
  private paramsFor(worker: WorkerSession, params: NamedTensors): ParamUpdate {
    const update = this.paramSync.updateFor(worker.id, this.state.version, params);
    this.traffic.paramBytes += blobBytes(update.params) + blobBytes(update.paramsDelta);
    return update;
  }

  private async gradientsFor(
    worker: WorkerSession,
    batch: Batch,
    params: NamedTensors,
    stepIndex: number,
    sliceIndex: number,
  ): Promise<GradientContribution & { readonly release: () => void }> {
    const reply = await worker.request(
      {
        kind: MsgKind.GRAD_REQUEST,
        step: stepIndex,
        ...this.paramsFor(worker, params),
        batch: batchToWire(batch),
        dropoutSeed: dropoutSeed(this.options.seed, stepIndex, sliceIndex),
      },
      MsgKind.GRAD_RESULT,
      this.options.stepTimeoutMs,
    );
    this.traffic.gradBytes += blobBytes(reply.grads);
    // The gate before anything touches the global state: names, shapes, dtypes and finiteness.
    const grads = validateTensors(reply.grads, this.state.manifest);
    if (!Number.isFinite(reply.stats.lossSum)) {
      throw new OrchestratorError(ErrorCode.TENSOR_NON_FINITE, `worker ${worker.id} reported a non-finite loss sum (${reply.stats.lossSum})`);
    }
    if (reply.stats.numSamples !== batch.batchSize) {
      throw new OrchestratorError(ErrorCode.PROTOCOL_UNEXPECTED, `worker ${worker.id} counted ${reply.stats.numSamples} samples for a batch of ${batch.batchSize}`);
    }
    return { grads, stats: reply.stats, release: () => releaseMessage(worker.transport, reply) };
  }

  /**
   * Runs `compute` for every slice, slice i on worker i mod N, and returns the results in slice order.
   * A slice whose worker fails is retried on the next live worker (`reassign`) or dropped (`survivors`),
   * so a lost worker never hangs the step; a result that fails validation is never counted.
   */
  private async computeAll<T>(
    slices: readonly BatchSlice[],
    workers: readonly WorkerSession[],
    compute: (slice: BatchSlice, worker: WorkerSession) => Promise<T>,
  ): Promise<{ slice: BatchSlice; value: T }[]> {
    const failed = new Set<WorkerSession>();
    const runSlice = async (slice: BatchSlice, worker: WorkerSession): Promise<{ slice: BatchSlice; value: T } | undefined> => {
      try {
        return { slice, value: await compute(slice, worker) };
      } catch (err) {
        failed.add(worker);
        // Whatever the failure, the worker's copy is no longer known for sure: its next request is a full sync.
        this.paramSync.forget(worker.id);
        if (err instanceof TimeoutError) worker.close(CloseCode.STEP_TIMEOUT, 'step timed out');
        // A result refused at the gate is a strike; the third quarantines the worker (closed, its id refused).
        if (isGateRejection(err)) this.registry.strike(worker, err);
        const outcome = this.options.onWorkerLoss === 'survivors' ? 'dropped' : 'reassigned';
        this.options.onSliceFailure?.({ workerId: worker.id, sliceIndex: slice.sliceIndex, error: err as Error, outcome });
        if (outcome === 'dropped') return undefined;
        return runSlice(slice, this.firstLive(failed, err as Error));
      }
    };
    // Slices beyond the worker count (evaluation) queue up behind each other on the same worker.
    const queues = new Map<WorkerSession, BatchSlice[]>();
    slices.forEach((slice, i) => {
      const worker = workers[i % workers.length];
      queues.set(worker, [...(queues.get(worker) ?? []), slice]);
    });
    const perWorker = await Promise.all(
      [...queues].map(async ([worker, queue]) => {
        const done: ({ slice: BatchSlice; value: T } | undefined)[] = [];
        for (const slice of queue) done.push(await runSlice(slice, failed.has(worker) ? this.firstLive(failed) : worker));
        return done;
      }),
    );
    const results = perWorker.flat().filter((r): r is { slice: BatchSlice; value: T } => r !== undefined);
    if (results.length === 0) throw new OrchestratorError(ErrorCode.NO_WORKERS, 'no worker returned a result for this step');
    return results.sort((a, b) => a.slice.sliceIndex - b.slice.sliceIndex);
  }

  /** The first ready worker that has not failed in this step. @throws OrchestratorError E_NO_WORKERS when none is left */
  private firstLive(failed: Set<WorkerSession>, lastError?: Error): WorkerSession {
    const live = this.readyWorkers().find((w) => !failed.has(w));
    if (!live) {
      const detail = lastError ? `; last error: ${lastError.message}` : '';
      throw new OrchestratorError(ErrorCode.NO_WORKERS, `every worker failed on this step${detail}`, { cause: lastError });
    }
    return live;
  }
}

function blobBytes(blobs: readonly { data: Uint8Array }[] | undefined): number {
  return blobs?.reduce((n, b) => n + b.data.byteLength, 0) ?? 0;
}

/** Dropout seed of one slice of one step: reproducible wherever the slice is computed. */
export function dropoutSeed(seed: number, step: number, sliceIndex: number): number {
  return (Math.imul(seed ^ 0x9e3779b9, 31) + Math.imul(step + 1, 0x85ebca6b) + Math.imul(sliceIndex + 1, 0xc2b2ae35)) >>> 0;
}
