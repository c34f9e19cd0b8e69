/**
 * `compileConfig`: the one gate from user-written configuration to a validated, normalised, frozen {@link RunConfig}.
 */
import type { core } from 'zod';
import { ConfigError, ErrorCode, OrchestratorError } from '../errors.js';
import { parseDatasetSpec } from '../data/spec.js';
import { LORA_MODULES } from '../model/types.js';
import { DEFAULTS, type PeftConfig, type RunConfig } from './run-config.js';
import { CONFIG_INPUT_SCHEMA, KNOWN_KEYS, expectedAt } from './schema.js';
import { suggestKey } from './suggest.js';
import { normaliseTargetModules } from './target-modules.js';
import { checkPeftMethodConflicts, checkPeftMethodKeys } from './peft-method.js';
import { checkTrainerSemantics } from './trainer-semantics.js';
import { parseCodecSpec } from '../codecs/spec.js';

/** Options of {@link compileConfig}. */
export interface CompileOptions {
  /**
   * Where the value of a dotted key (`peft.r`) came from, for error messages (`--set peft.r=abc`,
   * `environment variable SWARMTUNE_PEFT__R`, `file run.yaml`); undefined when unknown. @default none
   */
  readonly originOf?: (dottedKey: string) => string | undefined;
}

/**
 * Validate a configuration as written (snake_case keys, any subset of them) and return the complete, normalised,
 * deeply frozen {@link RunConfig}: defaults filled in, `peft.target_modules` normalised to short names in canonical
 * order, dataset specs checked, conflicts rejected. `undefined` compiles to the defaults.
 *
 * @throws ConfigError E_CONFIG_UNKNOWN_KEY for a key the schema does not know, at any depth; the message names the
 *   full dotted key and, when one is close, the key that was probably meant.
 * @throws ConfigError E_CONFIG_INVALID for an ill-typed or out-of-range value (naming the key, the value and what
 *   was expected), or for conflicting keys (`eval_dataset` with a non-default `eval_split_size`, `warmup_steps` > 0
 *   with `warmup_ratio` > 0). Compiling a compiled config returns an equal config.
 */
export function compileConfig(raw: unknown, options: CompileOptions = {}): RunConfig {
  const input = raw === undefined ? {} : raw;
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `configuration must be a mapping of keys to values, got ${describeValue(input)}`);
  }
  const parsed = CONFIG_INPUT_SCHEMA.safeParse(input);
  if (!parsed.success) throw issuesToError(parsed.error.issues, input, options);
  const written = parsed.data as Partial<Omit<RunConfig, 'peft'>> & { peft?: Partial<Omit<PeftConfig, 'target_modules'>> & { target_modules?: string | string[] } };

  // A key present with the value undefined (possible from code, never from a file) means "not set".
  const peft: PeftConfig = {
    ...DEFAULTS.peft,
    ...withoutUndefined(written.peft ?? {}),
    target_modules: compileTargetModules(written.peft?.target_modules, options),
  };
  const config: RunConfig = { ...DEFAULTS, ...withoutUndefined(written), peft };
  checkPeftMethodKeys(peft, (key) => originSuffix(key, options));
  checkPeftMethodConflicts(config, (key) => originSuffix(key, options));

  for (const key of ['dataset', 'eval_dataset'] as const) {
    const spec = config[key];
    if (spec === null) continue;
    try {
      parseDatasetSpec(spec);
    } catch (err) {
      const why = err instanceof OrchestratorError ? err.message : String(err);
      throw new ConfigError(ErrorCode.CONFIG_INVALID, `invalid config key "${key}"${originSuffix(key, options)}: ${why}`, { cause: err });
    }
  }
  checkCodecs(config, options);
  checkConflicts(config, options);
  return deepFreeze(config);
}

function compileTargetModules(written: string | readonly string[] | undefined, options: CompileOptions): PeftConfig['target_modules'] {
  if (written === undefined) return DEFAULTS.peft.target_modules;
  const names = typeof written === 'string' ? written.split(',').map((name) => name.trim()).filter((name) => name !== '') : written;
  const result = normaliseTargetModules(names);
  if (result.ok) return result.targets;
  const where = typeof written === 'string' ? 'peft.target_modules' : `peft.target_modules[${result.index}]`;
  throw new ConfigError(
    ErrorCode.CONFIG_INVALID,
    `invalid config key "${where}"${originSuffix('peft.target_modules', options)}: got ${JSON.stringify(result.name)}; expected a module name: one of ${LORA_MODULES.join(', ')}, their Hugging Face names (q_proj, ..., down_proj, embed_tokens), llama.cpp names (attn_q, ..., ffn_down, token_embd), or all-linear`,
  );
}

