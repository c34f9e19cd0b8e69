import type { ModelRef } from '../shared/protocol/messages.js';
import { MsgKind } from '../shared/protocol/messages.js';
import type { ModelSpec } from '../shared/model/types.js';
import type { TensorSpec } from '../shared/tensors.js';
import type { Transport } from '../shared/transport.js';
import { ErrorCode, OrchestratorError, TimeoutError, errorCodeOf } from '../shared/errors.js';
import { newWorkerId, type WorkerId } from '../shared/ids.js';
import { CloseCode } from '../shared/protocol/close-codes.js';
import { Quarantine, type StrikeRecord } from './quarantine.js';
import { WorkerSession, WorkerState } from './worker-session.js';
import type { BlobServer } from './blob-server.js';
import type { BusyAwareLiveness } from './transport-ws.js';

/** What the registry tells every joining worker, and how long it waits for each handshake step. */
export interface RegistryOptions {
  readonly runId: string;
  readonly model: ModelRef;
  readonly modelSpec: ModelSpec;
  readonly manifest: readonly TensorSpec[];
  readonly settings: Readonly<Record<string, unknown>>;
  /** Answers workers' `blob_request`s (the base model for workers that lack it) on every connection. */
  readonly blobs?: BlobServer;
  /** Time for a new connection to send `hello`. @default 10_000 */
  readonly helloTimeoutMs?: number;
  /** Time for a worker to load and verify the base model after `welcome`. @default 120_000 */
  readonly loadTimeoutMs?: number;
  /** Gate rejections after which a worker is quarantined (closed 4006, its id refused for the run); 0 = never. @default 3 */
  readonly quarantineStrikes?: number;
}

/** A change in the worker pool, for logs and metrics. */
export type RegistryEvent =
  | { readonly type: 'joined'; readonly session: WorkerSession }
  | { readonly type: 'rejected'; readonly peer: string; readonly code: string; readonly message: string }
  | { readonly type: 'lost'; readonly session: WorkerSession; readonly reason: string }
  | { readonly type: 'quarantined'; readonly session: WorkerSession; readonly strikes: number; readonly code: string; readonly message: string };

/** WebSocket close code for a handshake that went wrong (policy violation). */
const CLOSE_POLICY = 1008;

/**
 * The coordinator's table of worker sessions. It runs each connection's handshake (hello → welcome → ready,
 * with the model hash checked), keeps the ready workers in joining order, and reports joins and losses.
 */
export class WorkerRegistry {
  private readonly sessions = new Map<string, WorkerSession>();
  private joinCounter = 0;
  /** Set by `stopAll`: closes after that are the run ending, not workers being lost. */
  private isStopping = false;
  private readonly listeners = new Set<(event: RegistryEvent) => void>();
  private readonly quarantine: Quarantine;

  constructor(private readonly options: RegistryOptions) {
    this.quarantine = new Quarantine(options.quarantineStrikes ?? 3);
  }

  /**
   * Counts a result of `session` rejected at the gate (see coordinator/quarantine.ts). At the configured number of
   * strikes the worker is quarantined: it gets an `error` frame E_WORKER_QUARANTINED, its connection is closed with
   * 4006, a `quarantined` event is emitted, and a rejoin under its id is refused for the rest of the run.
   */
  strike(session: WorkerSession, err: unknown): StrikeRecord {
    const record = this.quarantine.strike(session.id, err);
    if (record.isQuarantined && session.state !== WorkerState.LOST) {
      const message = `worker ${session.id} quarantined: ${record.strikes} results rejected at the gate (last: ${record.code} ${(err as Error).message})`;
      this.emit({ type: 'quarantined', session, strikes: record.strikes, code: record.code, message });
      void session.send({ kind: MsgKind.ERROR, code: ErrorCode.WORKER_QUARANTINED, message, retryable: false }).catch(() => undefined);
      session.close(CloseCode.QUARANTINED, truncateReason(message));
    }
    return record;
  }

  /** Whether `workerId` was quarantined during this run. */
  isQuarantined(workerId: string): boolean {
    return this.quarantine.isQuarantined(workerId);
  }

