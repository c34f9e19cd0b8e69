/**
 * Where configuration comes from before it is compiled: a YAML or JSON file, `--set key=value` overrides, and
 * `SWARMTUNE_*` environment variables. Each source is turned into a nested plain object of snake_case keys, plus,
 * for error messages, where each leaf key came from.
 */
import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import YAML, { LineCounter, isMap, isScalar, type Node as YamlNode } from 'yaml';
import { ConfigError, ErrorCode } from '../errors.js';
import { KNOWN_KEYS, fieldSchemaAt } from './schema.js';
import { DEPRECATED_KEYS } from './deprecated.js';
import { suggestKey } from './suggest.js';

/**
 * `SWARMTUNE_*` variables that are not configuration keys but settings of a program (worker flags' env fallbacks,
 * docker-compose, test knobs): never warned about.
 */
export const NON_CONFIG_ENV_NAMES: ReadonlySet<string> = new Set([
  'local_worker',
  'models',
  'rejoin_attempts',
  'rejoin_patience_ms',
  'ping_timeout_ms',
  'auth_key_id',
  'no_simd',
]);

/** Prefix of the environment variables that are configuration keys. */
export const ENV_PREFIX = 'SWARMTUNE_';

/** A nested configuration object as written, and the origin of each leaf, by dotted key. */
export interface ConfigLayer {
  readonly values: Record<string, unknown>;
  readonly origins: ReadonlyMap<string, string>;
}

/** Keys that could reach an object's prototype; never valid configuration keys. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Read a configuration file: YAML for `.yaml`/`.yml`, JSON for `.json`. An empty YAML file is `{}`.
 *
 * @param path file path, absolute or relative to the process cwd.
 * @returns the file's top-level mapping, not yet validated (see `compileConfig`).
 * @throws ConfigError E_CONFIG_FILE when the file is missing or unreadable, has another extension, does not parse
 *   (the message names the path and the line), or does not hold a mapping at the top level.
 */
export async function loadConfigFile(path: string): Promise<Record<string, unknown>> {
  return (await readConfigFileLayer(path)).values;
}

/** {@link loadConfigFile}, with the origin of each key (`file PATH line N` for YAML, `file PATH` for JSON). */
export async function readConfigFileLayer(path: string): Promise<ConfigLayer> {
  const absolute = resolve(path);
  const extension = extname(absolute).toLowerCase();
  if (!['.yaml', '.yml', '.json'].includes(extension)) {
    throw new ConfigError(ErrorCode.CONFIG_FILE, `config file ${absolute}: unsupported extension "${extension}"; expected .yaml, .yml or .json`);
  }
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'not found' : `cannot be read (${code ?? String(err)})`;
    throw new ConfigError(ErrorCode.CONFIG_FILE, `config file ${absolute} ${why}`, { cause: err });
  }
  const origins = new Map<string, string>();
  let parsed: unknown;
  if (extension === '.json') {
    parsed = parseJson(text, absolute);
    for (const key of leafKeys(parsed)) origins.set(key, `file ${absolute}`);
  } else {
    const lineCounter = new LineCounter();
    const doc = YAML.parseDocument(text, { lineCounter, prettyErrors: false });
    const error = doc.errors[0];
    if (error !== undefined) {
      const { line, col } = lineCounter.linePos(error.pos[0]);
      throw new ConfigError(ErrorCode.CONFIG_FILE, `config file ${absolute} line ${line}, column ${col}: ${error.message.split('\n')[0]}`, { cause: error });
    }
    parsed = doc.toJS() ?? {};
    recordYamlOrigins(doc.contents, '', absolute, lineCounter, origins);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(ErrorCode.CONFIG_FILE, `config file ${absolute} must hold a mapping of keys to values at the top level`);
  }
  return { values: parsed as Record<string, unknown>, origins };
}

/**
 * Turn `--set` arguments into a nested object: `["peft.r=16", "learning_rate=1e-3", "peft.target_modules=[q,v]"]`
 * → `{ peft: { r: 16, target_modules: ['q', 'v'] }, learning_rate: 0.001 }`. Values are parsed as YAML 1.2 scalars and
 * flow collections (`16` number, `true` boolean, `null`/empty null, `[q, v]` list, anything else a string).
 * A later argument for the same key wins.
 *
 * @throws ConfigError E_CONFIG_INVALID for an argument without `=`, a malformed key, or a value that is not YAML.
 * @throws ConfigError E_CONFIG_UNKNOWN_KEY for a key segment that could reach a prototype (`__proto__`).
 */
export function parseSetOverrides(sets: readonly string[]): Record<string, unknown> {
  return setOverridesLayer(sets).values;
}

