/**
 * Deprecated Hugging Face `TrainingArguments` names, accepted with a warning that names the key to use instead.
 * Renaming happens per source (file, environment, `--set`) before the layers merge, so precedence holds whichever
 * spelling each source used.
 */
import { ConfigError, ErrorCode } from '../errors.js';

/** One deprecated top-level key: the key it became and, when the value changes too, how. */
export interface DeprecatedKey {
  /** The current key. */
  readonly replacement: string;
  /** The value under the current key; @default the value as written */
  readonly convert?: (value: unknown) => unknown;
  /** What to tell the user beyond "use X"; @default none */
  readonly note?: string;
}

/** Deprecated top-level keys by name (HF `TrainingArguments` deprecations that have a meaning here). */
export const DEPRECATED_KEYS: Readonly<Record<string, DeprecatedKey>> = {
  evaluation_strategy: { replacement: 'eval_strategy' },
  per_gpu_train_batch_size: { replacement: 'per_device_train_batch_size' },
  per_gpu_eval_batch_size: { replacement: 'per_device_eval_batch_size' },
  // HF replaced `no_cuda` by `use_cpu`; here the CPU is a worker backend.
  no_cuda: {
    replacement: 'backend',
    convert: (value) => (value === true ? 'wasm' : 'auto'),
    note: 'no_cuda: true is backend: wasm (the CPU backend), false is backend: auto',
  },
  use_cpu: {
    replacement: 'backend',
    convert: (value) => (value === true ? 'wasm' : 'auto'),
    note: 'use_cpu: true is backend: wasm (the CPU backend), false is backend: auto',
  },
};

/**
 * A copy of one source's top-level mapping with deprecated keys renamed, calling `warn` once per key renamed.
 *
 * @param values the source's mapping as written (not modified).
 * @param originOf where a key came from, for the warning and errors (`file run.yaml line 3`).
 * @param warn receives one line per deprecated key, naming the key to use.
 * @throws ConfigError E_CONFIG_INVALID when the same source sets both a deprecated key and its replacement.
 */
export function renameDeprecatedKeys(
  values: Readonly<Record<string, unknown>>,
  originOf: (key: string) => string | undefined,
  warn: (line: string) => void,
): { values: Record<string, unknown>; renamed: ReadonlyMap<string, string> } {
  const out: Record<string, unknown> = { ...values };
  const renamed = new Map<string, string>();
  for (const [old, spec] of Object.entries(DEPRECATED_KEYS)) {
    if (!Object.hasOwn(values, old)) continue;
    const where = originOf(old);
    const from = where === undefined ? '' : ` (from ${where})`;
    if (Object.hasOwn(values, spec.replacement)) {
      throw new ConfigError(
        ErrorCode.CONFIG_INVALID,
        `conflicting config keys "${old}"${from} and "${spec.replacement}": "${old}" is the deprecated name of "${spec.replacement}"; keep only "${spec.replacement}"`,
      );
    }
    out[spec.replacement] = spec.convert ? spec.convert(values[old]) : values[old];
    delete out[old];
    renamed.set(old, spec.replacement);
    warn(`warning: config key "${old}"${from} is deprecated; use "${spec.replacement}"${spec.note ? ` (${spec.note})` : ''}`);
  }
  return { values: out, renamed };
}
