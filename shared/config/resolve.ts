/**
 * `resolveConfig`: every configuration source, merged by precedence and compiled once.
 */
import { compileConfig } from './compile.js';
import type { RunConfig } from './run-config.js';
import { ENV_PREFIX, envLayer, mergeLayers, readConfigFileLayer, setOverridesLayer, type ConfigLayer } from './sources.js';
import { renameDeprecatedKeys } from './deprecated.js';

/** The sources {@link resolveConfig} merges; all optional. */
export interface ConfigSources {
  /** A YAML (`.yaml`/`.yml`) or JSON (`.json`) configuration file. @default none */
  readonly file?: string;
  /** Environment variables, usually `process.env`; only names starting with `envPrefix` are read. @default none */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** `--set KEY=VALUE` arguments, in command-line order (a later one wins). @default none */
  readonly sets?: readonly string[];
  /** @default ENV_PREFIX ('SWARMTUNE_') */
  readonly envPrefix?: string;
  /**
   * Receives warnings: deprecated Hugging Face names (`evaluation_strategy` → `eval_strategy`), and `SWARMTUNE_*`
   * variables that look like misspelt keys. @default console.error
   */
  readonly onWarning?: (line: string) => void;
}

/**
 * Merge configuration with precedence `--set` > environment > file > defaults, key by key at every depth (so
 * `--set peft.r=16` keeps the file's `peft.lora_alpha`), and compile it. Error messages name where the offending
 * value came from (`--set peft.r`, `environment variable SWARMTUNE_PEFT__R`, `file /abs/run.yaml line 7`).
 *
 * @throws ConfigError E_CONFIG_FILE, E_CONFIG_UNKNOWN_KEY or E_CONFIG_INVALID, as `loadConfigFile`,
 *   `parseSetOverrides`, `envOverrides` and `compileConfig` do.
 */
export async function resolveConfig(sources: ConfigSources = {}): Promise<RunConfig> {
  const warn = sources.onWarning ?? ((line: string) => console.error(line));
  const read: ConfigLayer[] = [];
  if (sources.file !== undefined) read.push(await readConfigFileLayer(sources.file));
  if (sources.env !== undefined) read.push(envLayer(sources.env, sources.envPrefix ?? ENV_PREFIX, warn));
  if (sources.sets !== undefined) read.push(setOverridesLayer(sources.sets));
  // Deprecated names are renamed within each source, so a source's precedence holds whichever name it used.
  const layers = read.map((layer) => withDeprecatedRenamed(layer, warn));

  const origins = new Map<string, string>();
  for (const layer of layers) {
    for (const [key, origin] of layer.origins) {
      // A layer that sets a key replaces the origin of everything the key held before (`peft` as a whole).
      for (const existing of [...origins.keys()]) if (existing.startsWith(`${key}.`)) origins.delete(existing);
      origins.set(key, origin);
    }
  }
  const originOf = (dottedKey: string): string | undefined => {
    for (let key = dottedKey; key !== ''; key = key.slice(0, Math.max(0, key.lastIndexOf('.')))) {
      const origin = origins.get(key);
      if (origin !== undefined) return origin;
    }
    for (const [key, origin] of origins) if (key.startsWith(`${dottedKey}.`)) return origin;
    return undefined;
  };
  return compileConfig(mergeLayers(...layers.map((layer) => layer.values)), { originOf });
}

function withDeprecatedRenamed(layer: ConfigLayer, warn: (line: string) => void): ConfigLayer {
  const { values, renamed } = renameDeprecatedKeys(layer.values, (key) => layer.origins.get(key), warn);
  if (renamed.size === 0) return layer;
  const origins = new Map(layer.origins);
  for (const [old, replacement] of renamed) {
    const origin = origins.get(old);
    origins.delete(old);
    if (origin !== undefined) origins.set(replacement, origin);
  }
  return { values, origins };
}
