/**
 * The dashboard's HTTP routes, served on the coordinator's own HTTP server (beside `/metrics`) during a run, or on a
 * server of its own after it (./after-run.ts):
 * - `GET /` and `/dashboard`: the page (./static/index.html), its script and style (`/dashboard/static/*`), and
 *   uPlot from node_modules (`/dashboard/vendor/*`): everything local, no external network;
 * - `GET /api/history`: `{ run, records, workers }`, every metrics record so far and the worker table;
 * - `GET /events`: server-sent events. A client first gets `history` (the same object), then a `record` event per
 *   metrics record as it is written and a `workers` event with the worker table every `snapshotIntervalMs` and on
 *   every worker event. A reconnecting EventSource simply gets the history again, so no record is missed or doubled.
 *
 * Like `/metrics`, the routes are unauthenticated: they show losses, worker ids and peer addresses, never model
 * bytes or secrets. Bind `host` to a private interface where that matters.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { MetricsRecord } from '../metrics.js';
import type { WorkerRow } from './worker-table.js';

/** How often connected pages get the worker table (and a keep-alive), in milliseconds. @default 2000 */
export const DEFAULT_SNAPSHOT_INTERVAL_MS = 2000;

/** Paths the page is served under. */
export const DASHBOARD_PATHS: readonly string[] = ['/', '/dashboard', '/dashboard/'];

/** A metrics record as written to `metrics.jsonl` (stamped with `time`). */
export type StampedRecord = MetricsRecord & { readonly time?: string };

/** What the page is told about the run besides its records. */
export interface DashboardRunInfo {
  /** `live` while the coordinator serves it, `finished` for `swarmtune dashboard --run-dir`. */
  readonly source: 'live' | 'finished';
  readonly outputDir: string;
  /** `data-parallel` or `federated`. */
  readonly mode?: string;
  readonly workers?: number;
}

/** Options of {@link createDashboard}. */
export interface DashboardOptions {
  readonly run: DashboardRunInfo;
  /** The worker table now (called for every snapshot). */
  readonly workerRows: () => WorkerRow[];
  /** @default DEFAULT_SNAPSHOT_INTERVAL_MS */
  readonly snapshotIntervalMs?: number;
}

/** The dashboard of one run. */
export interface Dashboard {
  /** Adds a record to the history and sends it to every connected page. */
  publish(record: StampedRecord): void;
  /** Answers the dashboard's routes; returns false for any other request, which the caller answers. Never throws. */
  handleHttpRequest(req: IncomingMessage, res: ServerResponse): boolean;
  /** Pages connected to `/events` now. */
  readonly clientCount: number;
  /** Ends every event stream and stops the snapshot timer. */
  close(): void;
}

const STATIC_DIR = fileURLToPath(new URL('./static/', import.meta.url));
const STATIC_FILES: Readonly<Record<string, { file: string; type: string }>> = {
  'dashboard.js': { file: `${STATIC_DIR}dashboard.js`, type: 'text/javascript; charset=utf-8' },
  'dashboard.css': { file: `${STATIC_DIR}dashboard.css`, type: 'text/css; charset=utf-8' },
};
const require = createRequire(import.meta.url);
const VENDOR_FILES: Readonly<Record<string, { module: string; type: string }>> = {
  'uPlot.iife.min.js': { module: 'uplot/dist/uPlot.iife.min.js', type: 'text/javascript; charset=utf-8' },
  'uPlot.min.css': { module: 'uplot/dist/uPlot.min.css', type: 'text/css; charset=utf-8' },
};

/** Creates the dashboard of one run; call `publish` for every metrics record, `close` when the run ends. */
export function createDashboard(options: DashboardOptions): Dashboard {
  const records: StampedRecord[] = [];
  const clients = new Set<ServerResponse>();
  const snapshot = () => ({ run: options.run, records, workers: options.workerRows() });
  const broadcast = (event: string, data: unknown) => {
    if (clients.size === 0) return;
    const frame = sseFrame(event, data);
    for (const res of clients) res.write(frame);
  };
  const timer = setInterval(() => broadcast('workers', options.workerRows()), options.snapshotIntervalMs ?? DEFAULT_SNAPSHOT_INTERVAL_MS);
  timer.unref();

  const openStream = (req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache, no-transform', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.write(`retry: 2000\n\n${sseFrame('history', snapshot())}`);
    clients.add(res);
    const drop = () => clients.delete(res);
    req.on('close', drop);
    res.on('error', drop);
  };

  return {
    publish(record) {
      records.push(record);
      broadcast('record', record);
      // A step's figures too, not only the interval's: a short run can end between two interval snapshots, and
      // once its sessions close their throughput is no longer measured.
      if (typeof record.worker_id === 'string' || record.event === 'train') broadcast('workers', options.workerRows());
    },
    get clientCount() {
      return clients.size;
    },
    handleHttpRequest(req, res) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return false;
      const path = (req.url ?? '/').split('?')[0];
      try {
        if (DASHBOARD_PATHS.includes(path)) return serveFile(res, `${STATIC_DIR}index.html`, 'text/html; charset=utf-8', req.method);
        if (path === '/events') return openStream(req, res), true;
        if (path === '/api/history') return sendJson(res, snapshot(), req.method);
        const staticFile = path.startsWith('/dashboard/static/') ? STATIC_FILES[path.slice('/dashboard/static/'.length)] : undefined;
        if (staticFile) return serveFile(res, staticFile.file, staticFile.type, req.method);
        const vendor = path.startsWith('/dashboard/vendor/') ? VENDOR_FILES[path.slice('/dashboard/vendor/'.length)] : undefined;
        if (vendor) return serveFile(res, require.resolve(vendor.module), vendor.type, req.method);
        return false;
      } catch (err) {
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(`dashboard failed: ${(err as Error).message}\n`);
        return true;
      }
    },
    close() {
      clearInterval(timer);
      for (const res of clients) res.end();
      clients.clear();
    },
  };
}

function sseFrame(event: string, data: unknown): string {
  // JSON never holds a raw newline, so one `data:` line carries the whole object.
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function sendJson(res: ServerResponse, value: unknown, method: string | undefined): true {
  const body = JSON.stringify(value);
  res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-cache' });
  res.end(method === 'HEAD' ? undefined : body);
  return true;
}

function serveFile(res: ServerResponse, file: string, type: string, method: string | undefined): true {
  readFile(file).then(
    (body) => {
      res.writeHead(200, { 'Content-Type': type, 'Content-Length': body.length, 'Cache-Control': 'no-cache' });
      res.end(method === 'HEAD' ? undefined : body);
    },
    (err: unknown) => {
      res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(`dashboard file ${file} could not be read: ${(err as Error).message}\n`);
    },
  );
  return true;
}
