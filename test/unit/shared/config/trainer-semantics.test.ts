import { describe, expect, it } from 'vitest';
import { compileConfig } from '../../../../shared/config.js';
import { resolveConfig } from '../../../../shared/config/resolve.js';
import { ConfigError, ErrorCode } from '../../../../shared/errors.js';
import { bestModelRule, effectiveEvalSteps, isStepEval } from '../../../../shared/config/trainer-semantics.js';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('Hugging Face Trainer evaluation and best-model semantics', () => {
  it('refuses load_best_model_at_end when the save and eval strategies differ, with the Trainer message', () => {
    const err = configError(() => compileConfig({ load_best_model_at_end: true, eval_strategy: 'steps', save_strategy: 'epoch' }));
    expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(err.message).toBe('--load_best_model_at_end requires the save and eval strategy to match, but found\n- Evaluation strategy: steps\n- Save strategy: epoch');
  });

  it('refuses save_steps that are not a multiple of eval_steps, with the Trainer message', () => {
    const err = configError(() =>
      compileConfig({ load_best_model_at_end: true, eval_strategy: 'steps', save_strategy: 'steps', eval_steps: 3, save_steps: 10 }),
    );
    expect(err.message).toBe(
      '--load_best_model_at_end requires the saving steps to be a round multiple of the evaluation steps, but found 10, which is not a round multiple of 3.',
    );
    // eval_steps null falls back to logging_steps, as in HF.
    expect(() => compileConfig({ load_best_model_at_end: true, eval_strategy: 'steps', save_strategy: 'steps', logging_steps: 4, save_steps: 10 })).toThrow(/not a round multiple of 4/);
    expect(compileConfig({ load_best_model_at_end: true, eval_strategy: 'steps', save_strategy: 'steps', eval_steps: 5, save_steps: 10 }).save_steps).toBe(10);
  });

  it('refuses load_best_model_at_end with no evaluation at all, and an unknown metric', () => {
    expect(configError(() => compileConfig({ load_best_model_at_end: true, eval_strategy: 'no', save_strategy: 'no' })).message).toContain('load_best_model_at_end');
    const err = configError(() => compileConfig({ metric_for_best_model: 'f1' }));
    expect(err.message).toContain('metric_for_best_model');
    expect(err.message).toContain('"f1"');
  });

  it('refuses best-model and step evaluation keys in federated mode, pointing to eval_every_rounds', () => {
    expect(configError(() => compileConfig({ mode: 'federated', load_best_model_at_end: true })).message).toContain('eval_every_rounds');
    expect(configError(() => compileConfig({ mode: 'federated', eval_strategy: 'steps' })).message).toMatch(/"eval_strategy".*eval_every_rounds/);
    expect(compileConfig({ mode: 'federated' }).eval_strategy).toBe('epoch');
  });

  it('names the origin of a refused key', async () => {
    await expect(resolveConfig({ env: { SWARMTUNE_MODE: 'federated' }, sets: ['load_best_model_at_end=true'] })).rejects.toThrow(/from --set load_best_model_at_end/);
  });

  it('defaults metric_for_best_model to loss (lower is better) and greater_is_better from the metric name', () => {
    expect(bestModelRule(compileConfig({}))).toEqual({ metric: 'eval_loss', greaterIsBetter: false });
    expect(bestModelRule(compileConfig({ metric_for_best_model: 'accuracy' }))).toEqual({ metric: 'eval_accuracy', greaterIsBetter: true });
    expect(bestModelRule(compileConfig({ metric_for_best_model: 'eval_loss', greater_is_better: true }))).toEqual({ metric: 'eval_loss', greaterIsBetter: true });
  });

  it('evaluates every eval_steps (or logging_steps) under eval_strategy: steps only', () => {
    const steps = compileConfig({ eval_strategy: 'steps', eval_steps: 3 });
    expect([1, 2, 3, 4, 5, 6].filter((s) => isStepEval(steps, s))).toEqual([3, 6]);
    expect(effectiveEvalSteps(compileConfig({ logging_steps: 7 }))).toBe(7);
    expect(isStepEval(compileConfig({}), 10)).toBe(false);
  });
});
