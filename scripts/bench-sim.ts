/**
 * `npm run bench:sim`: a federated simulation at scale on this machine — 1,000 virtual clients (IID shards of the
 * whole spam-assassin training split, ~5.7 e-mails each) over 2 local worker processes, `fraction_fit` 0.02 (20
 * clients a round), 10 rounds, stories260K + LoRA (the embedded run's settings), through the real coordinator,
 * protocol and workers (`swarmtune simulate`).
 *
 * The overhead fraction of a round is the part of its wall time not spent in local training on the busiest worker:
 * `1 − max_w(Σ compute of w's clients) / round wall time` (dispatch, parameter sync, frames, scheduling imbalance,
 * aggregation). Centralized evaluation runs once, after the last round, outside the round times.
 *
 * Progress goes to stderr; the LAST stdout line is one JSON object:
 *   { "clients", "rounds", "workers", "fraction_fit", "clients_per_round", "seconds_per_round" (median),
 *     "seconds_per_round_all", "overhead_fraction" (median), "overhead_fraction_all", "eval_accuracy", ... }
 *
 * Flags: --clients N (default 1000), --rounds N (default 10), --workers N (default 2), --fraction-fit F (0.02).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { compileConfig } from '../shared/config.js';
import { runCoordinator } from '../coordinator/run.js';
import { startLocalWorkers, type LocalWorkers } from '../coordinator/local-workers.js';

const { values: flags } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '10' },
    workers: { type: 'string', default: '2' },
    'fraction-fit': { type: 'string', default: '0.02' },
  },
});

function log(message: string): void {
  process.stderr.write(`[bench:sim] ${message}\n`);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

const dir = mkdtempSync(join(tmpdir(), 'swarmtune-bench-sim-'));
const numWorkers = Number(flags.workers);
const config = compileConfig({
  mode: 'federated',
  num_clients: Number(flags.clients),
  num_rounds: Number(flags.rounds),
  fraction_fit: Number(flags['fraction-fit']),
  min_fit_clients: 2,
  min_available_clients: 2,
  workers: numWorkers,
  max_train_samples: -1,
  max_eval_samples: 300,
  eval_every_rounds: 0,
  // Each worker loads and tokenizes the whole training split itself (data_delivery: local) before it is ready.
  join_timeout_ms: 600_000,
  output_dir: join(dir, 'run'),
});
let workers: LocalWorkers | undefined;
const started = performance.now();
try {
  const result = await runCoordinator(config, {
    log: (line) => log(line),
    onListening: (url) => {
      workers = startLocalWorkers(numWorkers, url, [], () => undefined);
    },
  });
  const rounds = readFileSync(join(result.outputDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, number>)
    .filter((record) => (record.event as unknown) === 'round');
  const seconds = rounds.map((r) => r.round_ms / 1000);
  const overhead = rounds.map((r) => r.overhead_fraction);
  console.log(
    JSON.stringify({
      clients: config.num_clients,
      rounds: rounds.length,
      workers: numWorkers,
      fraction_fit: config.fraction_fit,
      clients_per_round: median(rounds.map((r) => r.sampled)),
      seconds_per_round: round3(median(seconds)),
      seconds_per_round_all: seconds.map(round3),
      overhead_fraction: round3(median(overhead)),
      overhead_fraction_all: overhead.map(round3),
      eval_accuracy: round3(result.evalAccuracy),
      eval_loss: round3(result.evalLoss),
      wall_s: round3((performance.now() - started) / 1000),
    }),
  );
} finally {
  await workers?.stop();
  rmSync(dir, { recursive: true, force: true });
}
