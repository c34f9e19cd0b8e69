/**
 * `npm run compare:methods`: every fine-tuning method on the embedded task for the same small budget. stories260K
 * on spam-assassin ham/spam classification, 2 local worker processes, `--steps` optimizer steps of 16 e-mails
 * (8 per worker, first 128 tokens), evaluated on `--eval` held-out e-mails. Per method: trainable parameters, the
 * mean bytes of parameters sent to and gradients received from the workers per step (fp32 codecs, all workers
 * together), eval loss and accuracy, wall time. Learning rates per method are fixed below (full fine-tuning and
 * feature-based top layers move base weights: a smaller rate).
 *
 * Progress goes to stderr; the LAST stdout line is one JSON object:
 *   { "model", "task", "steps", "eval_samples", "methods": { "<name>": { trainable_params, param_bytes_per_step,
 *     grad_bytes_per_step, eval_loss, eval_accuracy, wall_s, learning_rate, peft } } }
 *
 * Flags: --steps N (default 40), --eval N (default 300), --only a,b (method names below).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { MetricsRecord } from '../coordinator/metrics.js';
import { runCoordinator } from '../coordinator/run.js';
import { startLocalWorkers, type LocalWorkers } from '../coordinator/local-workers.js';
import { compileConfig, DEFAULT_MODEL_RELATIVE } from '../shared/config.js';

const METHODS: Record<string, { peft: Record<string, unknown>; learning_rate: number }> = {
  lora: { peft: { method: 'lora' }, learning_rate: 1e-2 },
  adapter: { peft: { method: 'adapter', adapter_size: 16 }, learning_rate: 1e-2 },
  prompt: { peft: { method: 'prompt', num_virtual_tokens: 8 }, learning_rate: 3e-2 },
  feature: { peft: { method: 'feature', trainable_top_layers: 0 }, learning_rate: 1e-2 },
  'feature-top1': { peft: { method: 'feature', trainable_top_layers: 1 }, learning_rate: 3e-3 },
  full: { peft: { method: 'full' }, learning_rate: 1e-3 },
};

const { values: flags } = parseArgs({
  options: {
    steps: { type: 'string', default: '40' },
    eval: { type: 'string', default: '300' },
    only: { type: 'string' },
  },
});
const steps = Number(flags.steps);
const evalSamples = Number(flags.eval);
const names = flags.only ? flags.only.split(',') : Object.keys(METHODS);
for (const name of names) if (!METHODS[name]) throw new Error(`--only: unknown method "${name}" (known: ${Object.keys(METHODS).join(', ')})`);
const dir = mkdtempSync(join(tmpdir(), 'swarmtune-compare-methods-'));

function log(message: string): void {
  process.stderr.write(`[compare:methods] ${message}\n`);
}

function round4(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

async function run(name: string): Promise<Record<string, unknown>> {
  const { peft, learning_rate } = METHODS[name];
  const config = compileConfig({
    workers: 2,
    peft,
    learning_rate,
    max_steps: steps,
    max_eval_samples: evalSamples,
    save_strategy: 'no',
    join_timeout_ms: 600_000,
    output_dir: join(dir, name),
  });
  let workers: LocalWorkers | undefined;
  const records: MetricsRecord[] = [];
  const started = performance.now();
  try {
    const result = await runCoordinator(config, {
      log: (line) => log(`${name}: ${line}`),
      onListening: (url) => {
        workers = startLocalWorkers(config.workers, url, [], () => undefined);
      },
      onMetrics: (record) => {
        if (record.event === 'train') records.push(record);
      },
    });
    const wallS = (performance.now() - started) / 1000;
    const mean = (key: string): number => Math.round(records.reduce((s, r) => s + Number(r[key] ?? 0), 0) / Math.max(1, records.length));
    const trainableParams = [...result.params.values()].reduce((n, v) => n + v.length, 0);
    log(`${name}: ${trainableParams} trainable, eval_accuracy ${result.evalAccuracy.toFixed(4)}, eval_loss ${result.evalLoss.toFixed(4)} in ${wallS.toFixed(0)} s`);
    return {
      trainable_params: trainableParams,
      param_bytes_per_step: mean('param_bytes_per_step'),
      grad_bytes_per_step: mean('grad_bytes_per_step'),
      eval_loss: round4(result.evalLoss),
      eval_accuracy: round4(result.evalAccuracy),
      wall_s: Math.round(wallS),
      learning_rate,
      peft,
    };
  } finally {
    await workers?.stop();
  }
}

try {
  const methods: Record<string, Record<string, unknown>> = {};
  for (const name of names) methods[name] = await run(name);
  console.log(JSON.stringify({ model: DEFAULT_MODEL_RELATIVE, task: 'classification', dataset: 'spam-assassin', steps, eval_samples: evalSamples, methods }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
