/**
 * The zod schema of a configuration as written (every key optional, no unknown keys), with a human description of
 * what each key expects, used in error messages.
 */
import { z } from 'zod';
import {
  BACKENDS,
  DATA_DELIVERIES,
  FEDERATED_STRATEGIES,
  LORA_AGGREGATIONS,
  LR_SCHEDULER_TYPES,
  ON_WORKER_LOSS,
  TOPK_SCOPES,
  TOPK_SELECTIONS,
  SPARSE_OPTIMIZERS,
  PARTITIONS,
  TRAINING_MODES,
  SAVE_STRATEGIES,
  AUTH_MODES,
  EVAL_STRATEGIES,
} from './run-config.js';
import { ADAPTER_NON_LINEARITIES, PEFT_METHODS } from '../model/types.js';

/** A key's schema and the words that say what it expects (`an integer >= 1`). */
export interface FieldSpec {
  readonly schema: z.ZodType;
  readonly expected: string;
}

const CODEC_WORDS = 'a codec: fp32, fp16, bf16, int8, int8:BLOCK, topk or topk:DENSITY';
const field = (schema: z.ZodType, expected: string): FieldSpec => ({ schema, expected });
const oneOf = (values: readonly string[]): string => `one of ${values.map((v) => `"${v}"`).join(', ')}`;
const positiveInt = (what = 'an integer >= 1'): FieldSpec => field(z.number().int().min(1), what);
const nonEmptyString = (what: string): FieldSpec => field(z.string().min(1), what);
const unitInterval = (): FieldSpec => field(z.number().min(0).lt(1), 'a number in [0, 1)');
const cap = (): FieldSpec =>
  field(
    z.number().int().refine((v) => v === -1 || v >= 1),
    'an integer >= 1, or -1 for no cap',
  );

/** The keys of the `peft` mapping. */
export const PEFT_FIELDS: Readonly<Record<string, FieldSpec>> = {
  method: field(z.enum(PEFT_METHODS), oneOf(PEFT_METHODS)),
  r: positiveInt(),
  lora_alpha: field(z.number().positive(), 'a number > 0'),
  lora_dropout: unitInterval(),
  target_modules: field(
    z.union([z.string().min(1), z.array(z.string()).min(1)]),
    'a non-empty list of module names (q, k, v, o, gate, up, down, embed, or q_proj, ..., embed_tokens, or all-linear)',
  ),
  use_rslora: field(z.boolean(), 'true or false'),
  adapter_size: positiveInt(),
  adapter_non_linearity: field(z.enum(ADAPTER_NON_LINEARITIES), oneOf(ADAPTER_NON_LINEARITIES)),
  num_virtual_tokens: positiveInt(),
  trainable_top_layers: field(z.number().int().min(0), 'an integer >= 0'),
};

