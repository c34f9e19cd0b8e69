import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEFAULTS,
  DEFAULT_MODEL_PATH,
  REPO_ROOT,
  compileConfig,
  resolveOutputDir,
  toLoraSpec,
  type RunConfig,
} from '../../../shared/config.js';
import { ConfigError, ErrorCode, errorCodeOf } from '../../../shared/errors.js';

/** The error `fn` throws (fails the test when it does not throw). */
function thrown(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('compileConfig defaults', () => {
  const compiled = compileConfig({});

  it('fills in every documented default', () => {
    const expected: RunConfig = {
      model: resolve(REPO_ROOT, '../shared/models/stories260K.gguf'),
      dataset: 'spam-assassin',
      eval_dataset: null,
      eval_split_size: 300,
      text_column: 'text',
      label_column: 'label',
      task: 'classification',
      prompt_template: null,
      max_length: 128,
      max_train_samples: 1000,
      max_eval_samples: 300,
      pooling: 'mean',
      peft: {
        method: 'lora',
        r: 8,
        lora_alpha: 16,
        lora_dropout: 0,
        target_modules: ['q', 'v'],
        use_rslora: false,
        adapter_size: 16,
        adapter_non_linearity: 'relu',
        num_virtual_tokens: 8,
        trainable_top_layers: 0,
      },
      learning_rate: 1e-2,
      per_device_train_batch_size: 8,
      per_device_eval_batch_size: 32,
      num_train_epochs: 1,
      max_steps: -1,
      weight_decay: 0,
      adam_beta1: 0.9,
      adam_beta2: 0.999,
      adam_epsilon: 1e-8,
      warmup_ratio: 0,
      warmup_steps: 0,
      lr_scheduler_type: 'linear',
      max_grad_norm: 1,
      seed: 42,
      output_dir: 'runs/<timestamp>',
      logging_steps: 10,
      eval_on_start: false,
      eval_strategy: 'epoch',
      eval_steps: null,
      load_best_model_at_end: false,
      metric_for_best_model: null,
      greater_is_better: null,
      params_codec: 'fp32',
      grads_codec: 'fp32',
      save_strategy: 'epoch',
      save_steps: 500,
      save_total_limit: null,
      resume_from_checkpoint: null,
      params_codec_overrides: {},
      grads_codec_overrides: {},
      error_feedback: true,
      sparse_warmup_steps: 0,
      topk_scope: 'global',
      topk_selection: 'fisher',
      sparse_optimizer: 'worker',
      sparse_lookahead: true,
      sparse_final_flush: false,
      sparse_momentum_masking: false,
      sparse_residual_decay: 1,
      chunk_size_bytes: 4 * 1024 * 1024,
      workers: 2,
      port: 0,
      host: '127.0.0.1',
      backend: 'auto',
      step_timeout_ms: 60_000,
      join_timeout_ms: 60_000,
      heartbeat_interval_ms: 10_000,
      heartbeat_timeout_ms: 10_000,
      quarantine_strikes: 3,
      on_worker_loss: 'reassign',
      mode: 'data-parallel',
      num_rounds: 10,
      eval_every_rounds: 1,
      num_clients: -1,
      fraction_fit: 1,
      fraction_evaluate: 0,
      min_fit_clients: 2,
      min_evaluate_clients: 2,
      min_available_clients: 2,
      round_timeout: 300,
      min_completion_rate: 0.5,
      local_epochs: 1,
      local_steps: -1,
      client_optimizer: 'adamw',
      client_momentum: 0,
      proximal_mu: 0,
      strategy: 'fedavg',
      weight_by: 'examples',
      server_learning_rate: null,
      server_momentum: null,
      server_beta_1: null,
      server_beta_2: null,
      server_tau: null,
      trim_fraction: 0.2,
      num_byzantine: 1,
      num_to_keep: 0,
      clipping_radius: 1,
      clipping_iterations: 3,
      lora_aggregation: 'average',
      async_buffer_size: 0,
      staleness_exponent: 0.5,
      partition: 'iid',
      dirichlet_alpha: 0.5,
      labels_per_client: 2,
      partition_column: null,
      data_delivery: 'local',
      auth: 'none',
      auth_token: null,
      auth_token_file: null,
      auth_keys_file: null,
      tls_cert: null,
      tls_key: null,
    };
    expect(compiled).toEqual(expected);
    expect(DEFAULTS).toEqual(expected);
    expect(compileConfig(undefined)).toEqual(expected);
  });

  it('resolves the default model against the repository root', () => {
    expect(isAbsolute(DEFAULT_MODEL_PATH)).toBe(true);
    expect(existsSync(join(REPO_ROOT, 'package.json'))).toBe(true);
    expect(DEFAULT_MODEL_PATH).toBe(resolve(REPO_ROOT, '..', 'shared', 'models', 'stories260K.gguf'));
  });

  it('returns a deeply frozen object', () => {
    expect(Object.isFrozen(compiled)).toBe(true);
    expect(Object.isFrozen(compiled.peft)).toBe(true);
    expect(Object.isFrozen(compiled.peft.target_modules)).toBe(true);
  });

  it('treats a key whose value is undefined as not set', () => {
    const config = compileConfig({ seed: undefined, peft: { r: undefined } });
    expect(config.seed).toBe(42);
    expect(config.peft.r).toBe(8);
  });

  it('keeps given values and the defaults of the keys not given, at depth 2 too', () => {
    const config = compileConfig({ learning_rate: 1e-3, peft: { r: 4 }, eval_split_size: 0.1 });
    expect(config.learning_rate).toBe(1e-3);
    expect(config.peft.r).toBe(4);
    expect(config.peft.lora_alpha).toBe(16);
    expect(config.peft.target_modules).toEqual(['q', 'v']);
    expect(config.eval_split_size).toBe(0.1);
    expect(config.per_device_train_batch_size).toBe(8);
  });
});

describe('compileConfig unknown keys', () => {
  it('rejects an unknown top-level key and suggests the HF name', () => {
    const err = thrown(() => compileConfig({ lr: 0.1 }));
    expect(err.code).toBe(ErrorCode.CONFIG_UNKNOWN_KEY);
    expect(err.message).toContain('unknown config key "lr" (did you mean "learning_rate"?)');
  });

  it('names the full dotted key at depth 2', () => {
    const err = thrown(() => compileConfig({ peft: { rank: 16 } }));
    expect(err.code).toBe(ErrorCode.CONFIG_UNKNOWN_KEY);
    expect(err.message).toBe('unknown config key "peft.rank" (did you mean "peft.r"?)');
  });

  it.each([
    [{ learningRate: 1 }, 'learning_rate'],
    [{ max_lenght: 32 }, 'max_length'],
    [{ lora_alpha: 8 }, 'peft.lora_alpha'],
    [{ peft: { learning_rate: 1 } }, 'learning_rate'],
    [{ peft: { alpha: 1 } }, 'peft.lora_alpha'],
    [{ peft: { target_module: ['q'] } }, 'peft.target_modules'],
    [{ epochs: 3 }, 'num_train_epochs'],
  ])('suggests the intended key for %j', (raw, suggestion) => {
    const err = thrown(() => compileConfig(raw));
    expect(err.code).toBe(ErrorCode.CONFIG_UNKNOWN_KEY);
    expect(err.message).toContain(`(did you mean "${suggestion}"?)`);
  });

  it('makes no suggestion when nothing is close', () => {
    const err = thrown(() => compileConfig({ zebra: 1 }));
    expect(err.message).toBe('unknown config key "zebra"');
  });

  it('rejects prototype keys without polluting anything', () => {
    const err = thrown(() => compileConfig(JSON.parse('{"__proto__": {"polluted": 1}, "peft": {"constructor": 1}}')));
    expect(err.code).toBe(ErrorCode.CONFIG_UNKNOWN_KEY);
    expect(err.message).toContain('"__proto__"');
    expect(err.message).toContain('"peft.constructor"');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('reports unknown keys before invalid values, and lists both', () => {
    const err = thrown(() => compileConfig({ seed: -1, foo: 1 }));
    expect(err.code).toBe(ErrorCode.CONFIG_UNKNOWN_KEY);
    expect(err.message).toContain('"foo"');
    expect(err.message).toContain('invalid config key "seed"');
  });
});

describe('compileConfig invalid values', () => {
  it.each([
    [{ learning_rate: 'fast' }, 'learning_rate', '"fast" (string)', 'a number > 0'],
    [{ learning_rate: 0 }, 'learning_rate', '0 (number)', 'a number > 0'],
    [{ peft: { r: 0 } }, 'peft.r', '0 (number)', 'an integer >= 1'],
    [{ peft: { r: 2.5 } }, 'peft.r', '2.5 (number)', 'an integer >= 1'],
    [{ peft: { lora_dropout: 1 } }, 'peft.lora_dropout', '1 (number)', 'a number in [0, 1)'],
    [{ peft: { use_rslora: 'yes' } }, 'peft.use_rslora', '"yes" (string)', 'true or false'],
    [{ peft: { method: 'ia3' } }, 'peft.method', '"ia3" (string)', '"lora"'],
    [{ peft: 3 }, 'peft', '3 (number)', 'a mapping'],
    [{ task: 'regression' }, 'task', '"regression" (string)', '"classification", "causal-lm"'],
    [{ pooling: 'cls' }, 'pooling', '"cls" (string)', '"mean", "last"'],
    [{ max_length: 1 }, 'max_length', '1 (number)', 'an integer >= 2'],
    [{ max_steps: 0 }, 'max_steps', '0 (number)', 'or -1'],
    [{ max_train_samples: -2 }, 'max_train_samples', '-2 (number)', 'or -1 for no cap'],
    [{ eval_split_size: 1.5 }, 'eval_split_size', '1.5 (number)', 'a fraction in (0, 1)'],
    [{ eval_split_size: 0 }, 'eval_split_size', '0 (number)', 'a fraction in (0, 1)'],
    [{ port: 70000 }, 'port', '70000 (number)', '[0, 65535]'],
    [{ seed: -1 }, 'seed', '-1 (number)', 'an integer in [0, 4294967295]'],
    [{ backend: 'webgpu' }, 'backend', '"webgpu" (string)', '"auto", "tensorflow", "wasm", "cpu"'],
    [{ on_worker_loss: 'wait' }, 'on_worker_loss', '"wait" (string)', '"reassign", "survivors"'],
    [{ lr_scheduler_type: 'cosine' }, 'lr_scheduler_type', '"cosine" (string)', '"linear", "constant"'],
    [{ step_timeout_ms: '10s' }, 'step_timeout_ms', '"10s" (string)', 'milliseconds'],
    [{ heartbeat_interval_ms: 0 }, 'heartbeat_interval_ms', '0 (number)', 'milliseconds >= 1'],
    [{ heartbeat_timeout_ms: 2.5 }, 'heartbeat_timeout_ms', '2.5 (number)', 'milliseconds >= 1'],
    [{ workers: 0 }, 'workers', '0 (number)', 'an integer >= 1'],
    [{ host: '' }, 'host', '"" (string)', 'a host name'],
    [{ adam_beta2: 1 }, 'adam_beta2', '1 (number)', 'a number in [0, 1)'],
    [{ text_column: 7 }, 'text_column', '7 (number)', 'a column name'],
    [{ auth: 'password' }, 'auth', '"password" (string)', '"none", "token", "hmac"'],
    [{ auth: 'token', auth_token: 'short' }, 'auth_token', '"short" (string)', 'at least 16 characters'],
    [{ tls_cert: '' }, 'tls_cert', '"" (string)', 'a PEM certificate file path'],
  ])('rejects %j naming the key, the value and what was expected', (raw, key, value, expected) => {
    const err = thrown(() => compileConfig(raw));
    expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(err.message).toContain(`invalid config key "${key}"`);
    expect(err.message).toContain(`got ${value}`);
    expect(err.message).toContain(expected);
  });

  it('rejects a configuration that is not a mapping', () => {
    for (const raw of [null, 3, 'learning_rate: 1', [1, 2]]) {
      expect(errorCodeOf(thrown(() => compileConfig(raw)))).toBe(ErrorCode.CONFIG_INVALID);
    }
  });

  it('rejects a malformed dataset spec at compile time', () => {
    const err = thrown(() => compileConfig({ dataset: 'parquet:data.parquet' }));
    expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(err.message).toContain('invalid config key "dataset"');
    expect(err.message).toContain('"parquet"');
    expect(thrown(() => compileConfig({ eval_dataset: 'imdb' })).message).toContain('eval_dataset');
  });

  it('accepts every dataset spec form and a null eval_dataset', () => {
    for (const spec of ['spam-assassin', 'jsonl:data/a.jsonl', 'csv:/abs/b.csv', 'tsv:c.tsv']) {
      expect(compileConfig({ dataset: spec }).dataset).toBe(spec);
    }
    expect(compileConfig({ eval_dataset: null }).eval_dataset).toBeNull();
    expect(compileConfig({ eval_dataset: 'jsonl:e.jsonl' }).eval_dataset).toBe('jsonl:e.jsonl');
  });
});

describe('compileConfig conflicts', () => {
  it('rejects eval_dataset together with an explicit eval_split_size', () => {
    const err = thrown(() => compileConfig({ eval_dataset: 'jsonl:e.jsonl', eval_split_size: 100 }));
    expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(err.message).toContain('conflicting config keys "eval_dataset"');
    expect(err.message).toContain('"eval_split_size"');
  });

  it('recompiles a compiled config (run_config.json) to an equal config', () => {
    const once = compileConfig({ eval_dataset: 'jsonl:e.jsonl', peft: { target_modules: ['v_proj', 'q_proj'] }, warmup_ratio: 0.1 });
    expect(compileConfig(JSON.parse(JSON.stringify(once)))).toEqual(once);
  });

  it.each([
    [{ auth: 'token' }, 'auth', 'needs auth_token'],
    [{ auth: 'hmac' }, 'auth', 'needs auth_keys_file'],
    [{ auth_token: 'x'.repeat(16) }, 'auth', 'set auth=token'],
    [{ auth: 'token', auth_token: 'x'.repeat(16), auth_token_file: 't.txt' }, 'auth_token_file', 'not both'],
    [{ auth_keys_file: 'keys.json' }, 'auth', 'set auth=hmac'],
    [{ tls_cert: 'cert.pem' }, 'tls_cert', 'go together'],
    [{ tls_key: 'key.pem' }, 'tls_key', 'go together'],
  ])('S15: rejects the security keys %j that do not fit together', (raw, key, why) => {
    const err = thrown(() => compileConfig(raw));
    expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(err.message).toContain(`invalid config key "${key}"`);
    expect(err.message).toContain(why);
  });

  it('S15: accepts each authentication mode with what it needs, and TLS files as a pair', () => {
    expect(compileConfig({ auth: 'token', auth_token: 'x'.repeat(16) }).auth).toBe('token');
    expect(compileConfig({ auth: 'token', auth_token_file: 't.txt' }).auth_token_file).toBe('t.txt');
    expect(compileConfig({ auth: 'hmac', auth_keys_file: 'k.json' }).auth_keys_file).toBe('k.json');
    expect(compileConfig({ tls_cert: 'c.pem', tls_key: 'k.pem' }).tls_key).toBe('k.pem');
  });

  it('rejects both warm-up knobs at once', () => {
    const err = thrown(() => compileConfig({ warmup_steps: 10, warmup_ratio: 0.1 }));
    expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(err.message).toContain('"warmup_steps"');
    expect(err.message).toContain('"warmup_ratio"');
    expect(compileConfig({ warmup_steps: 10, warmup_ratio: 0 }).warmup_steps).toBe(10);
  });
});

describe('peft.target_modules normalisation', () => {
  it.each([
    [['q_proj', 'v_proj'], ['q', 'v']],
    [['v_proj', 'q_proj'], ['q', 'v']],
    [['down_proj', 'gate_proj', 'up_proj', 'o_proj', 'k_proj'], ['k', 'o', 'gate', 'up', 'down']],
    [['Q_PROJ', 'q', 'attn_q'], ['q']],
    [['model.layers.0.self_attn.k_proj'], ['k']],
    [['attn_output', 'ffn_down'], ['o', 'down']],
    ['all-linear', ['q', 'k', 'v', 'o', 'gate', 'up', 'down']],
    ['q_proj, v_proj', ['q', 'v']],
  ])('normalises %j to %j', (written, expected) => {
    const config = compileConfig({ peft: { target_modules: written } });
    expect(config.peft.target_modules).toEqual(expected);
  });

  it('rejects an unknown module name, naming its index', () => {
    const err = thrown(() => compileConfig({ peft: { target_modules: ['q_proj', 'lm_head'] } }));
    expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(err.message).toContain('invalid config key "peft.target_modules[1]": got "lm_head"');
  });

  it('rejects an empty list and non-string entries', () => {
    expect(thrown(() => compileConfig({ peft: { target_modules: [] } })).code).toBe(ErrorCode.CONFIG_INVALID);
    expect(thrown(() => compileConfig({ peft: { target_modules: ['q', 3] } })).code).toBe(ErrorCode.CONFIG_INVALID);
  });
});

describe('helpers', () => {
  it('toLoraSpec maps the snake_case section to the model type', () => {
    const config = compileConfig({ peft: { r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: ['k_proj'], use_rslora: true } });
    expect(toLoraSpec(config.peft)).toEqual({
      method: 'lora',
      r: 4,
      loraAlpha: 8,
      loraDropout: 0.1,
      targetModules: ['k'],
      useRslora: true,
    });
  });

  it('resolveOutputDir replaces the timestamp placeholder with a sortable UTC stamp', () => {
    const when = new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 678));
    expect(resolveOutputDir(DEFAULTS.output_dir, when)).toBe('runs/20250102-030405');
    expect(resolveOutputDir('out/fixed', when)).toBe('out/fixed');
  });
});
