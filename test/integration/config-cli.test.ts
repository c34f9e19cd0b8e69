/**
 * The configuration side of the `swarmtune` command as a user meets it (help texts: cli-help.test.ts):
 * `--print-config` (YAML, secrets redacted, exit 0 without training), precedence of dedicated flags over
 * the environment, and `swarmtune config schema`. Real processes, run in parallel.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { compileConfig } from '../../shared/config.js';
import { configJsonSchemaText } from '../../shared/config/json-schema.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'swarmtune.mjs');

function swarmtune(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('swarmtune CLI: --print-config and the JSON Schema', () => {
  it('--print-config prints the resolved YAML (secrets redacted, flags over environment over file) and exits 0 without training', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmtune-print-'));
    const env = { SWARMTUNE_AUTH: 'token', SWARMTUNE_AUTH_TOKEN: 'a-secret-token-of-32-characters!', SWARMTUNE_WORKERS: '3', SWARMTUNE_LEARNING_RATE: '1e-4', SWARMTUNE_EVALUATION_STRATEGY: 'steps' };
    const [run, coordinator, simulate] = await Promise.all([
      swarmtune(['run', '--print-config', '--workers', '5', '-o', join(dir, 'out'), '--set', 'peft.r=4'], env),
      swarmtune(['coordinator', '--print-config', '--port', '7070'], env),
      swarmtune(['simulate', '--print-config', '--clients', '50', '--rounds', '3']),
    ]);
    expect(run.code).toBe(0);
    const config = YAML.parse(run.stdout) as Record<string, unknown>;
    expect(config).toMatchObject({ workers: 5, learning_rate: 1e-4, eval_strategy: 'steps', output_dir: join(dir, 'out'), auth: 'token', auth_token: null, peft: { r: 4 } });
    expect(run.stdout).not.toContain('a-secret-token');
    expect(run.stderr).toContain('"evaluation_strategy" (from environment variable SWARMTUNE_EVALUATION_STRATEGY) is deprecated; use "eval_strategy"');
    // Nothing trained or written.
    expect(() => readFileSync(join(dir, 'out', 'run_config.json'))).toThrow();
    // The printed YAML is a configuration that compiles to the same thing (once the secret is supplied again).
    expect(compileConfig({ ...config, auth_token: env.SWARMTUNE_AUTH_TOKEN }).workers).toBe(5);

    expect(coordinator.code).toBe(0);
    expect(YAML.parse(coordinator.stdout)).toMatchObject({ port: 7070, workers: 3 });
    expect(simulate.code).toBe(0);
    expect(YAML.parse(simulate.stdout)).toMatchObject({ mode: 'federated', num_clients: 50, num_rounds: 3 });
  });

  it('config schema writes the JSON Schema to stdout or --output', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmtune-schema-'));
    const [toStdout, toFile, refused] = await Promise.all([
      swarmtune(['config', 'schema']),
      swarmtune(['config', 'schema', '--output', join(dir, 'schema.json')]),
      swarmtune(['run', '--print-config', '--set', 'load_best_model_at_end=true', '--set', 'eval_strategy=steps']),
    ]);
    expect(toStdout.code).toBe(0);
    expect(toStdout.stdout).toBe(configJsonSchemaText());
    expect(toFile.code).toBe(0);
    expect(readFileSync(join(dir, 'schema.json'), 'utf8')).toBe(configJsonSchemaText());
    // The Trainer's refusal reaches the user as a configuration error (exit 2).
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--load_best_model_at_end requires the save and eval strategy to match');
  });
});
