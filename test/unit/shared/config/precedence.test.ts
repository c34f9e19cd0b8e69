/**
 * Every level of configuration precedence, one test each: defaults < file < environment < command line; and the
 * environment's typing and warnings.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../../shared/config/resolve.js';
import { DEFAULTS } from '../../../../shared/config.js';

const dir = mkdtempSync(join(tmpdir(), 'swarmtune-precedence-'));
const file = join(dir, 'run.yaml');
writeFileSync(file, 'learning_rate: 0.003\nseed: 7\npeft:\n  r: 4\n  lora_alpha: 32\n');
const quiet = { onWarning: () => undefined };

describe('configuration precedence', () => {
  it('level 0: defaults when nothing is given', async () => {
    const config = await resolveConfig({ env: {}, ...quiet });
    expect(config.learning_rate).toBe(DEFAULTS.learning_rate);
    expect(config.peft.r).toBe(DEFAULTS.peft.r);
  });

  it('level 1: the config file beats the defaults', async () => {
    const config = await resolveConfig({ file, env: {}, ...quiet });
    expect(config.learning_rate).toBe(0.003);
    expect(config.peft).toMatchObject({ r: 4, lora_alpha: 32 });
  });

  it('level 2: SWARMTUNE_<KEY> environment variables beat the file, key by key', async () => {
    const config = await resolveConfig({ file, env: { SWARMTUNE_LEARNING_RATE: '1e-4', SWARMTUNE_PEFT__R: '16' }, ...quiet });
    expect(config.learning_rate).toBe(1e-4);
    expect(config.peft).toMatchObject({ r: 16, lora_alpha: 32 });
    expect(config.seed).toBe(7);
  });

  it('level 3: --set beats the environment', async () => {
    const config = await resolveConfig({ file, env: { SWARMTUNE_LEARNING_RATE: '1e-4' }, sets: ['learning_rate=5e-5'], ...quiet });
    expect(config.learning_rate).toBe(5e-5);
  });
});

describe('environment variables', () => {
  it('are typed by the schema: a number-looking value stays a string where the key wants one', async () => {
    const config = await resolveConfig({ env: { SWARMTUNE_OUTPUT_DIR: '2024', SWARMTUNE_AUTH: 'token', SWARMTUNE_AUTH_TOKEN: '12345678901234567890' }, ...quiet });
    expect(config.output_dir).toBe('2024');
    expect(config.auth_token).toBe('12345678901234567890');
    const typed = await resolveConfig({ env: { SWARMTUNE_LEARNING_RATE: '1e-4', SWARMTUNE_EVAL_ON_START: 'true', SWARMTUNE_EVAL_STEPS: 'null' }, ...quiet });
    expect(typed.learning_rate).toBe(1e-4);
    expect(typed.eval_on_start).toBe(true);
    expect(typed.eval_steps).toBeNull();
  });

  it('a --set value is typed the same way', async () => {
    expect((await resolveConfig({ sets: ['output_dir=007'], ...quiet })).output_dir).toBe('007');
  });

  it('warn, with a suggestion, about unknown SWARMTUNE_* names that look like config keys, and ignore them', async () => {
    const warnings: string[] = [];
    const config = await resolveConfig({
      env: { SWARMTUNE_LEARNING_RATES: '1', SWARMTUNE_NUM_EPOCHS: '3', SWARMTUNE_LOCAL_WORKER: '1', SWARMTUNE_REJOIN_ATTEMPTS: '2', SWARMTUNE_FUZZ_SEED: '3' },
      onWarning: (line) => warnings.push(line),
    });
    expect(config.learning_rate).toBe(DEFAULTS.learning_rate);
    expect(warnings).toEqual([
      'warning: environment variable SWARMTUNE_LEARNING_RATES is not a configuration key and is ignored (did you mean SWARMTUNE_LEARNING_RATE, key "learning_rate"?)',
      'warning: environment variable SWARMTUNE_NUM_EPOCHS is not a configuration key and is ignored (did you mean SWARMTUNE_NUM_TRAIN_EPOCHS, key "num_train_epochs"?)',
    ]);
  });
});