/** {@link parseSetOverrides}, with the origin of each key (`--set KEY`). */
export function setOverridesLayer(sets: readonly string[]): ConfigLayer {
  const values: Record<string, unknown> = {};
  const origins = new Map<string, string>();
  for (const argument of sets) {
    const equals = argument.indexOf('=');
    if (equals < 0) {
      throw new ConfigError(ErrorCode.CONFIG_INVALID, `malformed --set "${argument}": expected KEY=VALUE (e.g. peft.r=16)`);
    }
    const key = argument.slice(0, equals).trim();
    if (!/^[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*$/.test(key)) {
      throw new ConfigError(ErrorCode.CONFIG_INVALID, `malformed --set "${argument}": "${key}" is not a dotted key such as peft.r`);
    }
    const value = typedValue(argument.slice(equals + 1), key.split('.'), `--set "${argument}"`);
    setPath(values, key.split('.'), value, `--set ${key}`);
    for (const leaf of leafKeys(value, key)) origins.set(leaf, `--set ${key}`);
  }
  return { values, origins };
}

/**
 * Configuration from environment variables. `SWARMTUNE_LEARNING_RATE=1e-3` sets `learning_rate`; a double underscore
 * descends into a mapping, so `SWARMTUNE_PEFT__R=16` sets `peft.r` and `SWARMTUNE_PEFT__TARGET_MODULES=[q,v]` sets
 * `peft.target_modules`. Names are lower-cased after the prefix; values are parsed as in {@link parseSetOverrides}.
 *
 * A value is typed by the key's schema: YAML first (`16` a number, `true` a boolean), but kept as the string written
 * when only the string fits the key (`SWARMTUNE_AUTH_TOKEN=1234567890123456789`, `SWARMTUNE_OUTPUT_DIR=2024`).
 *
 * Only variables whose first segment is a top-level configuration key (or a deprecated one, renamed with a warning
 * by `resolveConfig`) are read; others with the prefix (`SWARMTUNE_LOCAL_WORKER`, `SWARMTUNE_MODELS` in
 * docker-compose) are not configuration and are ignored, with a warning through `warn` when the name is close to a
 * configuration key (`SWARMTUNE_LEARNING_RATES` → did you mean SWARMTUNE_LEARNING_RATE?) and not one of
 * {@link NON_CONFIG_ENV_NAMES}. Below a known key nothing is ignored: `SWARMTUNE_PEFT__RANK` reaches compilation and
 * fails as unknown key `peft.rank`.
 *
 * @param env the environment, usually `process.env`.
 * @param prefix @default ENV_PREFIX ('SWARMTUNE_')
 * @param warn receives one line per ignored variable that looks like a misspelt key. @default none
 * @throws ConfigError E_CONFIG_INVALID for a malformed name (`SWARMTUNE_PEFT____R`) or a value that is not YAML.
 */
export function envOverrides(
  env: Readonly<Record<string, string | undefined>>,
  prefix: string = ENV_PREFIX,
  warn?: (line: string) => void,
): Record<string, unknown> {
  return envLayer(env, prefix, warn).values;
}

/** {@link envOverrides}, with the origin of each key (`environment variable NAME`). */
export function envLayer(
  env: Readonly<Record<string, string | undefined>>,
  prefix: string = ENV_PREFIX,
  warn?: (line: string) => void,
): ConfigLayer {
  const values: Record<string, unknown> = {};
  const origins = new Map<string, string>();
  const topLevelKeys = KNOWN_KEYS[''];
  for (const name of Object.keys(env).sort()) {
    const raw = env[name];
    if (!name.startsWith(prefix) || raw === undefined) continue;
    const segments = name.slice(prefix.length).toLowerCase().split('__');
    if (!topLevelKeys.includes(segments[0]) && !Object.hasOwn(DEPRECATED_KEYS, segments[0])) {
      warnIfNearKey(name, segments, prefix, warn);
      continue;
    }
    if (segments.some((segment) => !/^[a-z][a-z0-9_]*$/.test(segment))) {
      throw new ConfigError(ErrorCode.CONFIG_INVALID, `malformed environment variable ${name}: expected ${prefix}KEY or ${prefix}SECTION__KEY`);
    }
    const origin = `environment variable ${name}`;
    const value = typedValue(raw, segments, origin);
    setPath(values, segments, value, origin);
    for (const leaf of leafKeys(value, segments.join('.'))) origins.set(leaf, origin);
  }
  return { values, origins };
}

/**
 * Merge configuration layers, later ones winning: mappings merge key by key at every depth; lists, scalars and
 * null replace. The inputs are not modified.
 *
 * @throws ConfigError E_CONFIG_UNKNOWN_KEY for a key that could reach a prototype (`__proto__`, `constructor`).
 */
export function mergeLayers(...layers: readonly Record<string, unknown>[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const layer of layers) mergeInto(out, layer);
  return out;
}

function mergeInto(target: Record<string, unknown>, source: Record<string, unknown>, prefix = ''): void {
  for (const [key, value] of Object.entries(source)) {
    const full = prefix === '' ? key : `${prefix}.${key}`;
    if (FORBIDDEN_KEYS.has(key)) throw new ConfigError(ErrorCode.CONFIG_UNKNOWN_KEY, `unknown config key "${full}"`);
    const existing = target[key];
    if (isPlainObject(value)) {
      const nested: Record<string, unknown> = isPlainObject(existing) ? existing : {};
      target[key] = nested;
      mergeInto(nested, value, full);
    } else {
      target[key] = value;
    }
  }
}

function setPath(root: Record<string, unknown>, segments: readonly string[], value: unknown, origin: string): void {
  let current = root;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    if (FORBIDDEN_KEYS.has(segment)) {
      throw new ConfigError(ErrorCode.CONFIG_UNKNOWN_KEY, `unknown config key "${segments.slice(0, i + 1).join('.')}" (from ${origin})`);
    }
    if (i === segments.length - 1) {
      current[segment] = value;
    } else {
      const next = current[segment];
      current = isPlainObject(next) ? next : (current[segment] = {}) as Record<string, unknown>;
    }
  }
}

