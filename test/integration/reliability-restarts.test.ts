/**
 * A data-parallel run in which one worker process is SIGKILLed and a fresh `swarmtune worker` process started in
 * its place every 10 steps (real processes and signals): no step takes longer than `step_timeout_ms`, the run
 * finishes every step, and with `on_worker_loss: 'reassign'` its losses and weights equal the one-process
 * reference. The 50-step drill (4 kills, ~50 s on an idle 2-core machine); `SWARMTUNE_RESTART_STEPS=30` runs a
 * shorter one (2 kills) on a loaded machine.
 * Its cost: a replacement process needs ~10-20 s to start and join on a loaded 2-core machine, each kill waits for
 * the previous replacement, and the one-process reference costs as much compute as the run (50 steps: run 125 s +
 * reference 107 s at load 23; 50 s in all on an idle machine).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { runCoordinator } from '../../coordinator/run.js';
import { startLocalWorkers, type LocalWorkers } from '../../coordinator/local-workers.js';
import { dpConfig, makeDpFixture, maxRelativeDifference, referenceRun, type DpFixture } from '../helpers/dp-fixture.js';
import { recordFigure } from '../helpers/reliability-figures.js';

/** Environment variable setting the drill's step count (a multiple of 10). @default 50 */
const STEPS_ENV = 'SWARMTUNE_RESTART_STEPS';
const TOTAL_STEPS = Number(process.env[STEPS_ENV] ?? 50);
const KILL_EVERY_STEPS = 10;
const STEP_TIMEOUT_MS = 10_000;

let fixture: DpFixture;

beforeAll(async () => {
  fixture = await makeDpFixture();
});

describe('a worker killed and restarted every 10 steps', () => {
  it(`loses no step in ${TOTAL_STEPS}: every step within step_timeout_ms and the run equals the one-process reference`, { timeout: 60_000 + TOTAL_STEPS * 5_000 }, async () => {
    const config = dpConfig(fixture, 2, { max_steps: TOTAL_STEPS, per_device_train_batch_size: 8, backend: 'cpu', on_worker_loss: 'reassign', step_timeout_ms: STEP_TIMEOUT_MS });
    const groups: LocalWorkers[] = [];
    const killed: ChildProcess[] = [];
    const lines: string[] = [];
    let url = '';
    let victim: ChildProcess | undefined;
    let joined = 0;
    let nextKillStep = KILL_EVERY_STEPS;
    const killSteps: number[] = [];
    const stepEndsMs: number[] = [];
    const workersPerStep: number[] = [];
    const start = (count: number): LocalWorkers => {
      const group = startLocalWorkers(count, url, ['--backend', 'cpu'], (line) => lines.push(line));
      groups.push(group);
      return group;
    };
    const result = await runCoordinator(config, {
      log: (line) => lines.push(line),
      onListening: (listeningUrl) => {
        url = listeningUrl;
        victim = start(2).processes[1];
      },
      onMetrics: (record) => {
        if (record.event === 'worker_joined') joined++;
        if (record.event !== 'train') return;
        stepEndsMs.push(performance.now());
        workersPerStep.push(record.workers as number);
        const step = record.step as number;
        // Due every 10 steps; held back (rarely) until the last replacement has joined and trained a step, so that
        // every kill hits a worker in the middle of the run, never one still starting.
        if (step >= nextKillStep && step < TOTAL_STEPS && record.workers === 2) {
          victim!.kill('SIGKILL');
          killed.push(victim!);
          killSteps.push(step);
          nextKillStep += KILL_EVERY_STEPS;
          victim = start(1).processes[0];
        }
      },
    });
    await Promise.all(groups.map((g) => g.stop()));

    expect(result.steps).toBe(TOTAL_STEPS);
    expect(killed).toHaveLength(TOTAL_STEPS / KILL_EVERY_STEPS - 1);
    for (const child of killed) expect(child.signalCode).toBe('SIGKILL');
    const stepMs = stepEndsMs.slice(1).map((end, i) => end - stepEndsMs[i]);
    const maxStepMs = Math.max(...stepMs);
    expect(maxStepMs).toBeLessThan(STEP_TIMEOUT_MS);
    // Every replacement but the last joined (and trained: it was killed at a step with 2 workers).
    expect(joined).toBeGreaterThanOrEqual(2 + killed.length - 1);
    recordFigure('restarts', `${TOTAL_STEPS} steps, kills at steps ${killSteps.join(',')}: longest step ${maxStepMs.toFixed(0)} ms (step_timeout_ms ${STEP_TIMEOUT_MS}), ${joined} joins, workers per step ${workersPerStep.join('')}`);

    const reference = await referenceRun(config);
    expect(result.stepLosses).toHaveLength(TOTAL_STEPS);
    for (let i = 0; i < TOTAL_STEPS; i++) expect(Math.abs(result.stepLosses[i] - reference.losses[i])).toBeLessThan(1e-5 * Math.max(1, Math.abs(reference.losses[i])));
    expect(maxRelativeDifference(result.params, reference.params)).toBeLessThan(1e-5);
  });
});
