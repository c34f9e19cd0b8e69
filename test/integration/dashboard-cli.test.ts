/**
 * `swarmtune dashboard --run-dir DIR` as a real process: prints the URL, serves the run's records, stops on
 * SIGTERM with exit 0; a folder without metrics.jsonl is a usage error (exit 2) naming the file.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';

const BIN = join(process.cwd(), 'bin', 'swarmtune.mjs');

describe('swarmtune dashboard', () => {
  it('serves a finished run from its metrics.jsonl and exits 0 on SIGTERM', async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'swarmtune-dash-cli-'));
    const records = [
      { time: '2026-01-01T00:00:00.000Z', event: 'worker_joined', worker_id: 'w-a', backend: 'wasm' },
      { time: '2026-01-01T00:00:01.000Z', event: 'run_start', step: 0, total_steps: 2 },
      { time: '2026-01-01T00:00:02.000Z', event: 'train', step: 1, loss: 0.75 },
      { time: '2026-01-01T00:00:03.000Z', event: 'train', step: 2, loss: 0.5 },
      { time: '2026-01-01T00:00:04.000Z', event: 'run_end', step: 2, eval_loss: 0.4, eval_accuracy: 0.9 },
    ];
    writeFileSync(join(runDir, 'metrics.jsonl'), records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    writeFileSync(join(runDir, 'run_config.json'), JSON.stringify({ mode: 'data-parallel', workers: 1 }));
    const child = spawn(process.execPath, [BIN, 'dashboard', '--run-dir', runDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const lines = createInterface({ input: child.stdout! });
    const url = await new Promise<string>((resolve, reject) => {
      lines.on('line', (line) => {
        const match = /(http:\/\/127\.0\.0\.1:\d+\/)$/.exec(line);
        if (match) resolve(match[1]);
      });
      void exited.then((code) => reject(new Error(`dashboard exited (${code}) before printing its URL`)));
    });
    const history = (await (await fetch(`${url}api/history`)).json()) as { run: { source: string; mode: string }; records: unknown[]; workers: { id: string }[] };
    expect(history.run).toMatchObject({ source: 'finished', mode: 'data-parallel' });
    expect(history.records).toEqual(records);
    expect(history.workers.map((w) => w.id)).toEqual(['w-a']);
    expect((await fetch(url)).status).toBe(200);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('refuses a folder without metrics.jsonl with exit 2, naming the file', async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'swarmtune-dash-cli-'));
    const child = spawn(process.execPath, [BIN, 'dashboard', '--run-dir', runDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code).toBe(2);
    expect(stderr).toContain(join(runDir, 'metrics.jsonl'));
  });
});