/** The top-level keys; `peft` is described by {@link PEFT_FIELDS}. */
export const TOP_FIELDS: Readonly<Record<string, FieldSpec>> = {
  model: nonEmptyString('a path to a model (.gguf file)'),
  dataset: nonEmptyString('a dataset spec (spam-assassin, jsonl:PATH, csv:PATH, tsv:PATH)'),
  eval_dataset: field(z.string().min(1).nullable(), 'a dataset spec (spam-assassin, jsonl:PATH, csv:PATH, tsv:PATH) or null'),
  eval_split_size: field(
    z.number().positive().refine((v) => v < 1 || Number.isInteger(v)),
    'an integer >= 1 (a count) or a fraction in (0, 1)',
  ),
  text_column: nonEmptyString('a column name'),
  label_column: nonEmptyString('a column name'),
  task: field(
    z.enum(['classification', 'causal-lm', 'instruction']),
    `${oneOf(['classification', 'causal-lm', 'instruction'])} (causal-lm on a BERT model is masked-language modelling)`,
  ),
  prompt_template: field(z.string().min(1).nullable(), 'a template ending with {output} (with {instruction}, {input}) or null for Alpaca\'s'),
  max_length: field(z.number().int().min(2), 'an integer >= 2'),
  max_train_samples: cap(),
  max_eval_samples: cap(),
  pooling: field(z.enum(['mean', 'last']), oneOf(['mean', 'last'])),
  peft: field(z.record(z.string(), z.unknown()), 'a mapping of LoRA settings'),
  learning_rate: field(z.number().positive(), 'a number > 0'),
  per_device_train_batch_size: positiveInt(),
  per_device_eval_batch_size: positiveInt(),
  num_train_epochs: field(z.number().positive(), 'a number > 0'),
  max_steps: field(
    z.number().int().refine((v) => v === -1 || v >= 1),
    'an integer >= 1, or -1 to train for num_train_epochs',
  ),
  weight_decay: field(z.number().min(0), 'a number >= 0'),
  adam_beta1: unitInterval(),
  adam_beta2: unitInterval(),
  adam_epsilon: field(z.number().positive(), 'a number > 0'),
  warmup_ratio: unitInterval(),
  warmup_steps: field(z.number().int().min(0), 'an integer >= 0'),
  lr_scheduler_type: field(z.enum(LR_SCHEDULER_TYPES), oneOf(LR_SCHEDULER_TYPES)),
  max_grad_norm: field(z.number().min(0), 'a number >= 0 (0 disables clipping)'),
  seed: field(z.number().int().min(0).max(2 ** 32 - 1), 'an integer in [0, 4294967295]'),
  output_dir: nonEmptyString('a folder path'),
  logging_steps: positiveInt(),
  save_strategy: field(z.enum(SAVE_STRATEGIES), oneOf(SAVE_STRATEGIES)),
  save_steps: positiveInt(),
  save_total_limit: field(z.number().int().min(1).nullable(), 'an integer >= 1, or null to keep every checkpoint'),
  resume_from_checkpoint: field(z.union([z.boolean(), z.string().min(1)]).nullable(), 'true, false, a checkpoint or run folder path, or null'),
  eval_on_start: field(z.boolean(), 'true or false'),
  eval_strategy: field(z.enum(EVAL_STRATEGIES), oneOf(EVAL_STRATEGIES)),
  eval_steps: field(z.number().int().min(1).nullable(), 'an integer >= 1, or null for logging_steps'),
  load_best_model_at_end: field(z.boolean(), 'true or false'),
  metric_for_best_model: field(z.string().min(1).nullable(), 'a metric name (loss, accuracy, eval_loss, eval_accuracy) or null for eval_loss'),
  greater_is_better: field(z.boolean().nullable(), 'true, false, or null to decide from the metric name'),
  params_codec: nonEmptyString(CODEC_WORDS),
  grads_codec: nonEmptyString(CODEC_WORDS),
  params_codec_overrides: field(z.record(z.string().min(1), z.string().min(1)), `a mapping of tensor-name patterns to codecs (${CODEC_WORDS})`),
  grads_codec_overrides: field(z.record(z.string().min(1), z.string().min(1)), `a mapping of tensor-name patterns to codecs (${CODEC_WORDS})`),
  error_feedback: field(z.boolean(), 'true or false'),
  chunk_size_bytes: field(z.number().int().min(64 * 1024).max(64 * 1024 * 1024), 'an integer from 65536 (64 KiB) to 67108864 (64 MiB)'),
  sparse_warmup_steps: field(z.number().int().min(0), 'an integer >= 0'),
  topk_scope: field(z.enum(TOPK_SCOPES), oneOf(TOPK_SCOPES)),
  topk_selection: field(z.enum(TOPK_SELECTIONS), oneOf(TOPK_SELECTIONS)),
  sparse_optimizer: field(z.enum(SPARSE_OPTIMIZERS), oneOf(SPARSE_OPTIMIZERS)),
  sparse_lookahead: field(z.boolean(), 'true or false'),
  sparse_final_flush: field(z.boolean(), 'true or false'),
  sparse_momentum_masking: field(z.boolean(), 'true or false'),
  sparse_residual_decay: field(z.number().min(0).max(1), 'a number in [0, 1]'),
  workers: positiveInt(),
  port: field(z.number().int().min(0).max(65_535), 'an integer port in [0, 65535] (0 = any free port)'),
  host: nonEmptyString('a host name or IP address'),
  backend: field(z.enum(BACKENDS), oneOf(BACKENDS)),
  step_timeout_ms: positiveInt('an integer number of milliseconds >= 1'),
  join_timeout_ms: positiveInt('an integer number of milliseconds >= 1'),
  heartbeat_interval_ms: positiveInt('an integer number of milliseconds >= 1'),
  heartbeat_timeout_ms: positiveInt('an integer number of milliseconds >= 1'),
  quarantine_strikes: field(z.number().int().min(0), 'an integer >= 0 (0 = never quarantine)'),
  on_worker_loss: field(z.enum(ON_WORKER_LOSS), oneOf(ON_WORKER_LOSS)),
  mode: field(z.enum(TRAINING_MODES), oneOf(TRAINING_MODES)),
  num_rounds: positiveInt(),
  eval_every_rounds: field(z.number().int().min(0), 'an integer >= 0 (0 = after the last round only)'),
  num_clients: cap(),
  fraction_fit: field(z.number().gt(0).max(1), 'a number in (0, 1]'),
  fraction_evaluate: field(z.number().min(0).max(1), 'a number in [0, 1]'),
  min_fit_clients: positiveInt(),
  min_evaluate_clients: positiveInt(),
  min_available_clients: positiveInt(),
  round_timeout: field(z.number().positive(), 'a number of seconds > 0'),
  min_completion_rate: field(z.number().min(0).max(1), 'a number in [0, 1]'),
  local_epochs: field(z.number().positive(), 'a number > 0'),
  local_steps: cap(),
  client_optimizer: field(z.enum(['adamw', 'sgd']), oneOf(['adamw', 'sgd'])),
  client_momentum: unitInterval(),
  proximal_mu: field(z.number().min(0), 'a number >= 0'),
  strategy: field(z.enum(FEDERATED_STRATEGIES), oneOf(FEDERATED_STRATEGIES)),
  weight_by: field(z.enum(['examples', 'tokens']), oneOf(['examples', 'tokens'])),
  server_learning_rate: field(z.number().positive().nullable(), 'a number > 0, or null for the strategy default'),
  server_momentum: field(z.number().min(0).lt(1).nullable(), 'a number in [0, 1), or null for the strategy default'),
  server_beta_1: field(z.number().min(0).lt(1).nullable(), 'a number in [0, 1), or null for the strategy default'),
  server_beta_2: field(z.number().min(0).lt(1).nullable(), 'a number in [0, 1), or null for the strategy default'),
  server_tau: field(z.number().positive().nullable(), 'a number > 0, or null for the strategy default'),
  trim_fraction: field(z.number().min(0).lt(0.5), 'a number in [0, 0.5)'),
  num_byzantine: field(z.number().int().min(0), 'an integer >= 0'),
  num_to_keep: field(z.number().int().min(0), 'an integer >= 0 (0 = n - f)'),
  clipping_radius: field(z.number().positive(), 'a number > 0'),
  clipping_iterations: positiveInt(),
  lora_aggregation: field(z.enum(LORA_AGGREGATIONS), oneOf(LORA_AGGREGATIONS)),
  async_buffer_size: field(z.number().int().min(0), 'an integer >= 0 (0 = synchronous rounds)'),
  staleness_exponent: field(z.number().min(0), 'a number >= 0'),
  partition: field(z.enum(PARTITIONS), oneOf(PARTITIONS)),
  dirichlet_alpha: field(z.number().positive(), 'a number > 0'),
  labels_per_client: positiveInt(),
  partition_column: field(z.string().min(1).nullable(), 'a column name or null'),
  data_delivery: field(z.enum(DATA_DELIVERIES), oneOf(DATA_DELIVERIES)),
  auth: field(z.enum(AUTH_MODES), oneOf(AUTH_MODES)),
  auth_token: field(z.string().min(16).nullable(), 'a token of at least 16 characters, or null'),
  auth_token_file: field(z.string().min(1).nullable(), 'a file path or null'),
  auth_keys_file: field(z.string().min(1).nullable(), 'a file path or null'),
  tls_cert: field(z.string().min(1).nullable(), 'a PEM certificate file path or null'),
  tls_key: field(z.string().min(1).nullable(), 'a PEM private key file path or null'),
};

