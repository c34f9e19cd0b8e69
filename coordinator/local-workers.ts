import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TSX_IMPORT_URL } from '../shared/tsx-loader.js';

/** The worker program, started as a separate process exactly as a remote worker would be. */
const WORKER_CLI = fileURLToPath(new URL('../worker/cli.ts', import.meta.url));

/** Local worker processes started by `swarmtune run`. */
export interface LocalWorkers {
  readonly processes: readonly ChildProcess[];
  /** Sends SIGTERM to every worker still running and resolves when all have exited. */
  stop(): Promise<void>;
}

/**
 * Starts `count` worker processes that dial `url`. Their output is forwarded line by line, prefixed with the
 * worker's number, to `log`.
 */
export function startLocalWorkers(
  count: number,
  url: string,
  extraArgs: readonly string[],
  log: (line: string) => void,
  /** Extra environment of worker `index` (fault injection in tests and drills). @default none */
  envOf: (index: number) => Readonly<Record<string, string>> = () => ({}),
): LocalWorkers {
  const processes = Array.from({ length: count }, (_, index) => {
    const child = spawn(process.execPath, ['--import', TSX_IMPORT_URL, WORKER_CLI, 'worker', '--connect', url, ...extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SWARMTUNE_LOCAL_WORKER: String(index), ...envOf(index) },
    });
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream! }).on('line', (line) => log(`[worker ${index}] ${line}`));
    }
    child.on('exit', (code, signal) => {
      if (code !== 0 && code !== null) log(`[worker ${index}] exited with code ${code}`);
      if (signal && signal !== 'SIGTERM') log(`[worker ${index}] killed by ${signal}`);
    });
    return child;
  });
  return {
    processes,
    async stop() {
      await Promise.all(
        processes.map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              child.once('exit', () => resolve());
              child.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}
