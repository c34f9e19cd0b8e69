import os from 'node:os';
import type { WorkerAdamWSettings } from '../shared/optimizers/index.js';
import type { Message, MessageOf, TensorBlob } from '../shared/protocol/messages.js';
import { MsgKind, PROTOCOL_VERSION } from '../shared/protocol/messages.js';
import { makeErrorFrame, makeMessage } from '../shared/protocol/build.js';
import type { Transport, TransportCloseEvent } from '../shared/transport.js';
import { ErrorCode, OrchestratorError, RemoteError, TimeoutError } from '../shared/errors.js';
import { loadBaseModel } from '../shared/model/load-model.js';
import { buildTrainableModel } from '../shared/model/build-trainable-model.js';
import type { TrainableModel } from '../shared/model/trainable-model.js';
import { PACKAGE_VERSION } from '../shared/version.js';
import { toCodecPolicy } from '../shared/config.js';
import type { BackendReport } from './backend.js';
import { DataParallelRank } from './trainer.js';
import { FederatedRank, type LocalRunData } from './federated-rank.js';
import { prepareRunData, type RunDataConfig } from '../shared/data/index.js';
import { blockEventLoop, nanPoisoner, workerFaults, type WorkerFaults } from './fault-injection.js';
import { obtainModelFile } from './blob-fetch.js';
import { releaseMessage, setChunkSize } from '../shared/protocol/socket-transport.js';
import type { CachedModel, WorkerModelCache } from './model-cache.js';
import { extendPingTimeout } from './transport-ws.js';

/** How a worker process behaves; everything has a default but the connection. */
export interface WorkerRuntimeOptions {
  /** An open connection to the coordinator. */
  readonly transport: Transport;
  /** The compute backend already selected (worker/backend.ts). */
  readonly backend: BackendReport;
  /** Load the base model from this path instead of the path the coordinator names (same sha256 required). */
  readonly modelPath?: string;
  /**
   * Folder of the content-addressed cache a model the worker lacks is fetched into (`<cacheDir>/blobs/<sha256>`;
   * an HF directory's files as blobs, then assembled as `<cacheDir>/hf/<directory sha256>/`).
   * @default DEFAULT_CACHE_DIR (`~/.cache/swarmtune`)
   */
  readonly cacheDir?: string;
  /** Longest wait for `welcome` after `hello`, in milliseconds. @default 30_000 */
  readonly welcomeTimeoutMs?: number;
  /** Where progress lines go. @default console.error */
  readonly log?: (line: string) => void;
  /** The id to rejoin under (sent in `hello`; the coordinator replaces a live session holding it). @default a new id */
  readonly workerId?: string;
  /** Injected faults (worker/fault-injection.ts). @default read from the environment */
  readonly faults?: WorkerFaults;
  /** Keeps the loaded model across sessions of the same run (rejoin); absent: the session disposes it. @default none */
  readonly modelCache?: WorkerModelCache;
  /** Called once `welcome` arrived, with the id the coordinator assigned (to rejoin under later). @default none */
  readonly onWelcome?: (info: { readonly workerId: string; readonly runId: string }) => void;
}

/** How a worker session ended: `stopped` by the coordinator, or the connection was `lost`. */
export type WorkerOutcome =
  | { readonly kind: 'stopped'; readonly reason: string }
  | { readonly kind: 'lost'; readonly close: TransportCloseEvent };

/**
 * One worker session: hello → welcome (load and verify the model) → ready, then answer requests until `stop`
 * or the connection closes. A request that fails gets an `error` frame naming the problem and the worker goes
 * on; it never throws on a peer's input.
 */
