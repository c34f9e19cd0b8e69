import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../../shared/config/resolve.js';
import { ConfigError, ErrorCode } from '../../../../shared/errors.js';

describe('deprecated Hugging Face names', () => {
  it('accepts evaluation_strategy with a warning naming eval_strategy', async () => {
    const warnings: string[] = [];
    const config = await resolveConfig({ sets: ['evaluation_strategy=steps'], onWarning: (line) => warnings.push(line) });
    expect(config.eval_strategy).toBe('steps');
    expect(warnings).toEqual(['warning: config key "evaluation_strategy" (from --set evaluation_strategy) is deprecated; use "eval_strategy"']);
  });

  it('renames per_gpu_*_batch_size and no_cuda, from the environment too', async () => {
    const warnings: string[] = [];
    const config = await resolveConfig({
      env: { SWARMTUNE_PER_GPU_TRAIN_BATCH_SIZE: '4', SWARMTUNE_NO_CUDA: 'true' },
      sets: ['per_gpu_eval_batch_size=16'],
      onWarning: (line) => warnings.push(line),
    });
    expect(config.per_device_train_batch_size).toBe(4);
    expect(config.per_device_eval_batch_size).toBe(16);
    expect(config.backend).toBe('wasm');
    expect(warnings.join('\n')).toMatch(/"per_gpu_train_batch_size" \(from environment variable SWARMTUNE_PER_GPU_TRAIN_BATCH_SIZE\) is deprecated; use "per_device_train_batch_size"/);
    expect(warnings.join('\n')).toContain('use "backend"');
  });

  it('keeps precedence across spellings: --set eval_strategy beats an environment evaluation_strategy', async () => {
    const config = await resolveConfig({ env: { SWARMTUNE_EVALUATION_STRATEGY: 'no' }, sets: ['eval_strategy=steps'], onWarning: () => undefined });
    expect(config.eval_strategy).toBe('steps');
  });

  it('refuses a source that sets both the deprecated and the current name', async () => {
    const err = await resolveConfig({ sets: ['evaluation_strategy=no', 'eval_strategy=steps'], onWarning: () => undefined }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe(ErrorCode.CONFIG_INVALID);
    expect((err as ConfigError).message).toContain('keep only "eval_strategy"');
  });

  it('checks the value under the new name, naming where it came from', async () => {
    await expect(resolveConfig({ sets: ['evaluation_strategy=sometimes'], onWarning: () => undefined })).rejects.toThrow(/"eval_strategy" \(from --set evaluation_strategy\): got "sometimes"/);
  });
});
