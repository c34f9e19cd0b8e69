/**
 * S11 with real worker processes: one started with SWARMTUNE_FAULT_NAN_RATE returns NaN updates at random; each is
 * refused at the gate, the third quarantines it (metrics.jsonl `worker_quarantined`), and no global adapter of any
 * round is ever non-finite.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCoordinator } from '../../coordinator/run.js';
import { startLocalWorkers, type LocalWorkers } from '../../coordinator/local-workers.js';
import { loadPeftAdapter } from '../../shared/formats/peft-adapter.js';
import { NAN_RATE_ENV } from '../../worker/fault-injection.js';
import { dpConfig, makeDpFixture, type DpFixture } from '../helpers/dp-fixture.js';
import { recordFigure } from '../helpers/reliability-figures.js';

let fixture: DpFixture;

beforeAll(async () => {
  fixture = await makeDpFixture();
});

function readMetrics(outputDir: string): Record<string, unknown>[] {
  return readFileSync(join(outputDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
}

function allFinite(tensors: Iterable<Float32Array>): boolean {
  for (const values of tensors) if (!values.every(Number.isFinite)) return false;
  return true;
}

describe('S11 quarantine in federated rounds', () => {
  it('S11: a federated worker process with SWARMTUNE_FAULT_NAN_RATE never makes a global adapter non-finite and is quarantined after 3 strikes', async () => {
    // Seed 3 at rate 0.5 poisons rounds 2, 3 and 4: quarantined in round 4, then 4 rounds without it.
    const numRounds = 8;
    const config = dpConfig(fixture, 3, {
      mode: 'federated',
      num_rounds: numRounds,
      fraction_fit: 1,
      min_fit_clients: 1,
      min_available_clients: 1,
      min_completion_rate: 0.5,
      round_timeout: 20,
      eval_every_rounds: 1,
    });
    let workers!: LocalWorkers;
    const result = await runCoordinator(config, {
      log: () => undefined,
      onListening: (url) => {
        workers = startLocalWorkers(3, url, [], () => undefined, (index): Record<string, string> => (index === 0 ? { [NAN_RATE_ENV]: '0.5,seed=3' } : {}));
      },
    });
    await workers.stop();
    const records = readMetrics(result.outputDir);
    const rounds = records.filter((r) => r.event === 'round');
    expect(rounds).toHaveLength(numRounds);
    const quarantined = records.filter((r) => r.event === 'worker_quarantined');
    expect(quarantined).toHaveLength(1);
    expect(quarantined[0]).toMatchObject({ strikes: 3, code: 'E_TENSOR_NON_FINITE' });
    const nonFiniteFailures = rounds.flatMap((r) => (r.failures as { code: string }[]).filter((f) => f.code === 'E_TENSOR_NON_FINITE'));
    expect(nonFiniteFailures).toHaveLength(3);
    // Every round's global adapter (a checkpoint per round) and the final one are finite.
    const checkpoints = readdirSync(result.outputDir).filter((name) => name.startsWith('checkpoint-'));
    expect(checkpoints.length).toBeGreaterThanOrEqual(numRounds);
    let tensorsChecked = 0;
    for (const name of checkpoints) {
      const adapter = await loadPeftAdapter(join(result.outputDir, name));
      const values = [...adapter.tensors.values()];
      tensorsChecked += values.length;
      expect(allFinite(values), name).toBe(true);
    }
    expect(allFinite(result.params.values())).toBe(true);
    expect(rounds.every((r) => r.aggregated === true)).toBe(true);
    recordFigure('S11', `federated, ${numRounds} rounds, NaN rate 0.5: quarantined after 3 strikes; 0 non-finite values in ${tensorsChecked} checkpointed tensors`);
  }, 90_000);

});
