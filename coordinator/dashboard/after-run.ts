/**
 * The dashboard of a finished run (`swarmtune dashboard --run-dir DIR`): the same page, served by a small HTTP
 * server of its own from the run's `metrics.jsonl` (and `run_config.json` for the mode and worker count).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { ConfigError, ErrorCode } from '../../shared/errors.js';
import { createDashboard, type StampedRecord } from './dashboard-server.js';
import { WorkerTable } from './worker-table.js';

/** Options of {@link serveRunDashboard}. */
export interface RunDashboardOptions {
  /** A run's output folder (holds `metrics.jsonl`). */
  readonly runDir: string;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** TCP port; 0 picks a free one. @default 0 */
  readonly port?: number;
}

/** A running after-run dashboard. */
export interface RunDashboard {
  /** The page's address, `http://HOST:PORT/`. */
  readonly url: string;
  /** The records read from `metrics.jsonl`. */
  readonly numRecords: number;
  close(): Promise<void>;
}

/**
 * Reads the records of `metrics.jsonl`. A torn last line (a run killed mid-write) is skipped; any other line that
 * is not a JSON object is an error.
 * @throws ConfigError E_CONFIG_INVALID when the file is missing or a line is not a JSON object, naming the line
 */
export function readMetricsFile(path: string): StampedRecord[] {
  if (!existsSync(path)) throw new ConfigError(ErrorCode.CONFIG_INVALID, `--run-dir: no metrics file at ${path} (is this a swarmtune run folder?)`);
  const lines = readFileSync(path, 'utf8').split('\n');
  const records: StampedRecord[] = [];
  lines.forEach((line, index) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      if (index === lines.length - 1) return;
      throw new ConfigError(ErrorCode.CONFIG_INVALID, `${path}:${index + 1}: not JSON (${(err as Error).message})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value) || typeof (value as { event?: unknown }).event !== 'string') {
      throw new ConfigError(ErrorCode.CONFIG_INVALID, `${path}:${index + 1}: not a metrics record (an object with an "event")`);
    }
    records.push(value as StampedRecord);
  });
  return records;
}

/**
 * Serves the dashboard of the run in `runDir` until `close`.
 * @throws ConfigError E_CONFIG_INVALID when `runDir` holds no readable `metrics.jsonl`
 * @throws Error (from `listen`) when the port is taken
 */
export async function serveRunDashboard(options: RunDashboardOptions): Promise<RunDashboard> {
  const runDir = resolve(options.runDir);
  const records = readMetricsFile(join(runDir, 'metrics.jsonl'));
  const config = readRunConfig(join(runDir, 'run_config.json'));
  const table = new WorkerTable();
  const dashboard = createDashboard({
    run: { source: 'finished', outputDir: runDir, mode: typeof config.mode === 'string' ? config.mode : undefined, workers: typeof config.workers === 'number' ? config.workers : undefined },
    workerRows: () => table.rows(),
  });
  for (const record of records) {
    table.observeRecord(record);
    dashboard.publish(record);
  }
  const server: Server = createServer((req, res) => {
    if (dashboard.handleHttpRequest(req, res)) return;
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('not found: the dashboard is at /\n');
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', fail);
      done();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    numRecords: records.length,
    close: async () => {
      dashboard.close();
      await new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      });
    },
  };
}

function readRunConfig(path: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    // The configuration only labels the page; a run folder without it still shows its metrics.
    return {};
  }
}
