/**
 * A worker process SIGKILLed in the middle of a data-parallel run: the coordinator sees the connection close,
 * hands the lost slice to the survivor, never hangs, and ends exactly where an uninterrupted run ends.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { runCoordinator } from '../../coordinator/run.js';
import { startLocalWorkers, type LocalWorkers } from '../../coordinator/local-workers.js';
import { dpConfig, makeDpFixture, maxRelativeDifference, referenceRun, type DpFixture } from '../helpers/dp-fixture.js';

let fixture: DpFixture;

beforeAll(async () => {
  fixture = await makeDpFixture();
});

describe('a worker process killed mid-run', () => {
  it('loses no step: its slices go to the survivor and the result equals an uninterrupted run', async () => {
    const config = dpConfig(fixture, 2, { max_steps: 12, backend: 'cpu' });
    let workers!: LocalWorkers;
    let killedAtStep = -1;
    const lines: string[] = [];
    const result = await runCoordinator(config, {
      log: (line) => lines.push(line),
      onListening: (url) => {
        workers = startLocalWorkers(2, url, ['--backend', 'cpu'], (line) => lines.push(line));
      },
      onMetrics: (record) => {
        if (record.event === 'train' && record.step === 3) {
          killedAtStep = 3;
          workers.processes[1].kill('SIGKILL');
        }
      },
    });
    await workers.stop();
    expect(killedAtStep).toBe(3);
    expect(workers.processes[1].signalCode).toBe('SIGKILL');
    expect(result.steps).toBe(12);
    expect(lines.some((line) => /worker w-\w+ lost: connection closed/.test(line))).toBe(true);
    const reference = await referenceRun(config);
    expect(maxRelativeDifference(result.params, reference.params)).toBeLessThan(1e-5);
  });
});
