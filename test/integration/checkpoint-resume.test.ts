/**
 * S13: a data-parallel run stopped mid-way (an `onMetrics` hook that throws stands for the coordinator dying:
 * the run aborts without any shutdown work) and resumed with `resume_from_checkpoint` ends with an adapter whose
 * bytes equal those of the uninterrupted run, over 20 kill points of one run in CI; partial and corrupt checkpoints
 * are skipped; `save_total_limit` prunes. (Real SIGKILLs of a coordinator process: checkpoint-sigkill.test.ts.)
 */
import { readFile, readdir, writeFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCoordinator, type RunResult } from '../../coordinator/run.js';
import type { MetricsRecord } from '../../coordinator/metrics.js';
import { compileConfig, type RunConfig } from '../../shared/config.js';
import { ErrorCode } from '../../shared/errors.js';
import { mulberry32 } from '../../shared/random.js';
import { connectWithRetry } from '../../worker/transport-ws.js';
import { runWorkerSession } from '../../worker/worker-runtime.js';
import { selectBackend, type BackendReport } from '../../worker/backend.js';
import { dpConfig, makeDpFixture, type DpFixture } from '../helpers/dp-fixture.js';
import { recordFigure } from '../helpers/reliability-figures.js';
import { REQUIRED_CHECKPOINT_FILES } from '../../coordinator/checkpoint.js';
import { listCheckpoints, verifyCheckpoint } from '../../coordinator/checkpoint-store.js';

let fixture: DpFixture;
let backend: BackendReport;
/** Bytes of the uninterrupted run's final adapter, by save strategy. */
const reference = new Map<string, Buffer>();

class Killed extends Error {}

/** Runs `config` with 2 in-process workers; `killAtStep` makes the run die right after logging that step. */
async function run(config: RunConfig, killAtStep?: number, warnings: string[] = []): Promise<RunResult> {
  const sessions: Promise<unknown>[] = [];
  try {
    return await runCoordinator(config, {
      log: (line) => line.startsWith('resume:') && warnings.push(line),
      onListening: (url) => {
        for (let i = 0; i < 2; i++) sessions.push(connectWithRetry(url).then((transport) => runWorkerSession({ transport, backend, log: () => undefined })));
      },
      onMetrics: (record: MetricsRecord) => {
        if (record.event === 'train' && record.step === killAtStep) throw new Killed(`killed after step ${killAtStep}`);
      },
    });
  } finally {
    await Promise.allSettled(sessions);
  }
}

function configOf(outputDir: string, overrides: Record<string, unknown> = {}): RunConfig {
  // 36 training examples, global batch 6: 6 steps an epoch, 12 in all.
  const base = dpConfig(fixture, 2, { max_steps: -1, num_train_epochs: 2, output_dir: outputDir, ...overrides });
  return compileConfig({ ...base });
}

async function adapterBytes(outputDir: string): Promise<Buffer> {
  return readFile(join(outputDir, 'adapter', 'adapter_model.safetensors'));
}

async function checkpointNames(outputDir: string): Promise<string[]> {
  return (await readdir(outputDir)).filter((n) => n.startsWith('checkpoint-')).sort((a, b) => Number(a.slice(11)) - Number(b.slice(11)));
}

beforeAll(async () => {
  fixture = await makeDpFixture();
  backend = await selectBackend('auto');
  for (const strategy of ['steps', 'epoch']) {
    const dir = join(fixture.dir, `reference-${strategy}`);
    await run(configOf(dir, { save_strategy: strategy, save_steps: 2 }));
    reference.set(strategy, await adapterBytes(dir));
  }
}, 60_000);

