/**
 * `npm run compare:methods`: every fine-tuning method on spam-assassin for the same small budget: a model
 * (`--model`, stories260K by default, or a Hugging Face directory, LLaMA or BERT family) and a task (`--task`):
 * `classification` (ham/spam) or `causal-lm` (continued pre-training on the e-mail text). 2 local worker
 * processes, `--steps` optimizer steps of 16 e-mails (8 per worker, first `--max-length` tokens), evaluated on
 * `--eval` held-out e-mails. Per method: trainable parameters, the mean bytes of parameters sent to and gradients
 * received from the workers per step (fp32 codecs, all workers together), eval loss and accuracy (classification)
 * or perplexity (causal-lm), wall time. Learning rates per method are fixed below (full fine-tuning and
 * feature-based top layers move base weights: a smaller rate). `causal-lm` on a BERT model is masked-language
 * modelling (eval loss per masked token, perplexity its exp). A method or task the model refuses is reported with
 * the refusal's message.
 *
 * Progress goes to stderr; stdout gets a Markdown table (one row per method, README layout), then as its LAST line
 * one JSON object:
 *   { "model", "task", "steps", "eval_samples", "max_length", "methods": { "<name>": { trainable_params,
 *     param_bytes_per_step, grad_bytes_per_step, eval_loss, eval_accuracy, perplexity?, wall_s, learning_rate,
 *     peft } | { refused } } }
 *
 * Flags: --model PATH, --task classification|causal-lm (default classification), --steps N (default 40),
 * --eval N (default 300), --max-length N (default 128), --only a,b (method names below).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { MetricsRecord } from '../coordinator/metrics.js';
import { runCoordinator } from '../coordinator/run.js';
import { startLocalWorkers, type LocalWorkers } from '../coordinator/local-workers.js';
import { compileConfig, DEFAULT_MODEL_RELATIVE } from '../shared/config.js';
import { ErrorCode } from '../shared/errors.js';

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
    model: { type: 'string' },
    task: { type: 'string', default: 'classification' },
    steps: { type: 'string', default: '40' },
    eval: { type: 'string', default: '300' },
    'max-length': { type: 'string', default: '128' },
    only: { type: 'string' },
  },
});
const steps = Number(flags.steps);
const evalSamples = Number(flags.eval);
const maxLength = Number(flags['max-length']);
const task = flags.task as 'classification' | 'causal-lm';
if (task !== 'classification' && task !== 'causal-lm') throw new Error(`--task: "${String(flags.task)}" is not classification or causal-lm`);
const modelLabel = flags.model ?? DEFAULT_MODEL_RELATIVE;
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
    ...(flags.model !== undefined ? { model: flags.model } : {}),
    task,
    max_length: maxLength,
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
      ...(task === 'causal-lm' ? { perplexity: round4(Math.exp(result.evalLoss)) } : {}),
      steps: result.steps,
      wall_s: Math.round(wallS),
      learning_rate,
      peft,
    };
  } catch (error) {
    // A configuration the model refuses (e.g. prompt tuning on BERT) is a row of the table, not the end of the run.
    if (error instanceof Error && (error as { code?: string }).code === ErrorCode.CONFIG_INVALID) {
      log(`${name}: refused: ${error.message}`);
      return { refused: error.message, peft };
    }
    throw error;
  } finally {
    await workers?.stop();
  }
}

try {
  const methods: Record<string, Record<string, unknown>> = {};
  for (const name of names) methods[name] = await run(name);
  for (const [name, m] of Object.entries(methods)) console.log(markdownRow(name, m));
  console.log(JSON.stringify({ model: modelLabel, task, dataset: 'spam-assassin', steps, eval_samples: evalSamples, max_length: maxLength, methods }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** One README table row: model | task | method | trainable params | bytes/step down | up | eval loss | accuracy or perplexity | steps. */
function markdownRow(name: string, m: Record<string, unknown>): string {
  const model = modelLabel.split('/').filter(Boolean).at(-1) ?? modelLabel;
  if (m.refused !== undefined) return `| ${model} | ${task} | ${name} | — | — | — | — | refused: ${String(m.refused)} | — |`;
  const metric = task === 'causal-lm' ? `ppl ${Number(m.perplexity).toFixed(2)}` : `acc ${Number(m.eval_accuracy).toFixed(3)}`;
  const n = (x: unknown): string => Number(x).toLocaleString('en-US');
  return `| ${model} | ${task} | ${name} | ${n(m.trainable_params)} | ${n(m.param_bytes_per_step)} | ${n(m.grad_bytes_per_step)} | ${Number(m.eval_loss).toFixed(4)} | ${metric} | ${String(m.steps)} |`;
}
