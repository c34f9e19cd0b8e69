/**
 * `swarmtune tokenizer train` as a user runs it: a real process, real files, exit codes.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../shared/exit-codes.js';
import { loadBpeTokenizerDir } from '../../shared/tokenizer/bpe-tokenizer-json.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'swarmtune.mjs');

function swarmtune(args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('swarmtune tokenizer train', () => {
  it('writes a loadable tokenizer of the requested size, byte-identical on a second run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmtune-tok-cli-'));
    const input = join(dir, 'corpus.txt');
    writeFileSync(input, readFileSync(join(ROOT, 'README.md'), 'utf8'));
    const runs = ['a', 'b'].map((name) => {
      const { code, stdout, stderr } = swarmtune(['tokenizer', 'train', '--input', input, '--vocab-size', '500', '--output', join(dir, name)]);
      expect(code, stderr).toBe(0);
      return JSON.parse(stdout.trim().split('\n').at(-1) as string) as { vocab_size: number; tokenizer_json_sha256: string };
    });
    expect(runs[0].vocab_size).toBe(500);
    expect(runs[1].tokenizer_json_sha256).toBe(runs[0].tokenizer_json_sha256);
    expect(readFileSync(join(dir, 'b', 'tokenizer.json'))).toEqual(readFileSync(join(dir, 'a', 'tokenizer.json')));
    const tokenizer = await loadBpeTokenizerDir(join(dir, 'a'));
    expect(tokenizer.decode(tokenizer.encode('swarmtune: 日本 🙂'))).toBe('swarmtune: 日本 🙂');
  });

  it('refuses a vocabulary smaller than the byte alphabet with exit code 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmtune-tok-cli-'));
    writeFileSync(join(dir, 'c.txt'), 'some text');
    const { code, stderr } = swarmtune(['tokenizer', 'train', '--input', join(dir, 'c.txt'), '--vocab-size', '100', '--output', join(dir, 'o')]);
    expect(code).toBe(ExitCode.USAGE);
    expect(stderr).toContain('E_CONFIG_INVALID');
    expect(stderr).toContain('vocab size 100');
  });

  it('names a missing input file with exit code 3', () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmtune-tok-cli-'));
    const { code, stderr } = swarmtune(['tokenizer', 'train', '--input', join(dir, 'nope.txt'), '--output', join(dir, 'o')]);
    expect(code).toBe(ExitCode.INPUT_FILE);
    expect(stderr).toContain('nope.txt');
  });
});