export async function runWorkerSession(options: WorkerRuntimeOptions): Promise<WorkerOutcome> {
  const { transport, backend } = options;
  const log = options.log ?? ((line: string) => console.error(line));
  const inbox = new FrameQueue(transport);
  await transport.send(
    makeMessage(MsgKind.HELLO, {
      ...(options.workerId !== undefined ? { workerId: options.workerId } : {}),
      protocolVersion: PROTOCOL_VERSION,
      clientVersion: PACKAGE_VERSION,
      capabilities: { backend: backend.name, cores: os.availableParallelism(), memoryBytes: os.totalmem(), hostname: os.hostname(), pid: process.pid },
    }),
  );
  const welcome = await inbox.next(options.welcomeTimeoutMs ?? 30_000);
  if (welcome === undefined) return { kind: 'lost', close: await transport.closed };
  if (welcome.kind === MsgKind.STOP) return { kind: 'stopped', reason: welcome.reason };
  if (welcome.kind === MsgKind.ERROR) {
    throw new RemoteError(welcome.code, `the coordinator refused this worker: ${welcome.code} ${welcome.message}`, welcome.retryable);
  }
  if (welcome.kind !== MsgKind.WELCOME) {
    throw new OrchestratorError(ErrorCode.PROTOCOL_UNEXPECTED, `expected welcome from the coordinator, got ${welcome.kind}`);
  }

  options.onWelcome?.({ workerId: welcome.workerId, runId: welcome.runId });
  let rank: Rank;
  let model: TrainableModel | undefined;
  let kept: CachedModel | undefined;
  try {
    const started = performance.now();
    kept = options.modelCache?.take(welcome.runId, welcome.model.sha256, welcome.modelSpec);
    if (kept) {
      model = kept.model;
      log(`worker ${welcome.workerId}: run ${welcome.runId}, keeping the model loaded from ${kept.modelPath} (same run and sha256)`);
    } else {
      const { path: modelPath } = await obtainModelFile(welcome.model, {
        overridePath: options.modelPath,
        cacheDir: options.cacheDir,
        channel: { send: (msg) => transport.send(msg), receive: (timeoutMs) => inbox.next(timeoutMs) },
        log,
      });
      const loaded = await loadBaseModel(modelPath);
      if (loaded.sha256 !== welcome.model.sha256) {
        throw new OrchestratorError(ErrorCode.MODEL_MISMATCH, `model ${modelPath} has sha256 ${loaded.sha256}, the run uses ${welcome.model.sha256}`);
      }
      model = buildTrainableModel(loaded, welcome.modelSpec);
      kept = { runId: welcome.runId, sha256: loaded.sha256, specJson: JSON.stringify(welcome.modelSpec), model, tokenizer: loaded.tokenizer, modelPath };
    }
    const { tokenizer, modelPath } = kept;
    const settings = welcome.settings as WorkerSettings;
    if (settings.chunk_size_bytes !== undefined) setChunkSize(transport, settings.chunk_size_bytes);
    // Pings come every interval, the pong wait may hold one back a timeout more while busy: allow two rounds.
    if (settings.heartbeat_interval_ms !== undefined && settings.heartbeat_timeout_ms !== undefined) {
      extendPingTimeout(transport, 2 * settings.heartbeat_interval_ms + settings.heartbeat_timeout_ms);
    }
    if (settings.mode === 'federated') {
      const localData = settings.data_delivery === 'local' ? (kept.localData ?? (await prepareLocalData(settings, tokenizer))) : undefined;
      kept = { ...kept, localData };
      rank = new FederatedRank(model, localData, tokenizer.padId);
    } else {
      rank = new DataParallelRank(model, toCodecPolicy(settings.grads_codec ?? 'fp32', settings.grads_codec_overrides ?? {}), settings.error_feedback ?? true, {
        warmupSteps: settings.sparse_warmup_steps ?? 0,
        scope: settings.topk_scope ?? 'tensor',
        selection: settings.topk_selection ?? 'magnitude',
        beta2: settings.adam_beta2 ?? 0.999,
      }, settings.worker_adamw);
    }
    const loadMs = performance.now() - started;
    log(`worker ${welcome.workerId}: run ${welcome.runId}, model ${modelPath} loaded in ${loadMs.toFixed(0)} ms on ${backend.name}`);
    await transport.send(makeMessage(MsgKind.READY, { replyTo: welcome.id, modelSha256: kept.sha256, backend, loadMs }));
  } catch (err) {
    // The link dropped (e.g. mid-download): a partial model stays in the cache for the next session to resume.
    if (!transport.isOpen) {
      model?.dispose();
      return { kind: 'lost', close: await transport.closed };
    }
    await transport.send(makeErrorFrame(err, { replyTo: welcome.id })).catch(() => undefined);
    transport.close(1000, 'model load failed');
    model?.dispose();
    throw err;
  }

  const faults = options.faults ?? workerFaults();
  const poison = nanPoisoner(faults.nanResults);
  try {
    for (;;) {
      const msg = await inbox.next();
      if (msg === undefined) return { kind: 'lost', close: await transport.closed };
      if (msg.kind === MsgKind.STOP) {
        transport.close(1000, 'stopped');
        return { kind: 'stopped', reason: msg.reason };
      }
      await answer(transport, rank, msg, log, faults, poison);
      // Queued frames resolve as microtasks: yield to the event loop between requests so pings are answered and
      // the liveness check does not mistake a worker with a backlog for a dead one.
      await new Promise((resolveYield) => setImmediate(resolveYield));
    }
  } finally {
    if (options.modelCache) options.modelCache.keep(kept);
    else model.dispose();
  }
}

