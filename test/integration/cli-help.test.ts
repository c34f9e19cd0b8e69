/**
 * `swarmtune <subcommand> --help` as a user reads it: a description and examples on every subcommand. Real
 * processes, run in parallel.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'swarmtune.mjs');

function swarmtune(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('swarmtune CLI: help', () => {
  it('every subcommand has a description and examples in --help', { timeout: 60_000 }, async () => {
    const commands = [['run'], ['coordinator'], ['simulate'], ['worker'], ['generate'], ['export'], ['tokenizer', 'train'], ['config', 'schema']];
    const outputs = await Promise.all(commands.map((command) => swarmtune([...command, '--help'])));
    outputs.forEach(({ code, stdout }, i) => {
      const name = commands[i].join(' ');
      expect(code, name).toBe(0);
      expect(stdout, name).toMatch(new RegExp(`Usage: swarmtune ${name} `));
      expect(stdout.split('\n')[2]?.trim().length ?? 0, `${name} description`).toBeGreaterThan(10);
      expect(stdout, name).toContain('Examples:');
      expect(stdout, name).toContain(`swarmtune ${commands[i][0]}`);
    });
  });

});
