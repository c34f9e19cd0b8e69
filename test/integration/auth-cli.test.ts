/**
 * `swarmtune run` with authentication and TLS (RELIABILITY S15): the local worker processes get the credentials
 * through their environment (a signing key's id and secret here) and `--ca` with the coordinator's certificate, so
 * an authenticated `wss://` run works with nothing more than the config keys; the resolved configuration printed
 * and saved holds no secret.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../shared/exit-codes.js';
import { makeDpFixture } from '../helpers/dp-fixture.js';
import { makeTlsFixture } from '../helpers/tls-certs.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'swarmtune.mjs');

function swarmtune(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('swarmtune run with auth and TLS', () => {
  it('S15: hmac over wss:// — the local workers sign with the first key and trust the certificate; no secret is printed or saved', async () => {
    const fixture = await makeDpFixture();
    const tls = makeTlsFixture();
    const keysFile = join(fixture.dir, 'keys.json');
    const secret = 'local-worker-secret-0123456789';
    writeFileSync(keysFile, JSON.stringify({ local: secret }));
    const outputDir = join(fixture.dir, 'cli-run');
    const sets = {
      model: fixture.modelPath,
      dataset: `jsonl:${fixture.dataPath}`,
      eval_split_size: 10,
      max_length: 20,
      per_device_train_batch_size: 3,
      max_steps: 2,
      backend: 'cpu',
      auth: 'hmac',
      auth_keys_file: keysFile,
      tls_cert: tls.certPath,
      tls_key: tls.keyPath,
    };
    const args = ['run', '--workers', '2', '-o', outputDir, ...Object.entries(sets).flatMap(([k, v]) => ['--set', `${k}=${v}`])];
    const { code, stdout, stderr } = await swarmtune(args, {});
    expect(code, stderr).toBe(ExitCode.OK);
    expect(stderr).toContain('listening on wss://');
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!).steps).toBe(2);
    expect(stderr).not.toContain(secret);
    expect(readFileSync(join(outputDir, 'run_config.json'), 'utf8')).not.toContain(secret);
  });

  it('S15: a token run prints and saves the token as null', async () => {
    const outputDir = join((await makeDpFixture()).dir, 'missing-model-run');
    const { code, stderr } = await swarmtune(['run', '-o', outputDir, '--set', 'auth=token', '--set', 'model=/nonexistent/model.gguf'], { SWARMTUNE_AUTH_TOKEN: 'env-token-0123456789abcdef' });
    // The model is missing (exit 3), but the configuration was resolved and printed first.
    expect(code).toBe(ExitCode.INPUT_FILE);
    // The configuration is printed pretty (`"auth_token": null`) or, in JSON logs (non-terminal stderr), compact.
    expect(stderr).toMatch(/"auth_token": ?null/);
    expect(stderr).not.toContain('env-token-0123456789abcdef');
    expect(readFileSync(join(outputDir, 'run_config.json'), 'utf8')).not.toContain('env-token-0123456789abcdef');
  });
});