/** The run settings a worker reads from `welcome` (see coordinator/run.ts). */
interface WorkerSettings {
  readonly mode?: 'data-parallel' | 'federated';
  readonly grads_codec?: string;
  readonly grads_codec_overrides?: Record<string, string>;
  readonly error_feedback?: boolean;
  /** `topk` gradients: dense warm-up steps, scope and ranking (worker/topk-gradients.ts). */
  readonly sparse_warmup_steps?: number;
  readonly topk_scope?: 'tensor' | 'global';
  readonly topk_selection?: 'magnitude' | 'preconditioned' | 'fisher';
  readonly adam_beta2?: number;
  /** Set with `sparse_optimizer: worker`: this worker steps AdamW itself and sends updates (worker/local-adamw-updates.ts). */
  readonly worker_adamw?: WorkerAdamWSettings;
  /** The run's `chunk_size_bytes`: this worker chunks its sends at that size (the coordinator's maxPayload follows it). */
  readonly chunk_size_bytes?: number;
  /** The coordinator's heartbeat timers (`heartbeat_interval_ms`, `heartbeat_timeout_ms`): this worker's ping watchdog fits them. */
  readonly heartbeat_interval_ms?: number;
  readonly heartbeat_timeout_ms?: number;
  readonly data_delivery?: 'local' | 'ship';
  /** The run's data keys, for clients that load the dataset themselves. */
  readonly data?: RunDataConfig;
  /** Digest of the coordinator's tokenized training set (`digestItems`). */
  readonly train_sha256?: string;
}

type Rank = DataParallelRank | FederatedRank;

/**
 * Loads and tokenizes the run's dataset as the coordinator did, and checks the result is the same training set.
 * @throws OrchestratorError E_DATA_MISMATCH when this worker's data differs from the coordinator's
 */
async function prepareLocalData(settings: WorkerSettings, tokenizer: Parameters<typeof prepareRunData>[1]): Promise<LocalRunData> {
  if (!settings.data) throw new OrchestratorError(ErrorCode.PROTOCOL_UNEXPECTED, 'the run delivers data locally but its settings name no dataset');
  const data = await prepareRunData(settings.data, tokenizer);
  if (settings.train_sha256 !== undefined && data.trainSha256 !== settings.train_sha256) {
    throw new OrchestratorError(
      ErrorCode.DATA_MISMATCH,
      `this worker's training set for ${settings.data.dataset} (sha256 ${data.trainSha256}) differs from the coordinator's (${settings.train_sha256}): different data files or package versions`,
    );
  }
  return data;
}

