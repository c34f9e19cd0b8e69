/**
 * S8 on live sockets during a real run: while two honest workers join a data-parallel run, attackers connect and
 * each sends one fuzzed frame (truncated, trailing bytes, deep nesting, unknown extension, wrong type, random
 * mutations of the golden frames, random bytes). Every attacker is closed with the code the wire gate gives its
 * frame (1007 undecodable, 1008 policy, 4001 version), every refusal is counted by reason in the coordinator's
 * `rejected_messages_total` (read back from `/metrics`), nothing throws, and the honest workers finish the run.
 *
 * Size: SWARMTUNE_LIVE_FUZZ_FRAMES (default 300) frames, 16 attackers at a time.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { runCoordinator } from '../../coordinator/run.js';
import { SUBPROTOCOL } from '../../shared/protocol/messages.js';
import { selectBackend, type BackendReport } from '../../worker/backend.js';
import { connectWithRetry } from '../../worker/transport-ws.js';
import { runWorkerSession, type WorkerOutcome } from '../../worker/worker-runtime.js';
import { dpConfig, makeDpFixture, type DpFixture } from '../helpers/dp-fixture.js';
import { gateVerdict, hostileFrame } from '../helpers/fuzz-frames.js';
import { scrapeMetrics, sumOf, type PromSample } from '../helpers/prometheus-text.js';
import { recordFigure } from '../helpers/reliability-figures.js';

const NUM_FRAMES = Math.max(1, Number(process.env.SWARMTUNE_LIVE_FUZZ_FRAMES ?? '') || 300);
const CONCURRENCY = 16;

let fixture: DpFixture;
let backend: BackendReport;
beforeAll(async () => {
  fixture = await makeDpFixture();
  backend = await selectBackend('auto');
});

/** Opens a raw socket, sends `frame`, resolves with the close code and the time from send to close. */
function attack(url: string, frame: Uint8Array): Promise<{ code: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, SUBPROTOCOL, { perMessageDeflate: false, maxPayload: 1 << 20 });
    let sentAt = 0;
    ws.once('open', () => {
      sentAt = performance.now();
      ws.send(frame);
    });
    ws.once('close', (code) => resolve({ code, ms: performance.now() - sentAt }));
    ws.once('error', reject);
  });
}

describe('fuzzed frames on live sockets during a run', () => {
  it('S8: every fuzzed frame closes its socket 1007/1008, is counted in rejected_messages_total, and the run completes', { timeout: 120_000 }, async () => {
    // Only frames the gate refuses: a frame that happens to be a valid message is session logic (covered elsewhere).
    const frames = fc.sample(hostileFrame.filter((bytes) => gateVerdict(bytes).refused), { numRuns: NUM_FRAMES, seed: 8 });
    const expected = new Map<string, number>();
    for (const frame of frames) {
      const verdict = gateVerdict(frame);
      if (verdict.refused) expected.set(`${verdict.code} ${verdict.closeCode}`, (expected.get(`${verdict.code} ${verdict.closeCode}`) ?? 0) + 1);
    }
    const config = dpConfig(fixture, 2, { max_steps: 4, heartbeat_interval_ms: 2_000, heartbeat_timeout_ms: 10_000 });
    const workers: Promise<WorkerOutcome>[] = [];
    const mismatches: string[] = [];
    const times: number[] = [];
    let before: PromSample[] = [];
    let after: PromSample[] = [];
    const result = await runCoordinator(config, {
      log: () => undefined,
      onListening: async (url) => {
        const metricsUrl = `${url.replace(/^ws/, 'http')}/metrics`;
        before = await scrapeMetrics(metricsUrl);
        // The honest workers join while the attack runs.
        for (let i = 0; i < 2; i++) workers.push(connectWithRetry(url).then((transport) => runWorkerSession({ transport, backend, log: () => undefined })));
        let next = 0;
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (next < frames.length) {
              const frame = frames[next++];
              const verdict = gateVerdict(frame);
              const { code, ms } = await attack(url, frame);
              times.push(ms);
              if (!verdict.refused || code !== verdict.closeCode) mismatches.push(`${Buffer.from(frame.subarray(0, 32)).toString('hex')}: closed ${code}, expected ${JSON.stringify(verdict)}`);
            }
          }),
        );
        after = await scrapeMetrics(metricsUrl);
      },
    });
    const outcomes = await Promise.all(workers);

    expect(mismatches).toEqual([]);
    expect(sumOf(before, 'rejected_messages_total')).toBe(0);
    expect(sumOf(after, 'rejected_messages_total')).toBe(frames.length);
    for (const [key, count] of expected) {
      const [reason, closeCode] = key.split(' ');
      expect(sumOf(after, 'rejected_messages_total', { reason, close_code: closeCode }), key).toBe(count);
    }
    expect(result.steps).toBe(4);
    expect(result.stepLosses.every(Number.isFinite)).toBe(true);
    expect(outcomes.map((o) => o.kind)).toEqual(['stopped', 'stopped']);

    const sorted = [...times].sort((a, b) => a - b);
    const p = (q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * q) - 1)];
    const byCode = [...expected].map(([key, n]) => `${key.replace(' ', '/')}: ${n}`).join(', ');
    recordFigure('S8', `live sockets: ${frames.length} fuzzed frames during a run, 100% closed as the gate decides (${byCode}); send-to-close median ${p(0.5).toFixed(1)} ms, p99 ${p(0.99).toFixed(1)} ms; run completed ${result.steps}/4 steps`);
    console.log(`S8 live fuzz: ${frames.length} frames; send-to-close median ${p(0.5).toFixed(1)} ms p99 ${p(0.99).toFixed(1)} ms; ${byCode}`);
  });
});