/** A prefixed variable that is not configuration but looks like a misspelt key: a warning naming the likely key. */
function warnIfNearKey(name: string, segments: readonly string[], prefix: string, warn: ((line: string) => void) | undefined): void {
  if (warn === undefined || segments.length === 0 || NON_CONFIG_ENV_NAMES.has(segments.join('__'))) return;
  const suggestion = suggestKey('', segments[0], KNOWN_KEYS);
  if (suggestion === undefined) return;
  const variable = `${prefix}${suggestion.split('.').join('__').toUpperCase()}${segments.length > 1 && !suggestion.includes('.') ? `__${segments.slice(1).join('__').toUpperCase()}` : ''}`;
  warn(`warning: environment variable ${name} is not a configuration key and is ignored (did you mean ${variable}, key "${suggestion}"?)`);
}

/**
 * A `--set` or environment value typed by its key's schema: the YAML reading, unless only the text as written fits
 * the key (a numeric-looking token or folder name for a string key).
 */
function typedValue(text: string, segments: readonly string[], origin: string): unknown {
  const value = parseYamlValue(text, origin);
  if (typeof value === 'string') return value;
  const schema = fieldSchemaAt(segments);
  if (schema !== undefined && !schema.safeParse(value).success && schema.safeParse(text).success) return text;
  return value;
}

function parseYamlValue(text: string, origin: string): unknown {
  try {
    return YAML.parse(text) as unknown;
  } catch (err) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `${origin}: value is not a valid YAML value (${(err as Error).message.split('\n')[0]})`, { cause: err });
  }
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const message = (err as Error).message;
    const position = /position (\d+)/.exec(message);
    let where = '';
    if (position !== null) {
      const before = text.slice(0, Number(position[1]));
      const line = before.split('\n').length;
      where = ` line ${line}, column ${before.length - before.lastIndexOf('\n')}`;
    } else if (text.trim() === '') {
      where = ' line 1';
    }
    throw new ConfigError(ErrorCode.CONFIG_FILE, `config file ${path}${where}: invalid JSON (${message})`, { cause: err });
  }
}

function recordYamlOrigins(node: YamlNode | null, prefix: string, path: string, lines: LineCounter, origins: Map<string, string>): void {
  if (!isMap(node)) return;
  for (const pair of node.items) {
    if (!isScalar(pair.key)) continue;
    const key = prefix === '' ? String(pair.key.value) : `${prefix}.${String(pair.key.value)}`;
    const start = pair.key.range?.[0];
    origins.set(key, start === undefined ? `file ${path}` : `file ${path} line ${lines.linePos(start).line}`);
    recordYamlOrigins(pair.value as YamlNode | null, key, path, lines, origins);
  }
}

/** Dotted keys of every leaf under `value` (the value itself when it is not a mapping). */
function leafKeys(value: unknown, prefix = ''): string[] {
  if (!isPlainObject(value) || Object.keys(value).length === 0) return prefix === '' ? [] : [prefix];
  return Object.entries(value).flatMap(([key, inner]) => leafKeys(inner, prefix === '' ? key : `${prefix}.${key}`));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
