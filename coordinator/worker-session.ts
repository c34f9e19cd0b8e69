import type { WorkerCapabilities, BackendReport, Message, MessageOf, MsgKind } from '../shared/protocol/messages.js';
import { MsgKind as Kind, PROTOCOL_VERSION } from '../shared/protocol/messages.js';
import type { Transport } from '../shared/transport.js';
import { RemoteError, TimeoutError, WorkerLostError } from '../shared/errors.js';
import { newMessageId, type WorkerId } from '../shared/ids.js';

/**
 * Life of a worker session on the coordinator:
 * - `joining`: connected, handshake (hello → welcome → ready) under way;
 * - `ready`: model loaded and verified, can take work;
 * - `lost`: the connection closed or the worker stopped answering; terminal.
 */
export const WorkerState = { JOINING: 'joining', READY: 'ready', LOST: 'lost' } as const;
export type WorkerState = (typeof WorkerState)[keyof typeof WorkerState];

/** Unsolicited frames kept for a later `nextUnsolicited`; more are dropped (a peer cannot fill memory). */
const MAX_INBOX_FRAMES = 16;

interface PendingReply {
  readonly replyKind: MsgKind;
  readonly resolve: (msg: Message) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** Frames a session sends: everything but the envelope, which the session fills in. */
type Outgoing = Message extends infer M ? (M extends Message ? Omit<M, 'v' | 'id'> : never) : never;

/**
 * One connected worker: its transport, what it reported about itself, and the requests awaiting its replies.
 * Replies are matched to requests by `replyTo`; an `error` frame answering a request rejects it with a
 * {@link RemoteError}; a closed connection rejects everything pending with a {@link WorkerLostError}.
 */
export class WorkerSession {
  state: WorkerState = WorkerState.JOINING;
  capabilities?: WorkerCapabilities;
  backend?: BackendReport;
  /** Order of joining (0, 1, ...): slices of a global batch go to workers in this order. */
  joinOrder = -1;
  lostReason?: string;
  /** Replies that arrived after their request had timed out (dropped unread), since the session began. */
  staleReplies = 0;
  private readonly pending = new Map<string, PendingReply>();
  private readonly waiters: ((msg: Message) => void)[] = [];
  private readonly inbox: Message[] = [];

  private currentId: WorkerId;

  /**
   * @param authIdentity the credential the connection authenticated with (see `AuthVerdict.identity` in ./auth.ts);
   *   undefined without authentication. A rejoin under a live session's id must come with the same one (S14).
   */
  constructor(
    id: WorkerId,
    readonly transport: Transport,
    readonly authIdentity?: string,
  ) {
    this.currentId = id;
    transport.onMessage((msg) => this.dispatch(msg));
    transport.onClose((info) => this.markLost(`connection closed (${info.code}${info.reason ? `: ${info.reason}` : ''})`));
  }

  /** The worker's id for the run: assigned at connection, or the one it asked to rejoin under in `hello`. */
  get id(): WorkerId {
    return this.currentId;
  }

  /** Takes the id a worker rejoins under (the registry decides, during the handshake, before `welcome`). */
  adoptId(id: WorkerId): void {
    this.currentId = id;
  }

  /**
   * Whether a request to this worker awaits its reply. The heartbeat holds a busy link open past a missed
   * pong (a worker computing a step cannot pong); the request's own timeout bounds the wait.
   */
  isBusy(): boolean {
    return this.pending.size > 0;
  }

  /** Sends a frame that expects no reply. */
  async send(frame: Outgoing): Promise<void> {
    await this.transport.send({ v: PROTOCOL_VERSION, id: newMessageId(), ...frame } as Message);
  }

  /**
   * Sends a request and resolves with the reply of kind `replyKind`.
   * @throws RemoteError when the worker answers with an `error` frame
   * @throws TimeoutError after `timeoutMs` without a reply
   * @throws WorkerLostError when the connection is or becomes lost
   */
  request<K extends MsgKind>(frame: Outgoing, replyKind: K, timeoutMs: number): Promise<MessageOf<K>> {
    if (this.state === WorkerState.LOST) {
      return Promise.reject(new WorkerLostError(`worker ${this.id} is lost: ${this.lostReason}`));
    }
    const id = newMessageId();
    return new Promise<MessageOf<K>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TimeoutError(`worker ${this.id} did not answer ${frame.kind} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { replyKind, resolve: resolve as (msg: Message) => void, reject, timer });
      this.transport.send({ v: PROTOCOL_VERSION, id, ...frame } as Message).catch((err: unknown) => {
        this.settle(id)?.reject(new WorkerLostError(`sending ${frame.kind} to worker ${this.id} failed: ${(err as Error).message}`, { cause: err }));
      });
    });
  }

  /** The next frame that is not a reply to a request (e.g. `hello`), waiting up to `timeoutMs` for one. */
  nextUnsolicited(timeoutMs: number): Promise<Message> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const waiter = (msg: Message): void => {
        clearTimeout(timer);
        resolve(msg);
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new TimeoutError(`no frame from ${this.transport.peer} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Marks the session lost and fails every pending request; idempotent. */
  markLost(reason: string): void {
    if (this.state === WorkerState.LOST) return;
    this.state = WorkerState.LOST;
    this.lostReason = reason;
    for (const id of [...this.pending.keys()]) {
      this.settle(id)?.reject(new WorkerLostError(`worker ${this.id} lost: ${reason}`));
    }
  }

  /** Closes the connection (if open) and marks the session lost. */
  close(code: number, reason: string): void {
    this.markLost(reason);
    this.transport.close(code, reason);
  }

  private settle(id: string): PendingReply | undefined {
    const entry = this.pending.get(id);
    if (!entry) return undefined;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    return entry;
  }

  private dispatch(msg: Message): void {
    const replyTo = 'replyTo' in msg ? msg.replyTo : undefined;
    if (replyTo !== undefined && this.pending.has(replyTo)) {
      const entry = this.settle(replyTo)!;
      if (msg.kind === Kind.ERROR) entry.reject(new RemoteError(msg.code, `worker ${this.id}: ${msg.message}`, msg.retryable));
      else if (msg.kind !== entry.replyKind) {
        entry.reject(new RemoteError('E_PROTOCOL_UNEXPECTED', `worker ${this.id} answered with ${msg.kind}, expected ${entry.replyKind}`, false));
      } else entry.resolve(msg);
      return;
    }
    // A late reply to a request that already timed out is stale: dropped on purpose, never counted.
    if (replyTo !== undefined) {
      this.staleReplies++;
      return;
    }
    // Blob requests are answered by the blob server on the same transport; the session has nothing to do with them.
    if (msg.kind === Kind.BLOB_REQUEST) return;
    const waiter = this.waiters.shift();
    if (waiter) waiter(msg);
    else if (this.inbox.length < MAX_INBOX_FRAMES) this.inbox.push(msg);
  }
}
