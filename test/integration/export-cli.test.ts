/**
 * `swarmtune export` and `swarmtune generate` on Hugging Face directories, as real processes: the merged model
 * generates what the base model with the adapter generates.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../../bin/swarmtune.mjs', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../fixtures/hf-llama/', import.meta.url));

function swarmtune(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'swarmtune-export-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('swarmtune export', () => {
  it('writes adapter/ and merged/; generate with the merged model equals generate with base + adapter', () => {
    const out = join(tmp, 'out');
    const exported = swarmtune('export', '--model', join(FIXTURES, 'model'), '--adapter', join(FIXTURES, 'adapter'), '-o', out);
    expect(exported.stderr).toBe('');
    expect(exported.status).toBe(0);
    expect(existsSync(join(out, 'adapter', 'adapter_model.safetensors'))).toBe(true);
    expect(existsSync(join(out, 'merged', 'model.safetensors'))).toBe(true);
    const common = ['--prompt', 'the cat', '--max-new-tokens', '12', '--backend', 'wasm'];
    const withAdapter = swarmtune('generate', '--model', join(FIXTURES, 'model'), '--adapter', join(out, 'adapter'), ...common);
    const merged = swarmtune('generate', '--model', join(out, 'merged'), ...common);
    expect(withAdapter.status, withAdapter.stderr).toBe(0);
    expect(merged.status, merged.stderr).toBe(0);
    // The adapter changes these logits by up to 4 (test/unit/shared/model/load-hf.test.ts), so equal text is not by chance.
    expect(merged.stdout).toBe(withAdapter.stdout);
    expect(merged.stdout.length).toBeGreaterThan('the cat'.length);
  });

  it('exits 3 naming the file when the adapter is missing', () => {
    const result = swarmtune('export', '--model', join(FIXTURES, 'model'), '--adapter', join(tmp, 'nope'), '-o', join(tmp, 'x'));
    expect(result.status).toBe(3);
    expect(result.stderr).toContain(`${join(tmp, 'nope', 'adapter_config.json')}`);
  });
});
