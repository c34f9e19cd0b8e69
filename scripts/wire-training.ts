/**
 * What each wire codec costs in a real fine-tune: bytes per training step (parameter updates out, gradients back)
 * and the eval loss after the same number of data-parallel steps, against fp32. The stories260K spam-assassin LoRA
 * run of `npm start`, shortened to a fixed step count, with 2 local worker processes.
 *
 * Run alone with `node --import tsx scripts/wire-training.ts [--steps N] [--seed S | --seeds S,S,...] [--codecs A,B]`;
 * `npm run bench:wire` includes it, over three seeds.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { compileConfig, DEFAULT_MODEL_PATH } from '../shared/config.js';
import { runCoordinator } from '../coordinator/run.js';
import { startLocalWorkers, type LocalWorkers } from '../coordinator/local-workers.js';
import type { MetricsRecord } from '../coordinator/metrics.js';

/** One codec configuration of the comparison. */
interface Variant {
  readonly name: string;
  readonly params_codec: string;
  readonly grads_codec: string;
  readonly error_feedback: boolean;
  /** Further config keys (the topk options). */
  readonly extra?: Readonly<Record<string, unknown>>;
}

// Sparse top-k is a gradient codec; its runs send parameters in fp32.
const VARIANTS: readonly Variant[] = [
  { name: 'fp32', params_codec: 'fp32', grads_codec: 'fp32', error_feedback: true },
  { name: 'fp16', params_codec: 'fp16', grads_codec: 'fp16', error_feedback: true },
  { name: 'bf16', params_codec: 'bf16', grads_codec: 'bf16', error_feedback: true },
  { name: 'int8', params_codec: 'int8', grads_codec: 'int8', error_feedback: true },
  { name: 'topk_1pct_ef', params_codec: 'fp32', grads_codec: 'topk:0.01', error_feedback: true },
  { name: 'topk_1pct_no_ef', params_codec: 'fp32', grads_codec: 'topk:0.01', error_feedback: false },
];

// Alternatives measured while choosing the topk defaults (README, "The wire"); run them with --codecs NAME,NAME.
// Those from before `topk_selection: fisher` pin the ranking they were measured with: by magnitude, k per tensor.
const TOPK = { params_codec: 'fp32', grads_codec: 'topk:0.01' } as const;
const BY_MAGNITUDE = { topk_selection: 'magnitude', topk_scope: 'tensor' } as const;
const EXPERIMENTS: readonly Variant[] = [
  { name: 'topk_1pct_ef_magnitude', ...TOPK, error_feedback: true, extra: BY_MAGNITUDE },
  { name: 'topk_1pct_no_ef_magnitude', ...TOPK, error_feedback: false, extra: BY_MAGNITUDE },
  { name: 'topk_1pct_ef_fisher_tensor', ...TOPK, error_feedback: true, extra: { topk_scope: 'tensor' } },
  { name: 'topk_1pct_ef_momentum_masking', ...TOPK, error_feedback: true, extra: { sparse_momentum_masking: true } },
  { name: 'topk_1pct_ef_magnitude_momentum_masking', ...TOPK, error_feedback: true, extra: { ...BY_MAGNITUDE, sparse_momentum_masking: true } },
  { name: 'topk_1pct_ef_magnitude_decay_0.95', ...TOPK, error_feedback: true, extra: { ...BY_MAGNITUDE, sparse_residual_decay: 0.95 } },
  { name: 'topk_1pct_ef_coordinator', ...TOPK, error_feedback: true, extra: { ...BY_MAGNITUDE, sparse_optimizer: 'coordinator' } },
  { name: 'topk_1pct_no_ef_coordinator', ...TOPK, error_feedback: false, extra: { ...BY_MAGNITUDE, sparse_optimizer: 'coordinator' } },
  { name: 'topk_1pct_ef_worker_global', ...TOPK, error_feedback: true, extra: { ...BY_MAGNITUDE, topk_scope: 'global' } },
  { name: 'topk_1pct_ef_no_lookahead', ...TOPK, error_feedback: true, extra: { ...BY_MAGNITUDE, sparse_lookahead: false } },
  { name: 'topk_1pct_ef_worker_global_no_lookahead', ...TOPK, error_feedback: true, extra: { ...BY_MAGNITUDE, topk_scope: 'global', sparse_lookahead: false } },
  { name: 'topk_1pct_ef_lookahead_flush', ...TOPK, error_feedback: true, extra: { ...BY_MAGNITUDE, sparse_final_flush: true } },
  { name: 'topk_1pct_ef_global', ...TOPK, error_feedback: true, extra: { ...BY_MAGNITUDE, topk_scope: 'global', sparse_optimizer: 'coordinator' } },
  { name: 'topk_1pct_no_ef_global', ...TOPK, error_feedback: false, extra: { ...BY_MAGNITUDE, topk_scope: 'global', sparse_optimizer: 'coordinator' } },
  { name: 'topk_1pct_ef_frozen_w6', ...TOPK, error_feedback: true, extra: { ...BY_MAGNITUDE, sparse_warmup_steps: 6, sparse_optimizer: 'coordinator' } },
  { name: 'topk_1pct_ef_frozen_w6_global', ...TOPK, error_feedback: true, extra: { ...BY_MAGNITUDE, sparse_warmup_steps: 6, topk_scope: 'global', sparse_optimizer: 'coordinator' } },
  { name: 'topk_1pct_ef_frozen_w6_precond', ...TOPK, error_feedback: true, extra: { ...BY_MAGNITUDE, sparse_warmup_steps: 6, topk_selection: 'preconditioned', sparse_optimizer: 'coordinator' } },
];

