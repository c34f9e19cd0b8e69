/**
 * Hugging Face Trainer semantics of evaluation, saving and the best model: `eval_strategy` / `save_strategy`,
 * `eval_steps` / `save_steps`, `load_best_model_at_end`, `metric_for_best_model`, `greater_is_better`. The checks
 * and refusals follow `TrainingArguments.__post_init__`, with the Trainer's own messages.
 */
import { ConfigError, ErrorCode } from '../errors.js';
import type { RunConfig } from './run-config.js';

/** Metric names the run reports (`eval_` prefixed), the ones `metric_for_best_model` may name. */
export const BEST_MODEL_METRICS = ['eval_loss', 'eval_accuracy'] as const;
/** One of {@link BEST_MODEL_METRICS}. */
export type BestModelMetric = (typeof BEST_MODEL_METRICS)[number];

/** How checkpoints are ranked when `load_best_model_at_end` is set. */
export interface BestModelRule {
  /** The metric, `eval_` prefixed as HF prefixes it (`loss` → `eval_loss`). */
  readonly metric: BestModelMetric;
  readonly greaterIsBetter: boolean;
}

/** `eval_steps` as the run uses it: the written value, or `logging_steps` when null (HF). */
export function effectiveEvalSteps(config: Pick<RunConfig, 'eval_steps' | 'logging_steps'>): number {
  return config.eval_steps ?? config.logging_steps;
}

/** The metric and direction of the best-model comparison (HF defaults: `loss`, lower is better). */
export function bestModelRule(config: Pick<RunConfig, 'metric_for_best_model' | 'greater_is_better'>): BestModelRule {
  const written = config.metric_for_best_model ?? 'loss';
  const metric = (written.startsWith('eval_') ? written : `eval_${written}`) as BestModelMetric;
  // HF: `greater_is_better` defaults to whether the metric's name does not end in "loss".
  return { metric, greaterIsBetter: config.greater_is_better ?? !metric.endsWith('loss') };
}

/** Whether a data-parallel run evaluates after optimizer step `step` (1-based) under `eval_strategy: steps`. */
export function isStepEval(config: Pick<RunConfig, 'eval_strategy' | 'eval_steps' | 'logging_steps'>, step: number): boolean {
  return config.eval_strategy === 'steps' && step % effectiveEvalSteps(config) === 0;
}

/**
 * Refuses evaluation and best-model settings that the HF Trainer refuses, with its messages, and those that have no
 * meaning here (`load_best_model_at_end` without any evaluation, federated runs, unknown metrics).
 *
 * @param where ` (from ORIGIN)` for a key, or '' (error messages).
 * @throws ConfigError E_CONFIG_INVALID naming the keys involved.
 */
export function checkTrainerSemantics(config: RunConfig, where: (key: string) => string): void {
  const invalid = (key: string, why: string): ConfigError => new ConfigError(ErrorCode.CONFIG_INVALID, `invalid config key "${key}"${where(key)}: ${why}`);
  if (config.metric_for_best_model !== null) {
    const metric = bestModelRule(config).metric;
    if (!(BEST_MODEL_METRICS as readonly string[]).includes(metric)) {
      throw invalid('metric_for_best_model', `got ${JSON.stringify(config.metric_for_best_model)}; expected one of loss, accuracy, ${BEST_MODEL_METRICS.join(', ')}`);
    }
  }
  if (config.mode === 'federated') {
    const why = 'federated runs evaluate every eval_every_rounds rounds and save per save_strategy; best-model export is not supported there yet';
    if (config.load_best_model_at_end) throw invalid('load_best_model_at_end', `${why}; set it to false`);
    if (config.eval_strategy !== 'epoch') throw invalid('eval_strategy', `${why}; use eval_every_rounds (0 = after the last round only)`);
    if (config.eval_steps !== null) throw invalid('eval_steps', `${why}; use eval_every_rounds`);
    return;
  }
  if (!config.load_best_model_at_end) return;
  if (config.eval_strategy !== config.save_strategy) {
    // The Trainer's wording (transformers TrainingArguments.__post_init__).
    throw new ConfigError(
      ErrorCode.CONFIG_INVALID,
      `--load_best_model_at_end requires the save and eval strategy to match, but found\n- Evaluation strategy: ${config.eval_strategy}\n- Save strategy: ${config.save_strategy}`,
    );
  }
  if (config.eval_strategy === 'steps' && config.save_steps % effectiveEvalSteps(config) !== 0) {
    throw new ConfigError(
      ErrorCode.CONFIG_INVALID,
      `--load_best_model_at_end requires the saving steps to be a round multiple of the evaluation steps, but found ${config.save_steps}, which is not a round multiple of ${effectiveEvalSteps(config)}.`,
    );
  }
  if (config.eval_strategy === 'no') {
    throw invalid('load_best_model_at_end', 'needs evaluations to rank checkpoints, but eval_strategy and save_strategy are "no"; set both to "epoch" or "steps"');
  }
}
