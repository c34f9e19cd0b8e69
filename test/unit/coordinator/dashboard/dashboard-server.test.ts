import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createDashboard, type Dashboard } from '../../../../coordinator/dashboard/dashboard-server.js';
import { readMetricsFile } from '../../../../coordinator/dashboard/after-run.js';
import { ErrorCode } from '../../../../shared/errors.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function serve(dashboard: Dashboard): Promise<string> {
  const server: Server = createServer((req, res) => {
    if (dashboard.handleHttpRequest(req, res)) return;
    res.writeHead(426);
    res.end();
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  cleanups.push(async () => {
    dashboard.close();
    await new Promise<void>((done) => {
      server.close(() => done());
      server.closeAllConnections();
    });
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Reads server-sent events from `/events` until `count` have arrived. */
async function readEvents(url: string, count: number, afterOpen?: () => void): Promise<{ event: string; data: unknown }[]> {
  const controller = new AbortController();
  const response = await fetch(`${url}/events`, { signal: controller.signal });
  expect(response.headers.get('content-type')).toContain('text/event-stream');
  afterOpen?.();
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const events: { event: string; data: unknown }[] = [];
  let buffer = '';
  while (events.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0 && events.length < count) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event && data) events.push({ event, data: JSON.parse(data) });
    }
  }
  controller.abort();
  return events;
}

describe('dashboard routes', () => {
  it('serves the page at / and /dashboard, its script, and uPlot from node_modules; other paths fall through', async () => {
    const url = await serve(createDashboard({ run: { source: 'live', outputDir: '/tmp/x' }, workerRows: () => [] }));
    for (const path of ['/', '/dashboard']) {
      const page = await fetch(`${url}${path}`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toContain('text/html');
      expect(await page.text()).toContain('/dashboard/static/dashboard.js');
    }
    expect((await fetch(`${url}/dashboard/static/dashboard.js`)).headers.get('content-type')).toContain('javascript');
    const uplot = await fetch(`${url}/dashboard/vendor/uPlot.iife.min.js`);
    expect(uplot.status).toBe(200);
    expect(await uplot.text()).toContain('uPlot');
    expect((await fetch(`${url}/dashboard/static/../../run.ts`)).status).toBe(426);
    expect((await fetch(`${url}/metrics`)).status).toBe(426);
    expect((await fetch(url, { method: 'POST' })).status).toBe(426);
  });

  it('a new client gets the history first, then each record live with the worker table after steps and worker events; a reconnecting one gets the whole history again', async () => {
    const rows = [{ id: 'w-1', backend: 'wasm', state: 'ready', samples_per_s: 3, bytes_in: 10, bytes_out: 20, last_seen: null, failures: 0, peer: null }];
    const dashboard = createDashboard({ run: { source: 'live', outputDir: '/tmp/x' }, workerRows: () => rows, snapshotIntervalMs: 60_000 });
    const url = await serve(dashboard);
    dashboard.publish({ event: 'run_start', step: 0, time: 't0' });
    const first = await readEvents(url, 5, () => {
      dashboard.publish({ event: 'train', step: 1, loss: 0.5, time: 't1' });
      dashboard.publish({ event: 'worker_joined', worker_id: 'w-1', time: 't2' });
    });
    expect(first[0].event).toBe('history');
    expect((first[0].data as { records: unknown[] }).records).toEqual([{ event: 'run_start', step: 0, time: 't0' }]);
    expect((first[0].data as { workers: unknown[] }).workers).toEqual(rows);
    // A step's record and a worker's record are each followed by the worker table.
    expect(first.slice(1).map((e) => e.event)).toEqual(['record', 'workers', 'record', 'workers']);
    expect(first[1].data).toEqual({ event: 'train', step: 1, loss: 0.5, time: 't1' });
    expect(first[2].data).toEqual(rows);

    const again = await readEvents(url, 1);
    expect((again[0].data as { records: { event: string }[] }).records.map((r) => r.event)).toEqual(['run_start', 'train', 'worker_joined']);
    const history = (await (await fetch(`${url}/api/history`)).json()) as { run: { source: string }; records: unknown[] };
    expect(history.run.source).toBe('live');
    expect(history.records).toHaveLength(3);
  });
});

describe('readMetricsFile', () => {
  it('reads records, skips a torn last line, and names a bad line or a missing file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmtune-dash-'));
    const path = join(dir, 'metrics.jsonl');
    writeFileSync(path, '{"event":"run_start","step":0}\n{"event":"train","step":1,"loss":0.5}\n{"event":"tra');
    expect(readMetricsFile(path).map((r) => r.event)).toEqual(['run_start', 'train']);
    writeFileSync(path, '{"event":"run_start"}\n[1,2]\n{"event":"train"}\n');
    expect(() => readMetricsFile(path)).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID, message: expect.stringContaining('metrics.jsonl:2') }));
    expect(() => readMetricsFile(join(dir, 'nope.jsonl'))).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
  });
});

describe('dashboardUrlOf', () => {
  it('turns the WebSocket URL into the page URL; a wildcard host into loopback', async () => {
    const { dashboardUrlOf } = await import('../../../../coordinator/dashboard/live-dashboard.js');
    expect(dashboardUrlOf('ws://127.0.0.1:7070')).toBe('http://127.0.0.1:7070/');
    expect(dashboardUrlOf('wss://coord.example:443')).toBe('https://coord.example:443/');
    expect(dashboardUrlOf('ws://0.0.0.0:7070')).toBe('http://127.0.0.1:7070/');
    expect(dashboardUrlOf('ws://[::]:7070')).toBe('http://127.0.0.1:7070/');
    expect(dashboardUrlOf('ws://[::1]:7070')).toBe('http://[::1]:7070/');
  });
});
