/**
 * `GET /healthz` on the coordinator's port: 200 with a small JSON body while the coordinator serves, for container
 * health checks (docker-compose.yml) and load balancers. Not authenticated; it reveals the phase and worker count only.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The path of the health check. */
export const HEALTHZ_PATH = '/healthz';

/** What the health body reports. */
export interface HealthView {
  /** Workers that completed the handshake and are not lost. */
  readonly workersReady: () => number;
}

/**
 * Answers `GET`/`HEAD /healthz` with 200 and `{"status":"ok","workers_ready":N}`; returns false for any other
 * request, which the caller answers.
 */
export function handleHealthz(req: IncomingMessage, res: ServerResponse, view: HealthView): boolean {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== HEALTHZ_PATH || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
  const body = `${JSON.stringify({ status: 'ok', workers_ready: view.workersReady() })}\n`;
  res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}