describe('checkpoints and bit-exact resume (data-parallel)', () => {
  // S13's drill: one seeded run of 24 steps killed at KILLS random points (distinct steps, in order) and resumed after
  // each kill from its newest checkpoint, until it finishes. Every kill leaves only loadable checkpoints, and the final
  // adapter equals the uninterrupted run byte for byte. Chaining the kills costs the 24 steps once, plus the steps redone
  // after each kill (at most save_steps = 2) and a coordinator start per kill: 20 kills in CI;
  // SWARMTUNE_RESUME_KILLS (at most 22) to change it.
  const KILLS = Math.min(22, Math.max(1, Number(process.env.SWARMTUNE_RESUME_KILLS ?? '') || 20));
  const TOTAL_STEPS = 24;
  const SAVE_STEPS = 2;
  const chainConfig = (dir: string, overrides: Record<string, unknown> = {}) => configOf(dir, { num_train_epochs: 4, save_strategy: 'steps', save_steps: SAVE_STEPS, ...overrides });

  it(`S13: killed at ${KILLS} random steps of one run and resumed after each: every checkpoint loadable, the final adapter equals the uninterrupted run byte for byte`, { timeout: 180_000 }, async () => {
    const random = mulberry32(13);
    // A kill before the first save (step 2) has nothing to resume from.
    const candidates = Array.from({ length: TOTAL_STEPS - SAVE_STEPS }, (_, i) => i + SAVE_STEPS + 1);
    for (let i = candidates.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [candidates[i], candidates[j]] = [candidates[j], candidates[i]];
    }
    const killSteps = candidates.slice(0, KILLS).sort((a, b) => a - b);

    const refDir = join(fixture.dir, 'chain-reference');
    const uninterrupted = await run(chainConfig(refDir));
    expect(uninterrupted.steps).toBe(TOTAL_STEPS);

    const dir = join(fixture.dir, 'chain-killed');
    let checkpointsVerified = 0;
    let redoneSteps = 0;
    let resumeFrom = 0;
    for (const [i, killAt] of killSteps.entries()) {
      await expect(run(chainConfig(dir, i === 0 ? {} : { resume_from_checkpoint: true }), killAt)).rejects.toBeInstanceOf(Killed);
      // Steps this segment trained (resumeFrom + 1 .. killAt) that the previous segment had trained already.
      redoneSteps += Math.max(0, (killSteps[i - 1] ?? 0) - resumeFrom);
      expect(await readdir(dir)).not.toContain('adapter');
      const checkpoints = await listCheckpoints(dir);
      for (const entry of checkpoints) {
        expect(await verifyCheckpoint(entry.dir, REQUIRED_CHECKPOINT_FILES), entry.dir).toEqual({ ok: true });
        checkpointsVerified++;
      }
      // The kill comes as step k is logged, before its own save: the newest checkpoint is the last save before k.
      resumeFrom = SAVE_STEPS * Math.floor((killAt - 1) / SAVE_STEPS);
      expect(checkpoints[0]?.number ?? 0).toBe(resumeFrom);
    }
    redoneSteps += killSteps[killSteps.length - 1] - resumeFrom;
    const resumed = await run(chainConfig(dir, { resume_from_checkpoint: true }));
    expect(resumed.steps).toBe(TOTAL_STEPS);
    expect(resumed.stepLosses).toHaveLength(TOTAL_STEPS - resumeFrom);
    expect((await adapterBytes(dir)).equals(await adapterBytes(refDir))).toBe(true);
    recordFigure('S13', `${KILLS} kill points (steps ${killSteps.join(',')}) of one 24-step run, resumed after each: final adapter byte-identical; ${checkpointsVerified} checkpoint checks, 0 unloadable; ${redoneSteps} steps redone (at most save_steps = 2 per kill)`);
  });

  it('S13: with save_strategy epoch, a run killed mid-epoch resumes from the epoch checkpoint and ends identical', async () => {
    const dir = join(fixture.dir, 'kill-epoch');
    await expect(run(configOf(dir, { save_strategy: 'epoch' }), 9)).rejects.toBeInstanceOf(Killed);
    expect(await checkpointNames(dir)).toEqual(['checkpoint-6']);
    const resumed = await run(configOf(dir, { save_strategy: 'epoch', resume_from_checkpoint: join(dir, 'checkpoint-6') }));
    expect(resumed.stepLosses).toHaveLength(6);
    expect((await adapterBytes(dir)).equals(reference.get('epoch')!)).toBe(true);
    expect(await checkpointNames(dir)).toEqual(['checkpoint-6', 'checkpoint-12']);
  });

  it('S13: a corrupt newest checkpoint and a partial one are skipped with a warning; save_total_limit prunes', async () => {
    const dir = join(fixture.dir, 'corrupt');
    const settings = { save_strategy: 'steps', save_steps: 2, save_total_limit: 3 };
    await expect(run(configOf(dir, settings), 9)).rejects.toBeInstanceOf(Killed);
    expect(await checkpointNames(dir)).toEqual(['checkpoint-4', 'checkpoint-6', 'checkpoint-8']);
    // The newest checkpoint loses one byte of optimizer state; a newer folder never got its checksums (a save cut short).
    const bin = join(dir, 'checkpoint-8', 'swarmtune_state.bin');
    const bytes = await readFile(bin);
    bytes[bytes.length - 3] ^= 0x40;
    await writeFile(bin, bytes);
    await mkdir(join(dir, 'checkpoint-10'));
    await writeFile(join(dir, 'checkpoint-10', 'adapter_model.safetensors'), 'partial');
    const warnings: string[] = [];
    const resumed = await run(configOf(dir, { ...settings, resume_from_checkpoint: true }), undefined, warnings);
    expect(resumed.stepLosses).toHaveLength(6);
    expect(warnings.some((w) => w.includes('checkpoint-10') && w.includes('checkpoint.sha256'))).toBe(true);
    expect(warnings.some((w) => w.includes('checkpoint-8') && w.includes('swarmtune_state.bin'))).toBe(true);
    expect((await adapterBytes(dir)).equals(reference.get('steps')!)).toBe(true);
    expect(await checkpointNames(dir)).toEqual(['checkpoint-8', 'checkpoint-10', 'checkpoint-12']);
  });

  it('refuses to resume a different training setup, and says when there is nothing to resume', async () => {
    const dir = join(fixture.dir, 'mismatch');
    await expect(run(configOf(dir, { save_strategy: 'steps', save_steps: 2 }), 3)).rejects.toBeInstanceOf(Killed);
    await expect(run(configOf(dir, { save_strategy: 'steps', save_steps: 2, learning_rate: 0.03, resume_from_checkpoint: true }))).rejects.toMatchObject({
      code: ErrorCode.CHECKPOINT_MISMATCH,
      message: expect.stringContaining('learning_rate'),
    });
    const empty = join(fixture.dir, 'empty');
    await rm(empty, { recursive: true, force: true });
    await expect(run(configOf(empty, { resume_from_checkpoint: true }))).rejects.toMatchObject({ code: ErrorCode.CHECKPOINT_NOT_FOUND });
  });
});

