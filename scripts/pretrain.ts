/**
 * `npm run pretrain`: makes models/swarmtune-mini with swarmtune itself (coordinator/pretrain-pipeline.ts).
 *
 *   npm run pretrain [-- --steps 200] [--lr 5e-3] [--domain-steps 400] [--domain-lr 3e-3] [--domain-task FILE]
 *                    [--output DIR] [--work-dir DIR] [--seed N] [--workers N] [--reuse-run]
 *
 * --steps are the general phase's steps; --domain-steps the domain-adaptive phase's on the training texts of the task
 * that --domain-task configures (default examples/main-job.yaml; 0 skips the phase). --reuse-run keeps finished runs
 * of the same configuration in the work folder and rewrites only the model directory, its samples and card.
 *
 * Prints progress on stderr and a JSON summary on stdout.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_PRETRAIN_OPTIONS, runPretrainPipeline, type PretrainOptions } from '../coordinator/pretrain-pipeline.js';

const { values } = parseArgs({
  options: {
    steps: { type: 'string' },
    output: { type: 'string' },
    'work-dir': { type: 'string' },
    seed: { type: 'string' },
    workers: { type: 'string' },
    lr: { type: 'string' },
    'domain-steps': { type: 'string' },
    'domain-lr': { type: 'string' },
    'domain-task': { type: 'string' },
    'reuse-run': { type: 'boolean' },
  },
});

function intFlag(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} ${value}: expected a non-negative integer`);
  return n;
}

const options: PretrainOptions = {
  ...DEFAULT_PRETRAIN_OPTIONS,
  maxSteps: intFlag('steps', values.steps, DEFAULT_PRETRAIN_OPTIONS.maxSteps),
  outputDir: values.output ?? DEFAULT_PRETRAIN_OPTIONS.outputDir,
  workDir: values['work-dir'] ?? DEFAULT_PRETRAIN_OPTIONS.workDir,
  seed: intFlag('seed', values.seed, DEFAULT_PRETRAIN_OPTIONS.seed),
  workers: intFlag('workers', values.workers, DEFAULT_PRETRAIN_OPTIONS.workers),
  reuseRun: values['reuse-run'] ?? false,
  learningRate: values.lr === undefined ? DEFAULT_PRETRAIN_OPTIONS.learningRate : Number(values.lr),
  domain: {
    ...DEFAULT_PRETRAIN_OPTIONS.domain,
    maxSteps: intFlag('domain-steps', values['domain-steps'], DEFAULT_PRETRAIN_OPTIONS.domain.maxSteps),
    learningRate: values['domain-lr'] === undefined ? DEFAULT_PRETRAIN_OPTIONS.domain.learningRate : Number(values['domain-lr']),
    taskConfig: values['domain-task'] ?? DEFAULT_PRETRAIN_OPTIONS.domain.taskConfig,
  },
};
const log = (line: string): void => console.error(line);
const report = await runPretrainPipeline(options, log);
console.log(
  JSON.stringify({
    output_dir: options.outputDir,
    steps: report.steps,
    tokens_seen: report.tokensSeen,
    initial_eval_loss: report.initialEvalLoss,
    final_eval_loss: report.finalGeneralEvalLoss,
    general_phase_eval_loss: report.finalEvalLoss,
    domain_steps: report.domain?.steps ?? 0,
    domain_initial_eval_loss: report.domain?.initialEvalLoss ?? null,
    domain_final_eval_loss: report.domain?.finalEvalLoss ?? null,
    domain_run_wall_s: report.domain ? report.domain.runWallMs / 1000 : null,
    uniform_loss: Math.log(report.config.vocabSize),
    run_wall_s: report.runWallMs / 1000,
    size_bytes: report.sizeBytes,
  }),
);
