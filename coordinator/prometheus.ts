/**
 * The coordinator's Prometheus metrics: one prom-client `Registry` per coordinator (never the process-global
 * default, so two coordinators in one process, as in tests, count apart), the metrics themselves, and the
 * `GET /metrics` route served on the coordinator's own HTTP server in the Prometheus text format (0.0.4).
 *
 * To add a metric: declare it in {@link CoordinatorMetrics}, create it in {@link createCoordinatorMetrics} with
 * `registers: [registry]`, and update it where the event happens (the coordinator passes this object around).
 *
 * The route is served without authentication, like most exporters: it reveals counts, never model bytes or
 * secrets. Bind `host` to a private interface where that matters.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Registry } from 'prom-client';
import { CloseCode } from '../shared/protocol/close-codes.js';
import type { Transport, TransportCloseEvent } from '../shared/transport.js';

/** The path the metrics are served under. */
export const METRICS_PATH = '/metrics';

/**
 * Close codes with which this side refuses a peer's frame (see shared/protocol/close-codes.ts): undecodable (1007),
 * not allowed (1008), too big (1009), wrong protocol version (4001).
 */
const FRAME_REFUSAL_CODES: ReadonlySet<number> = new Set([CloseCode.INVALID_DATA, CloseCode.POLICY, CloseCode.TOO_BIG, CloseCode.VERSION_MISMATCH]);

/** Label values of `rejected_messages_total`. */
export type RejectedMessageLabels = {
  /** The stable error code of the refusal (`E_PROTOCOL_MALFORMED`, `E_PROTOCOL_FORBIDDEN_KEY`, ...). */
  readonly reason: string;
  /** The WebSocket close code the peer was closed with (1007, 1008, 1009, 4001). */
  readonly close_code: string;
};

/** The coordinator's metrics and their registry. */
export interface CoordinatorMetrics {
  /** Where every metric of this coordinator is registered; `registry.metrics()` renders them. */
  readonly registry: Registry;
  /** Inbound frames refused at the wire gate (bytes, structure), each of which closed its connection (RELIABILITY S8). */
  readonly rejectedMessages: Counter<keyof RejectedMessageLabels>;
  /**
   * Counts the frame refusal that closes `transport`, if its close is one (this side closed it with a refusal code).
   * Call once per accepted connection.
   */
  watchConnection(transport: Pick<Transport, 'onClose'>): void;
  /**
   * Answers `GET /metrics` (HEAD too) with the text format; returns false for any other request, which the caller
   * answers. Never throws: a failure to render is a 500.
   */
  handleHttpRequest(req: IncomingMessage, res: ServerResponse): boolean;
}

/**
 * The labels under which `event` counts as a refused frame, or undefined when it closed for another reason. The
 * transport's gate closes with the error it sent; a close without one (e.g. the registry ending a handshake with
 * 1008) is session logic, not a frame refusal.
 */
export function frameRefusalOf(event: TransportCloseEvent): RejectedMessageLabels | undefined {
  if (!event.initiatedLocally || !FRAME_REFUSAL_CODES.has(event.code) || event.error === undefined) return undefined;
  return { reason: event.error.code, close_code: String(event.code) };
}

/** A fresh metrics registry for one coordinator. */
export function createCoordinatorMetrics(): CoordinatorMetrics {
  const registry = new Registry();
  const rejectedMessages = new Counter({
    name: 'rejected_messages_total',
    help: 'Inbound frames refused at the wire gate (undecodable, schema, forbidden key, too big, wrong version); each closed its connection.',
    labelNames: ['reason', 'close_code'] as const,
    registers: [registry],
  });
  return {
    registry,
    rejectedMessages,
    watchConnection(transport) {
      transport.onClose((event) => {
        const labels = frameRefusalOf(event);
        if (labels) rejectedMessages.inc(labels);
      });
    },
    handleHttpRequest(req, res) {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== METRICS_PATH || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
      registry.metrics().then(
        (body) => {
          res.writeHead(200, { 'Content-Type': registry.contentType, 'Content-Length': Buffer.byteLength(body) });
          res.end(req.method === 'HEAD' ? undefined : body);
        },
        (err: unknown) => {
          res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
          res.end(`metrics could not be rendered: ${(err as Error).message}\n`);
        },
      );
      return true;
    },
  };
}
