/**
 * A worker process whose every step blocks its event loop longer than the pong deadline (fault hook
 * `SWARMTUNE_FAULT_BLOCK_MS`, worker/fault-injection.ts) under RELIABILITY.md's 200/200 ms heartbeat timers
 * (config keys `heartbeat_interval_ms`, `heartbeat_timeout_ms`). The coordinator must not take the busy worker
 * for dead (a request to it is outstanding), the worker must not take the coordinator for dead (its watchdog is
 * stretched by `welcome` and reads queued pings before judging), and the run ends where the reference ends.
 *
 * RELIABILITY.md: S3 (the other half: a heartbeat that cuts dead links must not cut busy ones).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { runCoordinator } from '../../coordinator/run.js';
import { startLocalWorkers, type LocalWorkers } from '../../coordinator/local-workers.js';
import { BLOCK_MS_ENV } from '../../worker/fault-injection.js';
import { dpConfig, makeDpFixture, maxRelativeDifference, referenceRun, type DpFixture } from '../helpers/dp-fixture.js';
import { recordFigure } from '../helpers/reliability-figures.js';

const HEARTBEAT_MS = 200;
/** Each step of the busy worker blocks 5 pong deadlines: without busy-awareness it is cut at step 0. */
const BLOCK_MS = 1_000;
const STEPS = 4;

let fixture: DpFixture;

beforeAll(async () => {
  fixture = await makeDpFixture();
});

describe('a worker whose steps block its event loop', () => {
  it(`S3: a worker blocked ${BLOCK_MS} ms per step with 200/200 ms heartbeat timers is not dropped and the run equals the reference`, async () => {
    const config = dpConfig(fixture, 2, { max_steps: STEPS, backend: 'cpu', heartbeat_interval_ms: HEARTBEAT_MS, heartbeat_timeout_ms: HEARTBEAT_MS });
    let workers!: LocalWorkers;
    const lines: string[] = [];
    const events: string[] = [];
    const stepAt: number[] = [];
    const result = await runCoordinator(config, {
      log: (line) => lines.push(line),
      onListening: (url) => {
        workers = startLocalWorkers(2, url, ['--backend', 'cpu'], (line) => lines.push(line), (index): Record<string, string> => (index === 1 ? { [BLOCK_MS_ENV]: String(BLOCK_MS) } : {}));
      },
      onMetrics: (record) => {
        events.push(String(record.event));
        if (record.event === 'train') stepAt.push(performance.now());
      },
    });
    await workers.stop();
    const blocks = lines.filter((line) => /\[worker 1\] .*fault injection: blocking the event loop/.test(line));
    expect(blocks.length).toBeGreaterThanOrEqual(STEPS);
    expect(lines.filter((line) => /lost|heartbeat timeout/i.test(line))).toEqual([]);
    expect(events).not.toContain('worker_lost');
    expect(events).not.toContain('slice_failed');
    expect(result.steps).toBe(STEPS);
    // Every step waited for the blocked worker: the block really spanned several pong deadlines.
    const gapsMs = stepAt.slice(1).map((t, i) => t - stepAt[i]);
    for (const gap of gapsMs) expect(gap).toBeGreaterThanOrEqual(BLOCK_MS - 50);
    const reference = await referenceRun(config);
    const diff = maxRelativeDifference(result.params, reference.params);
    expect(diff).toBeLessThan(1e-5);
    recordFigure('S3', `busy worker blocked ${BLOCK_MS} ms/step under ${HEARTBEAT_MS}/${HEARTBEAT_MS} ms timers: 0 lost, ${result.steps} steps, min step ${Math.round(Math.min(...gapsMs))} ms, max rel diff ${diff.toExponential(1)}`);
  });
});
