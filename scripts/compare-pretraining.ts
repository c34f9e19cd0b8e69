/**
 * `npm run compare:pretraining`: what pre-training buys the main job. The main job (examples/main-job.yaml: LoRA on
 * every linear layer and the token embedding, spam-assassin, 2 local workers, 300 held-out e-mails) run from the same
 * architecture with three starting points, at several training budgets:
 *   - `random`: the seeded random initialisation `npm run pretrain` starts from (PRETRAIN_DIR/init, or remade here from
 *     models/swarmtune-mini's config and tokenizer with the pipeline's seed when absent);
 *   - `general`: after the general-English phase only (PRETRAIN_DIR/general, present after `npm run pretrain`;
 *     skipped when absent);
 *   - `swarmtune-mini`: the embedded model (general, then domain-adaptive on the task's training e-mails).
 * Each cell is a real `swarmtune run` with `--set max_train_samples=N` (one epoch).
 *
 * Flags: --budgets 500,1000,3000 (training e-mails), --work-dir runs/compare-pretraining, --pretrain-dir runs/pretrain
 * (the scratch folder of `npm run pretrain`, for its init/ and general/ models), --peft JSON and --lr X to replace the
 * job's `peft` block and learning rate (e.g. a linear probe: --peft '{"method":"feature"}' --lr 1e-2).
 * Progress goes to stderr; stdout gets a Markdown table, then as its LAST line one JSON object:
 *   { "budgets": [...], "models": { "<name>": { "<budget>": { eval_accuracy, eval_loss, wall_s } } } }
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { runSwarmtune } from '../coordinator/pretrain-cli-runs.js';
import { DEFAULT_PRETRAIN_OPTIONS } from '../coordinator/pretrain-pipeline.js';
import { loadModel } from '../shared/model/load-model.js';
import { writeRandomHfModel } from '../shared/pretrain/hf-model-files.js';

const { values: flags } = parseArgs({
  options: {
    budgets: { type: 'string', default: '500,1000,3000' },
    'work-dir': { type: 'string', default: 'runs/compare-pretraining' },
    'pretrain-dir': { type: 'string', default: DEFAULT_PRETRAIN_OPTIONS.workDir },
    peft: { type: 'string' },
    lr: { type: 'string' },
  },
});
const budgets = flags.budgets.split(',').map(Number);
for (const budget of budgets) if (!Number.isSafeInteger(budget) || budget < 16) throw new Error(`--budgets: ${budget} is not an integer >= 16`);
const work = resolve(flags['work-dir']);
const log = (line: string): void => void process.stderr.write(`[compare:pretraining] ${line}\n`);
const EMBEDDED = 'models/swarmtune-mini';

async function randomInitDir(): Promise<string> {
  const made = resolve(flags['pretrain-dir'], 'init');
  if (existsSync(join(made, 'config.json'))) return made;
  const dir = join(work, 'random-init');
  const loaded = await loadModel(EMBEDDED);
  await writeRandomHfModel(dir, loaded.config, EMBEDDED, DEFAULT_PRETRAIN_OPTIONS.seed);
  return dir;
}

const starts: Record<string, string> = { random: await randomInitDir() };
const general = resolve(flags['pretrain-dir'], 'general');
if (existsSync(join(general, 'config.json'))) starts.general = general;
else log(`no ${general} (run npm run pretrain first): the general-only row is skipped`);
starts['swarmtune-mini'] = EMBEDDED;

const results: Record<string, Record<string, { eval_accuracy: number; eval_loss: number; wall_s: number }>> = {};
await mkdir(work, { recursive: true });
const job = parse(await readFile('examples/main-job.yaml', 'utf8')) as Record<string, unknown>;
if (flags.peft !== undefined) job.peft = JSON.parse(flags.peft) as unknown;
if (flags.lr !== undefined) job.learning_rate = Number(flags.lr);
const jobPath = join(work, 'job.json');
await writeFile(jobPath, `${JSON.stringify(job, null, 2)}\n`);
for (const [name, model] of Object.entries(starts)) {
  results[name] = {};
  for (const budget of budgets) {
    const outputDir = join(work, `${name}-${budget}`);
    log(`${name}, ${budget} e-mails: swarmtune run --config ${jobPath} --set model=${model}`);
    const { wallMs } = await runSwarmtune(['run', '--config', jobPath, '--set', `model=${model}`, '--set', `max_train_samples=${budget}`, '-o', outputDir, '--log-format', 'json'], () => undefined, false);
    const evalResults = JSON.parse(await readFile(join(outputDir, 'eval_results.json'), 'utf8')) as { eval_accuracy: number; eval_loss: number };
    results[name][budget] = { eval_accuracy: evalResults.eval_accuracy, eval_loss: evalResults.eval_loss, wall_s: Math.round(wallMs / 100) / 10 };
    log(`  eval_accuracy ${evalResults.eval_accuracy.toFixed(4)}, eval_loss ${evalResults.eval_loss.toFixed(4)}`);
  }
}

console.log(`| start | ${budgets.map((b) => `${b} e-mails`).join(' | ')} |`);
console.log(`|---|${budgets.map(() => '---:').join('|')}|`);
for (const [name, row] of Object.entries(results)) {
  console.log(`| ${name} | ${budgets.map((b) => `acc ${row[b].eval_accuracy.toFixed(3)}, loss ${row[b].eval_loss.toFixed(3)}`).join(' | ')} |`);
}
console.log(JSON.stringify({ budgets, peft: job.peft, learning_rate: job.learning_rate, models: results }));