  /** Subscribes to pool changes; returns the unsubscribe function. */
  subscribe(listener: (event: RegistryEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Runs the handshake for a new connection. Never throws: a worker that fails the handshake gets an `error`
   * frame naming the problem, its connection is closed, and a `rejected` event is emitted.
   */
  async admit(transport: Transport & Partial<BusyAwareLiveness> & { readonly authIdentity?: string }): Promise<void> {
    const session = new WorkerSession(newWorkerId(), transport, transport.authIdentity);
    // A worker computing a step cannot pong: its heartbeat waits while a request to it is outstanding.
    transport.setBusyCheck?.(() => session.isBusy());
    this.options.blobs?.attach(transport);
    this.sessions.set(session.id, session);
    transport.onClose(() => {
      if (session.joinOrder >= 0 && !this.isStopping) this.emit({ type: 'lost', session, reason: session.lostReason ?? 'closed' });
    });
    const { runId, model, modelSpec, manifest, settings } = this.options;
    try {
      const hello = await session.nextUnsolicited(this.options.helloTimeoutMs ?? 10_000);
      if (hello.kind !== MsgKind.HELLO) {
        throw new OrchestratorError(ErrorCode.PROTOCOL_UNEXPECTED, `expected hello as the first frame, got ${hello.kind}`);
      }
      session.capabilities = hello.capabilities;
      if (hello.workerId !== undefined) this.rejoin(session, hello.workerId as WorkerId);
      const ready = await session.request(
        { kind: MsgKind.WELCOME, replyTo: hello.id, runId, workerId: session.id, model, modelSpec, manifest, settings },
        MsgKind.READY,
        this.options.loadTimeoutMs ?? 120_000,
      );
      if (ready.modelSha256 !== model.sha256) {
        throw new OrchestratorError(
          ErrorCode.MODEL_MISMATCH,
          `worker loaded a model with sha256 ${ready.modelSha256}, the run uses ${model.sha256} (${model.path})`,
        );
      }
      if (session.state !== WorkerState.JOINING) return; // closed while loading
      session.backend = ready.backend;
      session.state = WorkerState.READY;
      session.joinOrder = this.joinCounter++;
      this.emit({ type: 'joined', session });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const code = errorCodeOf(err);
      // A session replaced during its handshake must not take its successor's entry with it.
      if (this.sessions.get(session.id) === session) this.sessions.delete(session.id);
      if (session.state !== WorkerState.LOST) {
        await session.send({ kind: MsgKind.ERROR, code, message, retryable: err instanceof TimeoutError }).catch(() => undefined);
        session.close(closeCodeForRefusal(code), truncateReason(message));
      }
      this.emit({ type: 'rejected', peer: transport.peer, code, message });
    }
  }

  /** Ready workers in joining order. */
  ready(): WorkerSession[] {
    return [...this.sessions.values()]
      .filter((s) => s.state === WorkerState.READY)
      .sort((a, b) => a.joinOrder - b.joinOrder);
  }

  /** Every session, whatever its state (for the status table). */
  all(): WorkerSession[] {
    return [...this.sessions.values()];
  }

  /**
   * Resolves once `count` workers are ready.
   * @throws OrchestratorError E_NO_WORKERS after `timeoutMs`, naming how many are ready and how many are needed
   */
  waitForReady(count: number, timeoutMs: number): Promise<void> {
    if (this.ready().length >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        unsubscribe();
        reject(
          new OrchestratorError(
            ErrorCode.NO_WORKERS,
            `only ${this.ready().length} of ${count} required workers joined within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      const unsubscribe = this.subscribe(() => {
        if (this.ready().length < count) return;
        clearTimeout(timer);
        unsubscribe();
        resolve();
      });
    });
  }

  /** Sends `stop` to every live worker and closes their connections normally. */
  async stopAll(reason: string): Promise<void> {
    this.isStopping = true;
    await Promise.all(
      [...this.sessions.values()]
        .filter((s) => s.state !== WorkerState.LOST)
        .map(async (s) => {
          await s.send({ kind: MsgKind.STOP, reason }).catch(() => undefined);
          s.close(1000, 'run finished');
        }),
    );
  }

  /**
   * A worker asks to rejoin under `workerId` (S14): the new session takes the id and replaces a live session holding
   * it (closed 4007) when both authenticated with the same credential (or neither did: without authentication there
   * is no key, so the same-key rule applies). A live session under another credential keeps its id untouched and
   * the newcomer is refused (4409). A lost session's id may be taken by any authenticated worker.
   * @throws OrchestratorError E_WORKER_QUARANTINED when the id was quarantined during this run
   * @throws OrchestratorError E_WORKER_ID_CONFLICT when a live session holds the id under another credential
   */
  private rejoin(session: WorkerSession, workerId: WorkerId): void {
    if (this.quarantine.isQuarantined(workerId)) {
      throw new OrchestratorError(ErrorCode.WORKER_QUARANTINED, `worker id ${workerId} is quarantined for this run (its results were rejected at the gate ${this.quarantine.strikesOf(workerId)} times)`);
    }
    if (workerId === session.id) return;
    const previous = this.sessions.get(workerId);
    if (previous && previous !== session && previous.state !== WorkerState.LOST && previous.authIdentity !== session.authIdentity) {
      throw new OrchestratorError(ErrorCode.WORKER_ID_CONFLICT, `worker id ${workerId} is held by a live connection that authenticated with another key; refusing this one`);
    }
    this.sessions.delete(session.id);
    session.adoptId(workerId);
    this.sessions.set(workerId, session);
    if (previous && previous !== session && previous.state !== WorkerState.LOST) {
      previous.close(CloseCode.REPLACED, 'replaced by a new connection under the same worker id');
    }
  }

  private emit(event: RegistryEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}

/** The close code for a handshake refused with error `code`. */
function closeCodeForRefusal(code: string): number {
  if (code === ErrorCode.WORKER_QUARANTINED) return CloseCode.QUARANTINED;
  if (code === ErrorCode.WORKER_ID_CONFLICT) return CloseCode.ID_CONFLICT;
  return CLOSE_POLICY;
}

/** WebSocket close reasons are limited to 123 bytes. */
function truncateReason(reason: string): string {
  const bytes = Buffer.from(reason);
  return bytes.length <= 120 ? reason : `${bytes.subarray(0, 117).toString()}...`;
}
