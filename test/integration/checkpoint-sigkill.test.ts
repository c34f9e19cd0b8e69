/**
 * S13 with a real process: `swarmtune run` (the coordinator and its local worker processes, one process group) is
 * SIGKILLed in the middle of a data-parallel run, then started again with `--resume`; its final adapter is byte for
 * byte the adapter of an uninterrupted `swarmtune run`. Whatever the kill interrupted (a checkpoint being written
 * included) must not make the newest complete checkpoint unloadable.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { dpConfig, makeDpFixture, type DpFixture } from '../helpers/dp-fixture.js';

const CLI = fileURLToPath(new URL('../../bin/swarmtune.mjs', import.meta.url));
/** Steps after whose metrics record the process group is killed (seeded choices within the 12-step run). */
const KILL_STEPS = [3, 8];

let fixture: DpFixture;

beforeAll(async () => {
  fixture = await makeDpFixture();
});

/** Writes the run's configuration file: 12 steps, a checkpoint every 2 steps, metrics every step. */
function configFile(name: string): { path: string; outputDir: string } {
  const outputDir = join(fixture.dir, name);
  const config = dpConfig(fixture, 2, { max_steps: 12, save_strategy: 'steps', save_steps: 2, logging_steps: 1, output_dir: outputDir });
  const path = join(fixture.dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(config));
  return { path, outputDir };
}

/** Runs `swarmtune run` to its end; resolves with its exit code. */
function runToEnd(args: readonly string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'run', ...args], { stdio: 'ignore' });
    child.on('exit', (code) => resolve(code));
  });
}

/** Starts `swarmtune run` in its own process group and SIGKILLs the whole group once `step` is in metrics.jsonl. */
function runAndKill(args: readonly string[], outputDir: string, step: number): Promise<string | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'run', ...args], { stdio: 'ignore', detached: true });
    const metrics = join(outputDir, 'metrics.jsonl');
    const watch = setInterval(() => {
      if (!existsSync(metrics)) return;
      const logged = readFileSync(metrics, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as { event: string; step?: number });
      if (!logged.some((r) => r.event === 'train' && (r.step ?? 0) >= step)) return;
      clearInterval(watch);
      process.kill(-child.pid!, 'SIGKILL');
    }, 20);
    child.on('exit', (_code, signal) => {
      clearInterval(watch);
      resolve(signal);
    });
  });
}

describe('S13: coordinator process SIGKILLed, then --resume', () => {
  it('S13: swarmtune run killed with SIGKILL at seeded steps resumes to an adapter byte-identical to an uninterrupted run', { timeout: 300_000 }, async () => {
    const reference = configFile('uninterrupted');
    expect(await runToEnd(['--config', reference.path])).toBe(0);
    const expected = readFileSync(join(reference.outputDir, 'adapter', 'adapter_model.safetensors'));

    for (const step of KILL_STEPS) {
      const killed = configFile(`killed-at-${step}`);
      expect(await runAndKill(['--config', killed.path], killed.outputDir, step)).toBe('SIGKILL');
      expect(existsSync(join(killed.outputDir, 'adapter'))).toBe(false);
      expect(await runToEnd(['--config', killed.path, '--resume'])).toBe(0);
      // The second run continued from a checkpoint saved before the kill: it did not start over from step 0.
      const starts = readFileSync(join(killed.outputDir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>).filter((r) => r.event === 'run_start');
      expect(starts).toHaveLength(2);
      expect(starts[1].resumed_from).toMatch(/checkpoint-\d+$/);
      expect(starts[1].step as number).toBeGreaterThan(0);
      expect(starts[1].step as number).toBeLessThanOrEqual(step);
      const resumed = readFileSync(join(killed.outputDir, 'adapter', 'adapter_model.safetensors'));
      expect(resumed.equals(expected)).toBe(true);
    }
  });
});