async function answer(
  transport: Transport,
  rank: Rank,
  msg: Message,
  log: (line: string) => void,
  faults: WorkerFaults,
  poison: (blobs: readonly TensorBlob[]) => readonly TensorBlob[],
): Promise<void> {
  try {
    if (rank instanceof FederatedRank) {
      switch (msg.kind) {
        case MsgKind.FIT_REQUEST: {
          if (faults.crashFitRound === msg.round) {
            log(`fault injection: SIGKILL on the fit request of round ${msg.round}`);
            process.kill(process.pid, 'SIGKILL');
          }
          const fitted = await rank.fit(msg);
          const reply = makeMessage(MsgKind.FIT_RESULT, { ...fitted, delta: poison(fitted.delta) });
          const slowFit = faults.slowFit;
          if (slowFit?.round === msg.round) {
            log(`fault injection: holding back the fit result of round ${msg.round} for ${slowFit.delayMs} ms`);
            // Held back off the request loop: the worker goes on answering later rounds meanwhile.
            setTimeout(() => void transport.send(reply).catch(() => undefined), slowFit.delayMs);
            return;
          }
          await transport.send(reply);
          return;
        }
        case MsgKind.CLIENT_EVAL_REQUEST:
          await transport.send(makeMessage(MsgKind.CLIENT_EVAL_RESULT, rank.evaluateClient(msg)));
          return;
        case MsgKind.EVAL_REQUEST:
          await transport.send(makeMessage(MsgKind.EVAL_RESULT, rank.evaluateBatch(msg)));
          return;
      }
    } else {
      switch (msg.kind) {
        case MsgKind.GRAD_REQUEST: {
          if (faults.blockMs !== undefined) {
            log(`fault injection: blocking the event loop for ${faults.blockMs} ms in step ${msg.step}`);
            blockEventLoop(faults.blockMs);
          }
          const result = rank.gradients(msg);
          await transport.send(makeMessage(MsgKind.GRAD_RESULT, { ...result, grads: poison(result.grads) }));
          return;
        }
        case MsgKind.EVAL_REQUEST:
          await transport.send(makeMessage(MsgKind.EVAL_RESULT, rank.evaluate(msg)));
          return;
      }
    }
    if (msg.kind === MsgKind.ERROR) {
      log(`coordinator reported ${msg.code}: ${msg.message}`);
      return;
    }
    throw new OrchestratorError(ErrorCode.PROTOCOL_UNEXPECTED, `a ${rank instanceof FederatedRank ? 'federated' : 'data-parallel'} worker does not handle ${msg.kind} frames`);
  } catch (err) {
    log(`request ${msg.kind} ${msg.id} failed: ${(err as Error).message}`);
    if (transport.isOpen) await transport.send(makeErrorFrame(err, { replyTo: msg.id })).catch(() => undefined);
  } finally {
    // A data-parallel rank copies what it keeps out of a request (held parameters, batch tensors): the
    // request's reassembly memory is free again. Federated ranks may keep shipped shards, so theirs is left to GC.
    if (rank instanceof DataParallelRank) releaseMessage(transport, msg);
  }
}

/** Pulls inbound frames one at a time; `undefined` once the connection has closed. */
class FrameQueue {
  private readonly frames: Message[] = [];
  private waiter?: (msg: Message | undefined) => void;
  private isClosed = false;

  constructor(transport: Transport) {
    transport.onMessage((msg) => {
      if (this.waiter) {
        const waiter = this.waiter;
        this.waiter = undefined;
        waiter(msg);
      } else this.frames.push(msg);
    });
    transport.onClose(() => {
      this.isClosed = true;
      this.waiter?.(undefined);
      this.waiter = undefined;
    });
  }

  next(timeoutMs?: number): Promise<Message | undefined> {
    const queued = this.frames.shift();
    if (queued) return Promise.resolve(queued);
    if (this.isClosed) return Promise.resolve(undefined);
    return new Promise((resolveNext, reject) => {
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
        this.waiter = undefined;
        reject(new TimeoutError(`no frame from the coordinator within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (msg) => {
        clearTimeout(timer);
        resolveNext(msg);
      };
    });
  }
}

