/**
 * The dashboard of a run in progress: the routes of ./dashboard-server.ts fed by the coordinator's metrics log and
 * worker connections. `coordinator/run.ts` creates one per run, chains its routes after `/metrics` on the
 * coordinator's HTTP server and prints its URL.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createDashboard, type DashboardRunInfo, type StampedRecord } from './dashboard-server.js';
import { WorkerTable, type LiveWorker, type WatchableConnection } from './worker-table.js';

/** Options of {@link createLiveDashboard}. */
export interface LiveDashboardOptions {
  readonly run: Omit<DashboardRunInfo, 'source'>;
  /** The coordinator's sessions now, whatever their state (`WorkerRegistry.all()`). */
  readonly liveWorkers: () => readonly LiveWorker[];
  /** @default DEFAULT_SNAPSHOT_INTERVAL_MS (./dashboard-server.ts) */
  readonly snapshotIntervalMs?: number;
}

/** The live dashboard of one run. */
export interface LiveDashboard {
  /** Takes one metrics record (the `MetricsLog` listener). */
  onRecord(record: StampedRecord): void;
  /** Watches a worker connection for the table's throughput, bytes and last-seen columns (after `registry.admit`). */
  watchConnection(connection: WatchableConnection): void;
  /** Answers the dashboard's routes; false for any other request. */
  handleHttpRequest(req: IncomingMessage, res: ServerResponse): boolean;
  /** Ends the pages' event streams (before the HTTP server closes). */
  close(): void;
}

/** Creates the live dashboard of one run. */
export function createLiveDashboard(options: LiveDashboardOptions): LiveDashboard {
  const table = new WorkerTable();
  const dashboard = createDashboard({
    run: { ...options.run, source: 'live' },
    workerRows: () => table.rows(options.liveWorkers()),
    snapshotIntervalMs: options.snapshotIntervalMs,
  });
  return {
    onRecord(record) {
      table.observeRecord(record);
      dashboard.publish(record);
    },
    watchConnection: (connection) => table.watchConnection(connection),
    handleHttpRequest: (req, res) => dashboard.handleHttpRequest(req, res),
    close: () => dashboard.close(),
  };
}

/**
 * The page's address on a coordinator whose WebSocket URL is `wsUrl` (`ws://h:p` → `http://h:p/`). A wildcard
 * host (`0.0.0.0`, `[::]`) becomes `127.0.0.1`, which a browser on the same machine can open (browsers refuse 0.0.0.0).
 */
export function dashboardUrlOf(wsUrl: string): string {
  return `${wsUrl.replace(/^ws(s?):\/\//, 'http$1://').replace(/\/\/(0\.0\.0\.0|\[::\])(?=:)/, '//127.0.0.1')}/`;
}