/** Known keys by the dotted path of the mapping that holds them (for "did you mean"). */
export const KNOWN_KEYS: Readonly<Record<string, readonly string[]>> = {
  '': Object.keys(TOP_FIELDS),
  peft: Object.keys(PEFT_FIELDS),
};

function strictOptional(fields: Readonly<Record<string, FieldSpec>>): z.ZodType {
  const shape: Record<string, z.ZodType> = {};
  for (const [key, spec] of Object.entries(fields)) shape[key] = spec.schema.optional();
  return z.strictObject(shape);
}

/** The schema of `peft` as written: every key optional, unknown keys rejected. */
export const PEFT_INPUT_SCHEMA = strictOptional(PEFT_FIELDS);

/** The schema of a whole configuration as written: every key optional, unknown keys rejected at every depth. */
export const CONFIG_INPUT_SCHEMA = z.strictObject({
  ...Object.fromEntries(Object.entries(TOP_FIELDS).map(([key, spec]) => [key, spec.schema.optional()])),
  peft: PEFT_INPUT_SCHEMA.optional(),
});

/** The schema of the key at dotted `segments` (`['peft', 'r']`), or undefined for a key the schema does not describe. */
export function fieldSchemaAt(segments: readonly string[]): z.ZodType | undefined {
  if (segments.length === 1) return Object.hasOwn(TOP_FIELDS, segments[0]) && segments[0] !== 'peft' ? TOP_FIELDS[segments[0]].schema : undefined;
  if (segments.length === 2 && segments[0] === 'peft') return Object.hasOwn(PEFT_FIELDS, segments[1]) ? PEFT_FIELDS[segments[1]].schema : undefined;
  return undefined;
}

/**
 * What the key at `path` expects, in words, or undefined for a path the schema does not describe.
 * Array indices in the path are skipped (`['peft', 'target_modules', 2]` describes `target_modules`).
 */
export function expectedAt(path: readonly PropertyKey[]): string | undefined {
  const keys = path.filter((segment): segment is string => typeof segment === 'string');
  if (keys.length === 0) return undefined;
  if (keys[0] === 'peft' && keys.length >= 2) return Object.hasOwn(PEFT_FIELDS, keys[1]) ? PEFT_FIELDS[keys[1]].expected : undefined;
  return Object.hasOwn(TOP_FIELDS, keys[0]) ? TOP_FIELDS[keys[0]].expected : undefined;
}
