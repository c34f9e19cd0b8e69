/**
 * `swarmtune dashboard --run-dir DIR [--host H] [--port N]`: serves the dashboard of a finished (or interrupted)
 * run from its `metrics.jsonl` until interrupted.
 */
import type { Command } from 'commander';
import { ConfigError, ErrorCode } from '../../shared/errors.js';
import { serveRunDashboard } from './after-run.js';

interface DashboardFlags {
  readonly runDir: string;
  readonly host: string;
  readonly port: string;
}

function portFlag(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n > 65535) throw new ConfigError(ErrorCode.CONFIG_INVALID, `--port ${JSON.stringify(value)}: expected an integer from 0 to 65535`);
  return n;
}

/** Adds `dashboard` to the coordinator's CLI. */
export function registerDashboardCommand(program: Command): void {
  program
    .command('dashboard')
    .description("serve the dashboard of a finished run from its metrics.jsonl (a running coordinator serves it itself, at the URL it prints)")
    .requiredOption('--run-dir <dir>', 'the run output folder (holds metrics.jsonl)')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--port <port>', 'TCP port (0 = any free port)', '0')
    .addHelpText(
      'after',
      `
Examples:
  swarmtune dashboard --run-dir runs/20261127-053000              # prints http://127.0.0.1:PORT/
  swarmtune dashboard --run-dir runs/exp1 --host 0.0.0.0 --port 8080`,
    )
    .action(async (flags: DashboardFlags) => {
      const served = await serveRunDashboard({ runDir: flags.runDir, host: flags.host, port: portFlag(flags.port) });
      console.log(`dashboard of ${flags.runDir} (${served.numRecords} records): ${served.url}`);
      console.error('press Ctrl+C to stop');
      await new Promise<void>((done) => {
        const stop = () => void served.close().then(done);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
