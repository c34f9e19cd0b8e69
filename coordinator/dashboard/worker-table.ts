/**
 * The dashboard's worker table: one row per worker id, built from the run's metrics records (joins, losses,
 * quarantines, failed slices: all a finished run has) and, during a run, from the live sessions and their
 * connections (state, backend, compute throughput from the `stats` of their results, wire bytes, last frame).
 */
import type { Message } from '../../shared/protocol/messages.js';
import type { MetricsRecord } from '../metrics.js';

/** One row of the worker table, as the page receives it (JSON). */
export interface WorkerRow {
  readonly id: string;
  /** Compute backend the worker reported (`wasm`, `tensorflow`, `cpu`), or null before it said. */
  readonly backend: string | null;
  /** `joining`, `ready`, `lost`, `quarantined` (from the session while the run goes on; from the records after). */
  readonly state: string;
  /** Samples per second of the worker's own compute (its results' samples over their `computeMs`); null before one. */
  readonly samples_per_s: number | null;
  /** Bytes received from / sent to the worker's socket (TLS and WebSocket framing included); null when unknown. */
  readonly bytes_in: number | null;
  readonly bytes_out: number | null;
  /** When the coordinator last heard from the worker (ISO 8601), or null. */
  readonly last_seen: string | null;
  /** Failed slices and quarantines charged to this worker. */
  readonly failures: number;
  readonly peer: string | null;
}

/** What the table needs of a live worker session (coordinator/worker-session.ts `WorkerSession`). */
export interface LiveWorker {
  readonly id: string;
  readonly state: string;
  readonly backend?: { readonly name: string };
  readonly transport: object;
}

/** What the table needs of a worker connection (coordinator/transport-ws.ts `ServerConnection`). */
export interface WatchableConnection {
  onMessage(handler: (msg: Message) => void): () => void;
  /** Cumulative socket byte counts. */
  readonly wireBytes?: () => { readonly inBytes: number; readonly outBytes: number };
}

interface ConnectionStats {
  samples: number;
  computeMs: number;
  lastSeenMs: number | null;
  readonly wireBytes?: WatchableConnection['wireBytes'];
}

interface RecordRow {
  backend: string | null;
  state: string;
  failures: number;
  peer: string | null;
  lastSeen: string | null;
}

/** Message kinds whose `stats` and `computeMs` measure training work (data-parallel slices, federated local training). */
const WORK_KINDS: ReadonlySet<string> = new Set(['grad_result', 'update_result']);

/** Builds worker-table rows from metrics records and, while a run goes on, from its live sessions. */
export class WorkerTable {
  private readonly fromRecords = new Map<string, RecordRow>();
  private readonly connections = new WeakMap<object, ConnectionStats>();
  // Live figures outlast the session: a lost worker keeps its last throughput and byte counts in the table.
  private readonly lastLive = new Map<string, Pick<WorkerRow, 'samples_per_s' | 'bytes_in' | 'bytes_out' | 'last_seen'>>();

  /** Takes a metrics record into account (call for every record, in order). */
  observeRecord(record: MetricsRecord & { time?: string }): void {
    const id = typeof record.worker_id === 'string' ? record.worker_id : undefined;
    if (id === undefined) return;
    const row = this.fromRecords.get(id) ?? { backend: null, state: 'joining', failures: 0, peer: null, lastSeen: null };
    this.fromRecords.set(id, row);
    if (record.time !== undefined) row.lastSeen = record.time;
    if (record.event === 'worker_joined') {
      row.state = 'ready';
      if (typeof record.backend === 'string') row.backend = record.backend;
      if (typeof record.peer === 'string') row.peer = record.peer;
    } else if (record.event === 'worker_lost') {
      if (row.state !== 'quarantined') row.state = 'lost';
    } else if (record.event === 'worker_quarantined') {
      row.state = 'quarantined';
      row.failures += 1;
    } else if (record.event === 'slice_failed') {
      row.failures += 1;
    }
  }

  /**
   * Counts a connection's training results and remembers its byte counters. Register after the session's own
   * handler (the registry's `admit`), so the session stays the first handler of queued frames.
   */
  watchConnection(connection: WatchableConnection): void {
    const stats: ConnectionStats = { samples: 0, computeMs: 0, lastSeenMs: null, wireBytes: connection.wireBytes };
    this.connections.set(connection, stats);
    connection.onMessage((msg) => {
      stats.lastSeenMs = Date.now();
      if (!WORK_KINDS.has(msg.kind)) return;
      const work = msg as { stats?: { numSamples?: number }; computeMs?: number };
      if (typeof work.stats?.numSamples === 'number' && typeof work.computeMs === 'number') {
        stats.samples += work.stats.numSamples;
        stats.computeMs += work.computeMs;
      }
    });
  }

  /** The table now: every worker seen in the records, with live figures for the sessions given. */
  rows(live: readonly LiveWorker[] = []): WorkerRow[] {
    const liveById = new Map(live.map((w) => [w.id, w]));
    const ids = [...new Set([...this.fromRecords.keys(), ...liveById.keys()])];
    return ids.map((id) => {
      const recorded = this.fromRecords.get(id);
      const session = liveById.get(id);
      const conn = session ? this.connections.get(session.transport) : undefined;
      if (conn) {
        const bytes = conn.wireBytes?.();
        this.lastLive.set(id, {
          samples_per_s: conn.computeMs > 0 ? (conn.samples / conn.computeMs) * 1000 : null,
          bytes_in: bytes?.inBytes ?? null,
          bytes_out: bytes?.outBytes ?? null,
          last_seen: conn.lastSeenMs !== null ? new Date(conn.lastSeenMs).toISOString() : null,
        });
      }
      const figures = this.lastLive.get(id);
      const quarantined = recorded?.state === 'quarantined';
      return {
        id,
        backend: session?.backend?.name ?? recorded?.backend ?? null,
        state: quarantined ? 'quarantined' : (session?.state ?? recorded?.state ?? 'joining'),
        samples_per_s: figures?.samples_per_s ?? null,
        bytes_in: figures?.bytes_in ?? null,
        bytes_out: figures?.bytes_out ?? null,
        last_seen: figures?.last_seen ?? recorded?.lastSeen ?? null,
        failures: recorded?.failures ?? 0,
        peer: recorded?.peer ?? null,
      };
    });
  }
}
