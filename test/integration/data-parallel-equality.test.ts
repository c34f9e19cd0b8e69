/**
 * The proof that distribution is correct: synchronous data-parallel training with N workers over real
 * WebSockets on loopback, each with per-worker batch b, equals one in-process trainer with batch N·b.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { prepareRun } from '../../coordinator/run.js';
import { runWithInProcessWorkers } from '../helpers/in-process-workers.js';
import { selectBackend, type BackendReport } from '../../worker/backend.js';
import { dpConfig, makeDpFixture, maxRelativeDifference, referenceRun, type DpFixture } from '../helpers/dp-fixture.js';

let fixture: DpFixture;
let backend: BackendReport;

beforeAll(async () => {
  fixture = await makeDpFixture();
  backend = await selectBackend('auto');
});

describe('synchronous data-parallel over WebSockets', () => {
  it.each([1, 2, 3])('%i worker(s) with batch b equal one process with batch N·b after 5 steps', async (numWorkers) => {
    const config = dpConfig(fixture, numWorkers);
    const { result, outcomes } = await runWithInProcessWorkers(config, numWorkers, backend);
    expect(outcomes.map((o) => o.kind)).toEqual(Array(numWorkers).fill('stopped'));

    const reference = await referenceRun(config);
    expect(result.steps).toBe(5);
    expect(result.stepLosses).toHaveLength(5);
    result.stepLosses.forEach((loss, i) => expect(Math.abs(loss - reference.losses[i]) / reference.losses[i]).toBeLessThan(1e-5));
    // The weights must have moved, or equality would prove nothing.
    const { initial } = await prepareRun(config);
    expect(maxRelativeDifference(reference.params, initial)).toBeGreaterThan(1e-3);
    expect(maxRelativeDifference(result.params, reference.params)).toBeLessThan(1e-5);
  });
});
