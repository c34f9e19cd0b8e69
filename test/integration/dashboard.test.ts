/**
 * The dashboard in a real browser (Debian's chromium via playwright-core): during a real 2-worker data-parallel run
 * the page, opened before the workers join, shows both workers and chart points whose values are the losses in
 * metrics.jsonl, all received live over /events; after the run, `serveRunDashboard` shows the same from the file.
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCoordinator, type RunResult } from '../../coordinator/run.js';
import { serveRunDashboard } from '../../coordinator/dashboard/after-run.js';
import { dashboardUrlOf } from '../../coordinator/dashboard/live-dashboard.js';
import { selectBackend, type BackendReport } from '../../worker/backend.js';
import { connectWithRetry } from '../../worker/transport-ws.js';
import { runWorkerSession, type WorkerOutcome } from '../../worker/worker-runtime.js';
import { launchChromium, type TestBrowser } from '../helpers/browser.js';
import { dpConfig, makeDpFixture, type DpFixture } from '../helpers/dp-fixture.js';

const ARTIFACTS = join(process.cwd(), 'test-artifacts');

let fixture: DpFixture;
let backend: BackendReport;
let browser: TestBrowser;
let run: RunResult | undefined;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  [fixture, backend, browser] = await Promise.all([makeDpFixture(), selectBackend('auto'), launchChromium()]);
});

afterAll(async () => {
  await browser?.close();
});

type Row = Record<string, unknown>;

function readMetrics(outputDir: string): Row[] {
  return readFileSync(join(outputDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Row);
}

/** What the page shows. */
interface PageView {
  status: string;
  liveRecords: number;
  historySnapshots: number;
  numRecords: number;
  /** The loss and eval charts' data: uPlot's own columns ([x, y1, y2...]). */
  loss: (number | null)[][];
  evalData: (number | null)[][];
  /** The worker table's rows: `data-worker-id` and the cells' text. */
  rows: { id: string; cells: string[] }[];
}

// Page-side code is passed as source text: the test's own TypeScript has no DOM types (lib ES2023 only).
const PAGE_VIEW = `(() => {
  const d = window.__dashboard;
  const rows = [...document.querySelectorAll('#workers tbody tr[data-worker-id]')].map((tr) => ({
    id: tr.dataset.workerId,
    cells: [...tr.querySelectorAll('td')].map((td) => td.textContent.trim()),
  }));
  return {
    status: d.state.status,
    liveRecords: d.state.liveRecords,
    historySnapshots: d.state.historySnapshots,
    numRecords: d.state.records.length,
    loss: d.charts.loss ? d.charts.loss.data.map((col) => [...col]) : [],
    evalData: d.charts.eval ? d.charts.eval.data.map((col) => [...col]) : [],
    rows,
  };
})()`;
const statusIs = (status: string) => `window.__dashboard.state.status === ${JSON.stringify(status)}`;
const WORKER_ROWS_ARE_TWO = `document.querySelectorAll('#workers tbody tr[data-worker-id]').length === 2`;

async function pageView(): Promise<PageView> {
  return browser.page.evaluate<PageView>(PAGE_VIEW);
}

describe('dashboard in chromium', () => {
  it('a missing chromium fails with how to install it', async () => {
    await expect(launchChromium('/nonexistent/chromium')).rejects.toThrow(/apt-get install -y chromium/);
  });

  it('during a 2-worker run: both workers in the table, loss points equal to metrics.jsonl, all received live', async () => {
    const config = dpConfig(fixture, 2, { max_steps: 8, eval_strategy: 'steps', eval_steps: 4 });
    const lines: string[] = [];
    const workers: Promise<WorkerOutcome>[] = [];
    let sawBothWorkersLive: Promise<unknown> | undefined;
    run = await runCoordinator(config, {
      log: (line) => lines.push(line),
      onListening: async (url) => {
        // The page connects before any worker joins, so every record reaches it as a live event.
        await browser.page.goto(dashboardUrlOf(url));
        await browser.page.waitForFunction(statusIs('live'));
        sawBothWorkersLive = browser.page.waitForFunction(WORKER_ROWS_ARE_TWO, undefined, { timeout: 60_000 });
        for (let i = 0; i < 2; i++) workers.push(connectWithRetry(url).then((transport) => runWorkerSession({ transport, backend, log: () => undefined })));
      },
    });
    await Promise.all(workers);
    await sawBothWorkersLive;
    expect(lines.some((line) => /^dashboard: http:\/\/127\.0\.0\.1:\d+\/$/.test(line))).toBe(true);

    await browser.page.waitForFunction(statusIs('finished'));
    const records = readMetrics(run.outputDir);
    const train = records.filter((r) => r.event === 'train');
    const evals = records.filter((r) => r.event === 'eval');
    expect(train.length).toBe(8);
    const view = await pageView();
    expect(view.historySnapshots).toBe(1);
    expect(view.liveRecords).toBe(records.length);
    expect(view.numRecords).toBe(records.length);
    expect(view.loss[0]).toEqual(train.map((r) => r.step));
    expect(view.loss[1]).toEqual(train.map((r) => r.loss));
    expect(view.evalData[1]).toEqual(evals.map((r) => r.eval_loss));
    expect(view.evalData[2]).toEqual(evals.map((r) => r.eval_accuracy));
    const joined = records.filter((r) => r.event === 'worker_joined').map((r) => r.worker_id);
    expect(view.rows.map((r) => r.id).sort()).toEqual([...joined].sort());
    for (const row of view.rows) {
      expect(row.cells[1]).toBe(backend.name);
      // samples/s, bytes in and bytes out were measured on the live connections.
      expect(row.cells[3]).toMatch(/^\d/);
      expect(row.cells[4]).toMatch(/^\d/);
      expect(row.cells[5]).toMatch(/^\d/);
    }
    expect(browser.pageErrors.filter((e) => e.startsWith('page error'))).toEqual([]);
    await browser.page.screenshot({ path: join(ARTIFACTS, 'dashboard.png') });
  });

  it('after the run: `serveRunDashboard` shows the same points and workers from metrics.jsonl', async () => {
    expect(run).toBeDefined();
    const served = await serveRunDashboard({ runDir: run!.outputDir });
    try {
      await browser.page.goto(served.url);
      await browser.page.waitForFunction(statusIs('finished'));
      await browser.page.waitForFunction(WORKER_ROWS_ARE_TWO);
      const records = readMetrics(run!.outputDir);
      const train = records.filter((r) => r.event === 'train');
      const view = await pageView();
      expect(view.historySnapshots).toBe(1);
      expect(view.liveRecords).toBe(0);
      expect(view.numRecords).toBe(records.length);
      expect(view.loss[1]).toEqual(train.map((r) => r.loss));
      expect(view.rows.map((r) => r.id).sort()).toEqual(records.filter((r) => r.event === 'worker_joined').map((r) => r.worker_id).sort());
      expect(browser.pageErrors.filter((e) => e.startsWith('page error'))).toEqual([]);
      await browser.page.screenshot({ path: join(ARTIFACTS, 'dashboard-after-run.png') });
    } finally {
      await served.close();
    }
  });
});