/** Codec strings are kept as written (so a compiled config recompiles) but must parse. */
function checkCodecs(config: RunConfig, options: CompileOptions): void {
  const check = (key: string, text: string) => {
    try {
      parseCodecSpec(text, `invalid config key "${key}"${originSuffix(key, options)}`);
    } catch (err) {
      throw new ConfigError(ErrorCode.CONFIG_INVALID, (err as Error).message, { cause: err });
    }
  };
  check('params_codec', config.params_codec);
  check('grads_codec', config.grads_codec);
  for (const [pattern, text] of Object.entries(config.params_codec_overrides)) check(`params_codec_overrides.${pattern}`, text);
  for (const [pattern, text] of Object.entries(config.grads_codec_overrides)) check(`grads_codec_overrides.${pattern}`, text);
}

function checkConflicts(config: RunConfig, options: CompileOptions): void {
  const conflict = (a: string, b: string, why: string): ConfigError =>
    new ConfigError(
      ErrorCode.CONFIG_INVALID,
      `conflicting config keys "${a}"${originSuffix(a, options)} and "${b}"${originSuffix(b, options)}: ${why}`,
    );
  // Compared with the default rather than "was it written", so that a compiled config (run_config.json) recompiles.
  if (config.eval_dataset !== null && config.eval_split_size !== DEFAULTS.eval_split_size) {
    throw conflict('eval_dataset', 'eval_split_size', 'eval_split_size splits "dataset" only when eval_dataset is not set; remove one');
  }
  if (config.warmup_steps > 0 && config.warmup_ratio > 0) {
    throw conflict('warmup_steps', 'warmup_ratio', 'set only one way of sizing the warm-up');
  }
  checkSecurityKeys(config, options);
  checkTrainerSemantics(config, (key) => originSuffix(key, options));
}

/** Authentication and TLS keys that only make sense together (see coordinator/auth-settings.ts). */
function checkSecurityKeys(config: RunConfig, options: CompileOptions): void {
  const invalid = (key: string, why: string): ConfigError =>
    new ConfigError(ErrorCode.CONFIG_INVALID, `invalid config key "${key}"${originSuffix(key, options)}: ${why}`);
  const hasToken = config.auth_token !== null || config.auth_token_file !== null;
  if (config.auth_token !== null && config.auth_token_file !== null) throw invalid('auth_token_file', 'set either auth_token or auth_token_file, not both');
  if (config.auth === 'token' && !hasToken) throw invalid('auth', '"token" needs auth_token (or env SWARMTUNE_AUTH_TOKEN) or auth_token_file');
  if (config.auth === 'hmac' && config.auth_keys_file === null) throw invalid('auth', '"hmac" needs auth_keys_file (a JSON file of key id to secret)');
  if (config.auth !== 'token' && hasToken) throw invalid('auth', `a run token is set but auth is "${config.auth}"; set auth=token (a token that is never checked protects nothing)`);
  if (config.auth !== 'hmac' && config.auth_keys_file !== null) throw invalid('auth', `auth_keys_file is set but auth is "${config.auth}"; set auth=hmac`);
  if ((config.tls_cert === null) !== (config.tls_key === null)) throw invalid(config.tls_cert === null ? 'tls_key' : 'tls_cert', 'tls_cert and tls_key go together');
}

function issuesToError(issues: readonly core.$ZodIssue[], input: object, options: CompileOptions): ConfigError {
  const unknown: string[] = [];
  const invalid: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const parentPath = dotted(issue.path);
      for (const key of issue.keys) {
        const full = parentPath === '' ? key : `${parentPath}.${key}`;
        const suggestion = suggestKey(parentPath, key, KNOWN_KEYS);
        const hint = suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`;
        unknown.push(`unknown config key "${full}"${hint}${originSuffix(full, options)}`);
      }
    } else {
      const key = dotted(issue.path);
      const expected = expectedAt(issue.path) ?? issue.message;
      invalid.push(`invalid config key "${key}"${originSuffix(stripIndices(key), options)}: got ${describeValue(valueAt(input, issue.path))}; expected ${expected}`);
    }
  }
  if (unknown.length > 0) return new ConfigError(ErrorCode.CONFIG_UNKNOWN_KEY, [...unknown, ...invalid].join('; '));
  return new ConfigError(ErrorCode.CONFIG_INVALID, invalid.join('; '));
}

function originSuffix(dottedKey: string, options: CompileOptions): string {
  const origin = options.originOf?.(dottedKey);
  return origin === undefined ? '' : ` (from ${origin})`;
}

/** `['peft', 'target_modules', 2]` → `peft.target_modules[2]`. */
function dotted(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? String(segment) : `.${String(segment)}`;
  }
  return out;
}

function stripIndices(key: string): string {
  return key.replace(/\[\d+\]/g, '');
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current = root;
  for (const segment of path) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<PropertyKey, unknown>)[segment];
  }
  return current;
}

/** A short, unambiguous rendering of a user value: `"abc" (string)`, `-1 (number)`, `[1,2] (array)`. */
function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const type = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  let text: string;
  try {
    text = typeof value === 'number' && !Number.isFinite(value) ? String(value) : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  if (text.length > 80) text = `${text.slice(0, 77)}...`;
  return type === 'null' ? 'null' : `${text} (${type})`;
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, inner]) => inner !== undefined)) as Partial<T>;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
