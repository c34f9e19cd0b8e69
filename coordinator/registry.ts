import type { ModelRef } from '../shared/protocol/messages.js';
import { MsgKind } from '../shared/protocol/messages.js';
import type { ModelSpec } from '../shared/model/types.js';
import type { TensorSpec } from '../shared/tensors.js';
import type { Transport } from '../shared/transport.js';
import { ErrorCode, OrchestratorError, TimeoutError, errorCodeOf } from '../shared/errors.js';
import { newWorkerId } from '../shared/ids.js';
import { WorkerSession, WorkerState } from './worker-session.js';
import type { BlobServer } from './blob-server.js';

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
}

/** A change in the worker pool, for logs and metrics. */
export type RegistryEvent =
  | { readonly type: 'joined'; readonly session: WorkerSession }
  | { readonly type: 'rejected'; readonly peer: string; readonly code: string; readonly message: string }
  | { readonly type: 'lost'; readonly session: WorkerSession; readonly reason: string };

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

  constructor(private readonly options: RegistryOptions) {}

  /** Subscribes to pool changes; returns the unsubscribe function. */
  subscribe(listener: (event: RegistryEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Runs the handshake for a new connection. Never throws: a worker that fails the handshake gets an `error`
   * frame naming the problem, its connection is closed, and a `rejected` event is emitted.
   */
  async admit(transport: Transport): Promise<void> {
    const session = new WorkerSession(newWorkerId(), transport);
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
      this.sessions.delete(session.id);
      if (session.state !== WorkerState.LOST) {
        await session.send({ kind: MsgKind.ERROR, code, message, retryable: err instanceof TimeoutError }).catch(() => undefined);
        session.close(CLOSE_POLICY, truncateReason(message));
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

  private emit(event: RegistryEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}

/** WebSocket close reasons are limited to 123 bytes. */
function truncateReason(reason: string): string {
  const bytes = Buffer.from(reason);
  return bytes.length <= 120 ? reason : `${bytes.subarray(0, 117).toString()}...`;
}
