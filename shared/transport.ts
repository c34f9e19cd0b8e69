/**
 * What the coordinator and worker logic see of a connection: typed messages in, typed messages out, one
 * close event. Implementations: `SocketTransport` (./protocol/socket-transport.ts) under the WebSocket
 * server (coordinator/transport-ws.ts) and client (worker/transport-ws.ts); `makeTransportPair()` in
 * test/helpers for in-process tests. Every inbound frame has passed `parseMessage`.
 */
import type { Message } from './protocol/messages.js';

/** Why a connection ended. */
export interface TransportCloseEvent {
  /** WebSocket close code (see `CloseCode` in ./protocol/close-codes.ts; 4002 is local-only, a dead link). */
  readonly code: number;
  /** Close reason (at most 123 bytes of UTF-8 on the wire). */
  readonly reason: string;
  /** Whether this side decided to close (a local `close()`, a refused frame, a heartbeat timeout). */
  readonly initiatedLocally: boolean;
  /**
   * The failure behind the close, when there was one: the `error` frame the peer sent just before closing,
   * or the error this side sent (a refused frame) or detected (heartbeat timeout).
   */
  readonly error?: {
    /** A stable `E_*` code (may be one this build does not know, when the peer is newer). */
    readonly code: string;
    readonly message: string;
    readonly retryable: boolean;
  };
}

/** Handler of inbound messages. A handler that throws (or rejects) closes the connection with 1011. */
export type MessageHandler = (msg: Message) => void | Promise<void>;
/** Handler of the close event (called once, asynchronously). */
export type CloseHandler = (event: TransportCloseEvent) => void;

/** A message connection to one peer. */
export interface Transport {
  /** Who is on the other side, for logs (`127.0.0.1:53412`, or the URL dialled). */
  readonly peer: string;
  /** Whether the connection is open (sends are accepted). */
  readonly isOpen: boolean;
  /**
   * Encodes and sends one frame. Resolves once the frame is queued and the send buffer is under the
   * transport's high-water mark (else when this frame has been handed to the OS): awaiting each send gives
   * backpressure.
   * @throws OrchestratorError E_CONNECTION_CLOSED when the connection is closed or closes before the frame
   *   is written; CodecError when the message cannot be encoded.
   */
  send(msg: Message): Promise<void>;
  /**
   * Registers a handler for inbound messages; returns a function that unregisters it. Messages that arrive
   * while no handler is registered are queued (bounded) and delivered, in order, to the first one registered.
   */
  onMessage(handler: MessageHandler): () => void;
  /** Registers a close handler; if the connection is already closed it is called (asynchronously) at once. */
  onClose(handler: CloseHandler): () => void;
  /** Resolves with the close event when the connection has closed. */
  readonly closed: Promise<TransportCloseEvent>;
  /**
   * Starts an orderly close. Idempotent.
   * @param code WebSocket close code. @default 1000
   * @param reason Human-readable reason, truncated to 123 bytes of UTF-8. @default ''
   */
  close(code?: number, reason?: string): void;
}

/** One line for logs: `closed 4001 by peer: E_PROTOCOL_VERSION protocol version mismatch: ...`. */
export function describeClose(event: TransportCloseEvent): string {
  const who = event.initiatedLocally ? 'by this side' : 'by peer';
  const detail = event.error ? `${event.error.code} ${event.error.message}` : event.reason || 'no reason given';
  return `closed ${event.code} ${who}: ${detail}`;
}
