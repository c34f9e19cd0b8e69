/**
 * Child `swarmtune` commands of the pre-training pipeline: a real `swarmtune run` (coordinator plus local worker
 * processes, exactly as a user starts it) and `swarmtune generate`. Their output is forwarded line by line.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ErrorCode, OrchestratorError } from '../shared/errors.js';

/** The `swarmtune` launcher of this checkout. */
export const SWARMTUNE_BIN: string = fileURLToPath(new URL('../bin/swarmtune.mjs', import.meta.url));

/** What a finished child printed. */
export interface ChildOutput {
  readonly stdout: string;
  readonly wallMs: number;
}

/**
 * Runs `swarmtune <args>`, forwarding stderr lines (and stdout lines when `echoStdout`) to `log`.
 * @throws OrchestratorError E_INTERNAL when it exits non-zero or is killed, naming the command and exit code.
 */
export function runSwarmtune(args: readonly string[], log: (line: string) => void, echoStdout = true): Promise<ChildOutput> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SWARMTUNE_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    if (echoStdout) createInterface({ input: child.stdout }).on('line', log);
    createInterface({ input: child.stderr }).on('line', log);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve({ stdout, wallMs: performance.now() - started });
      else reject(new OrchestratorError(ErrorCode.INTERNAL, `swarmtune ${args[0]} exited with ${signal ?? `code ${code}`}`));
    });
  });
}