/** Per-codec figures: mean bytes per step each way, final eval loss and accuracy, and eval loss minus fp32's. */
export interface CodecTrainingFigure {
  readonly param_bytes_per_step: number;
  readonly grad_bytes_per_step: number;
  readonly eval_loss: number;
  readonly eval_accuracy: number;
  readonly eval_loss_vs_fp32: number;
  /**
   * Sparse (`topk`) variants: the mean fraction of the trainable coordinates a worker sends per step (8 bytes an
   * entry: index and value), over the whole run. Absent for dense codecs.
   */
  readonly grad_density?: number;
}

/** Runs every variant for `steps` steps; `undefined` when the stories260K checkpoint is absent. */
export async function measureCodecTraining(steps: number, log: (line: string) => void, only?: readonly string[], seed?: number): Promise<Record<string, CodecTrainingFigure> | undefined> {
  if (!existsSync(DEFAULT_MODEL_PATH)) {
    log(`skipping the training figures: ${DEFAULT_MODEL_PATH} is absent`);
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'swarmtune-wire-training-'));
  const results: Record<string, Omit<CodecTrainingFigure, 'eval_loss_vs_fp32'>> = {};
  try {
    const variants = only === undefined ? VARIANTS : [...VARIANTS, ...EXPERIMENTS].filter((v) => only.includes(v.name));
    for (const variant of variants) {
      const config = compileConfig({
        max_steps: steps,
        logging_steps: 1,
        workers: 2,
        ...(seed === undefined ? {} : { seed }),
        params_codec: variant.params_codec,
        grads_codec: variant.grads_codec,
        error_feedback: variant.error_feedback,
        ...variant.extra,
        output_dir: join(dir, variant.name),
      });
      let workers: LocalWorkers | undefined;
      const train: MetricsRecord[] = [];
      const result = await runCoordinator(config, {
        log: () => undefined,
        onListening: (url) => {
          workers = startLocalWorkers(2, url, ['--backend', config.backend], () => undefined);
        },
        onMetrics: (record) => {
          if (record.event === 'train') train.push(record);
        },
      });
      await workers?.stop();
      const mean = (key: string) => train.reduce((s, r) => s + (r[key] as number), 0) / train.length;
      results[variant.name] = {
        param_bytes_per_step: Math.round(mean('param_bytes_per_step')),
        grad_bytes_per_step: Math.round(mean('grad_bytes_per_step')),
        eval_loss: round(result.evalLoss),
        eval_accuracy: round(result.evalAccuracy),
      };
      if (variant.grads_codec.startsWith('topk')) {
        const elements = [...result.params.values()].reduce((n, p) => n + p.length, 0);
        // grad_bytes_per_step counts both workers' results: 2 × 8 bytes per entry sent.
        results[variant.name] = { ...results[variant.name], grad_density: Math.round((mean('grad_bytes_per_step') / (2 * 8 * elements)) * 1e5) / 1e5 };
      }
      log(`${variant.name}: ${JSON.stringify(results[variant.name])}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const baseline = results.fp32?.eval_loss ?? Number.NaN;
  return Object.fromEntries(Object.entries(results).map(([name, r]) => [name, { ...r, eval_loss_vs_fp32: round(r.eval_loss - baseline) }]));
}

/** A codec's figures over several seeds: per seed, and the gap to fp32 (mean, sample SD, largest). */
export interface CodecTrainingSummary {
  readonly eval_loss_vs_fp32_mean: number;
  readonly eval_loss_vs_fp32_sd: number;
  readonly eval_loss_vs_fp32_max: number;
  readonly by_seed: Readonly<Record<string, CodecTrainingFigure>>;
}

/**
 * Runs {@link measureCodecTraining} once per seed: the gap between two runs of 63 steps moves by about 0.01 from
 * one seed to the next (data order, LoRA init, dropout), so one seed alone cannot say whether a codec is within
 * 0.02 of fp32. `undefined` when the checkpoint is absent.
 */
export async function measureCodecTrainingSeeds(
  steps: number,
  seeds: readonly number[],
  log: (line: string) => void,
  only?: readonly string[],
): Promise<Record<string, CodecTrainingSummary> | undefined> {
  const runs: Record<string, Record<string, CodecTrainingFigure>> = {};
  for (const seed of seeds) {
    log(`seed ${seed}`);
    const figures = await measureCodecTraining(steps, log, only, seed);
    if (figures === undefined) return undefined;
    runs[seed] = figures;
  }
  const codecs = Object.keys(runs[seeds[0]] ?? {});
  return Object.fromEntries(
    codecs.map((codec) => {
      const gaps = seeds.map((seed) => runs[seed][codec].eval_loss_vs_fp32);
      const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
      const sd = gaps.length > 1 ? Math.sqrt(gaps.reduce((a, g) => a + (g - mean) ** 2, 0) / (gaps.length - 1)) : 0;
      const summary: CodecTrainingSummary = {
        eval_loss_vs_fp32_mean: round(mean),
        eval_loss_vs_fp32_sd: round(sd),
        eval_loss_vs_fp32_max: round(Math.max(...gaps)),
        by_seed: Object.fromEntries(seeds.map((seed) => [String(seed), runs[seed][codec]])),
      };
      return [codec, summary];
    }),
  );
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { steps: { type: 'string', default: '63' }, codecs: { type: 'string' }, seed: { type: 'string' }, seeds: { type: 'string' } } });
  const only = values.codecs?.split(',').filter((c) => c !== '');
  const log = (line: string) => process.stderr.write(`[wire-training] ${line}\n`);
  if (values.seeds !== undefined) {
    const seeds = values.seeds.split(',').map(Number);
    const summary = await measureCodecTrainingSeeds(Number(values.steps), seeds, log, only);
    console.log(JSON.stringify({ training: { steps: Number(values.steps), seeds, codecs: summary ?? null } }));
  } else {
    const seed = values.seed === undefined ? undefined : Number(values.seed);
    const figures = await measureCodecTraining(Number(values.steps), log, only, seed);
    console.log(JSON.stringify({ training: { steps: Number(values.steps), seed: seed ?? null, codecs: figures ?? null } }));
  }
}
