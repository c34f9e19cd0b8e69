import { describe, expect, it } from 'vitest';
import { WorkerTable } from '../../../../coordinator/dashboard/worker-table.js';
import type { Message } from '../../../../shared/protocol/messages.js';

/** A connection whose frames the test delivers by hand. */
function fakeConnection(bytes: { inBytes: number; outBytes: number }) {
  const handlers: ((msg: Message) => void)[] = [];
  return {
    onMessage(handler: (msg: Message) => void) {
      handlers.push(handler);
      return () => undefined;
    },
    wireBytes: () => bytes,
    deliver: (msg: unknown) => handlers.forEach((h) => h(msg as Message)),
  };
}

describe('WorkerTable', () => {
  it('builds rows from records: joins, failed slices, quarantine and loss', () => {
    const table = new WorkerTable();
    table.observeRecord({ event: 'worker_joined', worker_id: 'w-a', backend: 'wasm', peer: '127.0.0.1:1', time: '2026-01-01T00:00:00.000Z' });
    table.observeRecord({ event: 'worker_joined', worker_id: 'w-b', backend: 'cpu', time: '2026-01-01T00:00:01.000Z' });
    table.observeRecord({ event: 'slice_failed', worker_id: 'w-a', step: 3, time: '2026-01-01T00:00:02.000Z' });
    table.observeRecord({ event: 'worker_quarantined', worker_id: 'w-a', time: '2026-01-01T00:00:03.000Z' });
    table.observeRecord({ event: 'worker_lost', worker_id: 'w-a', time: '2026-01-01T00:00:04.000Z' });
    table.observeRecord({ event: 'train', step: 4, loss: 1 });
    const rows = table.rows();
    expect(rows.map((r) => [r.id, r.backend, r.state, r.failures, r.last_seen])).toEqual([
      ['w-a', 'wasm', 'quarantined', 2, '2026-01-01T00:00:04.000Z'],
      ['w-b', 'cpu', 'ready', 0, '2026-01-01T00:00:01.000Z'],
    ]);
    expect(rows[0].samples_per_s).toBeNull();
  });

  it('measures live sessions (compute throughput from result stats, wire bytes) and keeps the figures after the session goes', () => {
    const table = new WorkerTable();
    const connection = fakeConnection({ inBytes: 1000, outBytes: 2500 });
    table.watchConnection(connection);
    connection.deliver({ kind: 'grad_result', stats: { numSamples: 6 }, computeMs: 200 });
    connection.deliver({ kind: 'grad_result', stats: { numSamples: 4 }, computeMs: 300 });
    connection.deliver({ kind: 'pong' });
    const session = { id: 'w-a', state: 'ready', backend: { name: 'wasm' }, transport: connection };
    const live = table.rows([session]);
    expect(live).toHaveLength(1);
    expect(live[0]).toMatchObject({ id: 'w-a', backend: 'wasm', state: 'ready', samples_per_s: 20, bytes_in: 1000, bytes_out: 2500 });
    expect(live[0].last_seen).not.toBeNull();
    table.observeRecord({ event: 'worker_lost', worker_id: 'w-a' });
    expect(table.rows([])[0]).toMatchObject({ state: 'lost', samples_per_s: 20, bytes_in: 1000, bytes_out: 2500 });
  });
});
