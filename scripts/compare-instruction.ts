/**
 * `npm run compare:instruction`: does instruction tuning teach stories260K (trained on children's stories) to
 * answer "Is this e-mail spam? Answer yes or no." on held-out e-mails? The built-in `spam-instructions` set,
 * a compact prompt template (so that the e-mail fits `--max-length` tokens), LoRA on every linear layer, trained
 * by `swarmtune run` with 2 local worker processes; the base model (LoRA B = 0) and the tuned adapter are then
 * evaluated the same way on the same held-out prompts: response loss (nats per response token, EOS included),
 * exact-match and prefix-match accuracy of greedy answers.
 *
 * Progress goes to stderr; the LAST stdout line is one JSON object:
 *   { "model", "dataset", "steps", "train_samples", "eval_samples", "learning_rate", "wall_s",
 *     "base": { eval_loss, eval_exact_match, eval_prefix_match, ... }, "tuned": { ... }, "majority_answer_rate" }
 *
 * Flags: --steps N (default 40), --train N (default 640), --eval N (default 60), --lr X (default 5e-3),
 * --max-length N (default 160), --method lora|feature|full (default lora; `feature` trains the output layer and
 * `--top-layers` blocks).
 *
 * Why LoRA alone answers "no" and does not stop: stories260K never saw EOS in pre-training (llama2.c adds BOS
 * only), and its output row is within 3e-4 of 168 other rows that no training text used (byte tokens, rare pieces).
 * LoRA on the body moves the hidden state, which raises all 169 logits together, so the EOS target costs at least
 * ln 169 = 5.1 nats and greedy decoding picks one of its look-alikes ("$", "8", ...). A method that trains the
 * output layer can set the EOS row apart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalWorkers, type LocalWorkers } from '../coordinator/local-workers.js';
import { runCoordinator } from '../coordinator/run.js';
import { compileConfig, DEFAULT_MODEL_RELATIVE, toPeftSpec, type RunConfig } from '../shared/config.js';
import { prepareRunData, type RunData } from '../shared/data/index.js';
import { normalizeAnswer } from '../shared/data/instruction-template.js';
import { evaluateHeldOut, type HeldOutMetrics } from '../shared/model/held-out-eval.js';
import { loadModel } from '../shared/model/load-model.js';
import { TaskModel } from '../shared/model/task-model.js';
import { modelTaskOf } from '../shared/model/types.js';
import { selectBackend } from '../worker/backend.js';

const { values: flags } = parseArgs({
  options: {
    steps: { type: 'string', default: '40' },
    train: { type: 'string', default: '640' },
    eval: { type: 'string', default: '60' },
    lr: { type: 'string', default: '5e-3' },
    'max-length': { type: 'string', default: '160' },
    method: { type: 'string', default: 'lora' },
    'top-layers': { type: 'string', default: '0' },
  },
});
const log = (message: string): void => void process.stderr.write(`[compare:instruction] ${message}\n`);
const round4 = (x: number): number => Math.round(x * 1e4) / 1e4;
const dir = mkdtempSync(join(tmpdir(), 'swarmtune-compare-instruction-'));

const config: RunConfig = compileConfig({
  task: 'instruction',
  dataset: 'spam-instructions',
  prompt_template: '{instruction}\n{input}\nAnswer:{output}',
  max_length: Number(flags['max-length']),
  max_train_samples: Number(flags.train),
  max_eval_samples: Number(flags.eval),
  max_steps: Number(flags.steps),
  learning_rate: Number(flags.lr),
  peft:
    flags.method === 'lora'
      ? { target_modules: 'all-linear' }
      : flags.method === 'feature'
        ? { method: 'feature', trainable_top_layers: Number(flags['top-layers']) }
        : { method: flags.method },
  workers: 2,
  save_strategy: 'no',
  join_timeout_ms: 600_000,
  output_dir: join(dir, 'run'),
});

function summary(metrics: HeldOutMetrics): Record<string, unknown> {
  return {
    eval_loss: round4(metrics.eval_loss),
    perplexity: round4(metrics.perplexity ?? Number.NaN),
    eval_exact_match: round4(metrics.eval_exact_match ?? 0),
    eval_prefix_match: round4(metrics.eval_prefix_match ?? 0),
    eval_generations: metrics.eval_generations?.map((g) => ({ reference: g.reference, generated: g.generated })),
  };
}

/** Metrics of the base model (trainable values as a run starts: LoRA B = 0) or of a run's trained values. */
async function evaluate(data: RunData, trained?: Map<string, Float32Array>): Promise<HeldOutMetrics> {
  const loaded = await loadModel(config.model);
  const spec = { task: modelTaskOf(config.task), numLabels: 2, pooling: config.pooling, peft: toPeftSpec(config.peft) };
  const model = TaskModel.create(loaded.config, loaded.weights, spec);
  try {
    // The run's values rather than its adapter/ folder: `full` and `feature` runs do not write a LoRA adapter.
    model.setTrainable(trained ?? model.initTrainable(config.seed));
    return evaluateHeldOut(model, loaded.tokenizer, config.task, data.eval, data.rawEval, { maxGenerate: data.eval.length });
  } finally {
    model.dispose();
  }
}

let workers: LocalWorkers | undefined;
try {
  const backend = await selectBackend('auto');
  log(`backend for evaluation: ${backend.name}`);
  const loaded = await loadModel(config.model);
  const data = await prepareRunData(config, loaded.tokenizer);
  const majority = data.rawEval.filter((e) => normalizeAnswer(e.response ?? '') === 'no').length / data.rawEval.length;
  const started = performance.now();
  const base = await evaluate(data);
  log(`base: response loss ${base.eval_loss.toFixed(4)}, exact ${base.eval_exact_match}, prefix ${base.eval_prefix_match}`);
  const result = await runCoordinator(config, {
    log: (line) => log(line),
    onListening: (url) => {
      workers = startLocalWorkers(config.workers, url, [], () => undefined);
    },
  });
  const tuned = await evaluate(data, result.params);
  log(`tuned: response loss ${tuned.eval_loss.toFixed(4)}, exact ${tuned.eval_exact_match}, prefix ${tuned.eval_prefix_match}`);
  console.log(
    JSON.stringify({
      model: DEFAULT_MODEL_RELATIVE,
      dataset: 'spam-instructions',
      steps: config.max_steps,
      train_samples: data.train.length,
      eval_samples: data.eval.length,
      learning_rate: config.learning_rate,
      method: config.peft.method,
      max_length: config.max_length,
      wall_s: Math.round((performance.now() - started) / 1000),
      majority_answer_rate: round4(Math.max(majority, 1 - majority)),
      base: summary(base),
      tuned: summary(tuned),
    }),
  );
} finally {
  await workers?.stop();
  rmSync(dir, { recursive: true, force: true });
}