describe('checkpoints and resume (federated)', () => {
  const fedSettings = (dir: string, overrides: Record<string, unknown> = {}) =>
    configOf(dir, {
      mode: 'federated',
      num_rounds: 4,
      num_clients: 6,
      fraction_fit: 0.5,
      min_fit_clients: 2,
      min_available_clients: 2,
      strategy: 'fedadam',
      lora_aggregation: 'average',
      eval_every_rounds: 2,
      ...overrides,
    });

  it('S13: a run killed after round 2 resumes at round 3 with the server optimizer state, and ends byte-identical', async () => {
    const refDir = join(fixture.dir, 'fed-reference');
    await run(fedSettings(refDir));
    const killedDir = join(fixture.dir, 'fed-killed');
    // Killing as round 3 is logged: checkpoints of rounds 1 and 2 exist, round 3's not.
    const killed = await runKilledAtRound(fedSettings(killedDir), 3);
    expect(killed).toBeInstanceOf(Killed);
    expect(await checkpointNames(killedDir)).toEqual(['checkpoint-1', 'checkpoint-2']);
    const resumed = await run(fedSettings(killedDir, { resume_from_checkpoint: true }));
    expect(resumed.steps).toBe(4);
    expect((await adapterBytes(killedDir)).equals(await adapterBytes(refDir))).toBe(true);
  });
});

/** Like {@link run}, dying as federated round `round` is logged. */
async function runKilledAtRound(config: RunConfig, round: number): Promise<unknown> {
  const sessions: Promise<unknown>[] = [];
  try {
    await runCoordinator(config, {
      log: () => undefined,
      onListening: (url) => {
        for (let i = 0; i < 2; i++) sessions.push(connectWithRetry(url).then((transport) => runWorkerSession({ transport, backend, log: () => undefined })));
      },
      onMetrics: (record: MetricsRecord) => {
        if (record.event === 'round' && record.round === round) throw new Killed(`killed at round ${round}`);
      },
    });
    return undefined;
  } catch (err) {
    return err;
  } finally {
    await Promise.allSettled(sessions);
  }
}
