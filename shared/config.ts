/**
 * Run configuration: types, defaults, sources and the one compile step.
 *
 * Use `resolveConfig({ file, env: process.env, sets })` at a process edge (precedence `--set` > env > file >
 * defaults) or `compileConfig(raw)` for an object already in hand. Keys are snake_case everywhere, Hugging Face
 * names (see shared/config/run-config.ts for the meaning, unit and default of each).
 */
import type { LoraSpec } from './model/types.js';
import type { PeftConfig } from './config/run-config.js';
import type { CodecPolicy } from './codecs/spec.js';
import { parseCodecSpec } from './codecs/spec.js';

export {
  BACKENDS,
  DEFAULTS,
  DEFAULT_MODEL_PATH,
  DEFAULT_MODEL_RELATIVE,
  LR_SCHEDULER_TYPES,
  ON_WORKER_LOSS,
  OUTPUT_DIR_TIMESTAMP,
  REPO_ROOT,
  resolveOutputDir,
  type BackendName,
  type LrSchedulerName,
  type OnWorkerLoss,
  type PeftConfig,
  type RunConfig,
} from './config/run-config.js';
export { compileConfig, type CompileOptions } from './config/compile.js';
export {
  ENV_PREFIX,
  envOverrides,
  loadConfigFile,
  mergeLayers,
  parseSetOverrides,
} from './config/sources.js';
export { resolveConfig, type ConfigSources } from './config/resolve.js';
export { ALL_LINEAR, normaliseTargetModules, normaliseTargetName } from './config/target-modules.js';

export { checkPeftMethodKeys, PEFT_METHOD_KEYS, toPeftSpec } from './config/peft-method.js';

/** The model-side LoRA spec (camelCase, shared/model/types.ts) of a compiled `peft` section's LoRA keys (whatever its method; see `toPeftSpec`). */
export function toLoraSpec(peft: PeftConfig): LoraSpec {
  return {
    method: 'lora',
    r: peft.r,
    loraAlpha: peft.lora_alpha,
    loraDropout: peft.lora_dropout,
    targetModules: peft.target_modules,
    useRslora: peft.use_rslora,
  };
}

/**
 * The codec policy of one direction from its config keys: the default codec and the pattern overrides, in the order
 * written (first match wins).
 * @throws ConfigError E_CONFIG_INVALID for a codec string that does not parse
 */
export function toCodecPolicy(codec: string, overrides: Readonly<Record<string, string>>): CodecPolicy {
  return {
    default: parseCodecSpec(codec),
    overrides: Object.entries(overrides).map(([pattern, text]) => ({ pattern, spec: parseCodecSpec(text, `codec override "${pattern}"`) })),
  };
}
