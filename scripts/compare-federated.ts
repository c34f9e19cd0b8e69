/**
 * `npm run compare:federated`: what federating the embedded fine-tune costs in accuracy. Three runs of
 * stories260K + LoRA on spam-assassin ham/spam, each seeing the same number of training examples (the 1,000 of the
 * `npm start` run, `--epochs` times): centralized data-parallel training (2 workers, `--epochs` epochs), FedAvg over
 * 20 clients with IID shards, and FedAvg over 20 clients with Dirichlet(0.5) label shards (both: every client every
 * round, 1 local epoch, `--epochs` rounds). All runs use 2 local worker processes and evaluate on the same 300
 * held-out e-mails.
 *
 * Progress goes to stderr; the LAST stdout line is one JSON object:
 *   { "examples_seen", "centralized": {eval_accuracy, eval_loss, wall_s}, "fedavg_iid": {...}, "fedavg_dirichlet_0.5": {...} }
 *
 * Flags: --epochs N (default 3), --clients N (default 20), --alpha A (default 0.5).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { compileConfig } from '../shared/config.js';
import { runCoordinator } from '../coordinator/run.js';
import { startLocalWorkers, type LocalWorkers } from '../coordinator/local-workers.js';

const { values: flags } = parseArgs({
  options: {
    epochs: { type: 'string', default: '3' },
    clients: { type: 'string', default: '20' },
    alpha: { type: 'string', default: '0.5' },
  },
});
const epochs = Number(flags.epochs);
const dir = mkdtempSync(join(tmpdir(), 'swarmtune-compare-federated-'));

function log(message: string): void {
  process.stderr.write(`[compare:federated] ${message}\n`);
}

async function run(name: string, overrides: Record<string, unknown>): Promise<{ eval_accuracy: number; eval_loss: number; wall_s: number }> {
  const config = compileConfig({ workers: 2, join_timeout_ms: 600_000, output_dir: join(dir, name), ...overrides });
  let workers: LocalWorkers | undefined;
  const started = performance.now();
  try {
    const result = await runCoordinator(config, {
      log: (line) => log(`${name}: ${line}`),
      onListening: (url) => {
        workers = startLocalWorkers(config.workers, url, [], () => undefined);
      },
    });
    const wallS = (performance.now() - started) / 1000;
    log(`${name}: eval_accuracy ${result.evalAccuracy.toFixed(4)}, eval_loss ${result.evalLoss.toFixed(4)} in ${wallS.toFixed(0)} s`);
    return { eval_accuracy: round4(result.evalAccuracy), eval_loss: round4(result.evalLoss), wall_s: Math.round(wallS) };
  } finally {
    await workers?.stop();
  }
}

function round4(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

const federated = { mode: 'federated', num_clients: Number(flags.clients), num_rounds: epochs, fraction_fit: 1, local_epochs: 1, eval_every_rounds: 0 };
try {
  const centralized = await run('centralized', { num_train_epochs: epochs });
  const iid = await run('fedavg-iid', { ...federated, partition: 'iid' });
  const dirichlet = await run('fedavg-dirichlet', { ...federated, partition: 'dirichlet', dirichlet_alpha: Number(flags.alpha) });
  console.log(
    JSON.stringify({
      examples_seen: 1000 * epochs,
      clients: Number(flags.clients),
      centralized,
      fedavg_iid: iid,
      [`fedavg_dirichlet_${flags.alpha}`]: dirichlet,
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
