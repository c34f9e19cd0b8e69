/**
 * A federated round with one client's process SIGKILLed on receiving its round and one client three times slower
 * than `round_timeout` (real worker processes, faults injected through their environment): the round ends at its
 * deadline with the survivors, the straggler's late update is dropped as stale, and the straggler trains again in
 * the next round.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCoordinator } from '../../coordinator/run.js';
import { startLocalWorkers, type LocalWorkers } from '../../coordinator/local-workers.js';
import { CRASH_FIT_ENV, SLOW_FIT_ENV } from '../../worker/fault-injection.js';
import { dpConfig, makeDpFixture, type DpFixture } from '../helpers/dp-fixture.js';

let fixture: DpFixture;

beforeAll(async () => {
  fixture = await makeDpFixture();
});

const ROUND_TIMEOUT_S = 5;
/** The faults hit round 3: rounds 1 and 2 warm the workers up (first-call kernel setup is slow on a loaded box). */
const FAULTY_ROUND = 3;
/**
 * Enough rounds after the faulty one, each made longer by several local epochs, for the straggler's late update
 * (3 × the timeout) to arrive while the run goes on even on an idle machine.
 */
const NUM_ROUNDS = 60;
const LOCAL_EPOCHS = 4;

describe('federated faults in one round', () => {
  it('S5: finishes at the deadline (one client also SIGKILLed) with the survivors, drops the straggler’s late update, and takes it back next round', { timeout: 300_000 }, async () => {
    const config = dpConfig(fixture, 4, {
      mode: 'federated',
      num_rounds: NUM_ROUNDS,
      fraction_fit: 1,
      min_fit_clients: 2,
      min_available_clients: 2,
      min_completion_rate: 0.5,
      round_timeout: ROUND_TIMEOUT_S,
      local_epochs: LOCAL_EPOCHS,
      eval_every_rounds: 1,
    });
    let workers!: LocalWorkers;
    const lines: string[] = [];
    const result = await runCoordinator(config, {
      log: (line) => lines.push(line),
      onListening: (url) => {
        workers = startLocalWorkers(4, url, [], (line) => lines.push(line), (index): Record<string, string> =>
          index === 1 ? { [CRASH_FIT_ENV]: `round=${FAULTY_ROUND}` } : index === 2 ? { [SLOW_FIT_ENV]: `round=${FAULTY_ROUND},delay_ms=${3 * ROUND_TIMEOUT_S * 1000}` } : {},
        );
      },
    });
    await workers.stop();
    expect(workers.processes[1].signalCode).toBe('SIGKILL');
    const records = readFileSync(join(result.outputDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const rounds = records.filter((r) => r.event === 'round');
    expect(rounds).toHaveLength(NUM_ROUNDS);
    expect(rounds[FAULTY_ROUND - 2].completed).toBe(4);

    const faulty = rounds[FAULTY_ROUND - 1];
    expect(faulty.sampled).toBe(4);
    expect(faulty.completed).toBe(2);
    expect(faulty.aggregated).toBe(true);
    const codes = (faulty.failures as { client: string; code: string }[]).map((f) => f.code).sort();
    expect(codes).toEqual(['E_TIMEOUT', 'E_WORKER_LOST']);
    // The round waited for the straggler until the deadline and not (much) longer.
    expect(faulty.round_ms).toBeGreaterThanOrEqual(ROUND_TIMEOUT_S * 1000 - 50);
    expect(faulty.round_ms).toBeLessThan(ROUND_TIMEOUT_S * 1000 + 3000);

    const straggler = (faulty.failures as { client: string; code: string }[]).find((f) => f.code === 'E_TIMEOUT')!.client;
    const next = rounds[FAULTY_ROUND];
    expect(next.completed_clients).toContain(straggler);
    expect(next.completed).toBe(3);
    // The late update arrived during a later round and was dropped as stale, never aggregated.
    const faultyStartMs = Date.parse(faulty.time) - faulty.round_ms;
    const lastRoundEndMs = Date.parse(rounds.at(-1).time);
    expect(lastRoundEndMs - faultyStartMs).toBeGreaterThan(3 * ROUND_TIMEOUT_S * 1000 + 1000);
    expect(rounds.slice(FAULTY_ROUND).reduce((n, r) => n + r.stale, 0)).toBe(1);
    expect(lines.some((line) => line.includes(`holding back the fit result of round ${FAULTY_ROUND}`))).toBe(true);
  });
});
