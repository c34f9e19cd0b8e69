/**
 * `swarmtune tokenizer train` as a user runs it: a real process, real files, exit codes.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
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
  // Byte-identical reruns are checked in-process (bpe-tokenizer-json.test.ts); each process start costs seconds here.
  it('writes a loadable tokenizer of the requested size and prints a summary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmtune-tok-cli-'));
    const input = join(dir, 'corpus.txt');
    writeFileSync(input, readFileSync(join(ROOT, 'README.md'), 'utf8'));
    const { code, stdout, stderr } = swarmtune(['tokenizer', 'train', '--input', input, '--vocab-size', '500', '--output', join(dir, 'tok')]);
    expect(code, stderr).toBe(0);
    const summary = JSON.parse(stdout.trim().split('\n').at(-1) as string) as { vocab_size: number; tokenizer_json_sha256: string };
    expect(summary.vocab_size).toBe(500);
    expect(summary.tokenizer_json_sha256).toBe(createHash('sha256').update(readFileSync(join(dir, 'tok', 'tokenizer.json'))).digest('hex'));
    const tokenizer = await loadBpeTokenizerDir(join(dir, 'tok'));
    expect(tokenizer.vocabSize).toBe(500);
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
