/**
 * The `peft` section by method: which keys belong to which method, the check that a key of another method is not
 * set, and the conversion to the model-side {@link PeftSpec}.
 */
import { ConfigError, ErrorCode } from '../errors.js';
import type { PeftMethod, PeftSpec } from '../model/types.js';
import { DEFAULTS, type PeftConfig, type RunConfig } from './run-config.js';

/** The `peft` keys each method reads (besides `method`). */
export const PEFT_METHOD_KEYS: Readonly<Record<PeftMethod, readonly (keyof PeftConfig)[]>> = {
  lora: ['r', 'lora_alpha', 'lora_dropout', 'target_modules', 'use_rslora'],
  adapter: ['adapter_size', 'adapter_non_linearity'],
  prompt: ['num_virtual_tokens'],
  feature: ['trainable_top_layers'],
  full: [],
};

/**
 * Throw when a key of another method holds a value other than its default (compared with the default rather than
 * "was it written", so that a compiled config, which holds every key, recompiles).
 * @param originOf where a dotted key came from (`--set peft.r`), for the message.
 * @throws ConfigError E_CONFIG_INVALID naming the key, its method and the method chosen.
 */
export function checkPeftMethodKeys(peft: PeftConfig, originOf: (dottedKey: string) => string = () => ''): void {
  const own = new Set<string>(PEFT_METHOD_KEYS[peft.method]);
  for (const [method, keys] of Object.entries(PEFT_METHOD_KEYS) as [PeftMethod, readonly (keyof PeftConfig)[]][]) {
    if (method === peft.method) continue;
    for (const key of keys) {
      if (own.has(key) || JSON.stringify(peft[key]) === JSON.stringify(DEFAULTS.peft[key])) continue;
      throw new ConfigError(
        ErrorCode.CONFIG_INVALID,
        `config key "peft.${key}"${originOf(`peft.${key}`)} applies to peft.method "${method}", not "${peft.method}"${originOf('peft.method')}: remove it or change the method`,
      );
    }
  }
}

/**
 * Throw for top-level keys that only make sense with LoRA: `lora_aggregation: exact` (federated exact LoRA
 * aggregation) with another method.
 * @throws ConfigError E_CONFIG_INVALID naming both keys.
 */
export function checkPeftMethodConflicts(config: RunConfig, originOf: (dottedKey: string) => string = () => ''): void {
  if (config.peft.method !== 'lora' && config.lora_aggregation === 'exact') {
    throw new ConfigError(
      ErrorCode.CONFIG_INVALID,
      `conflicting config keys "lora_aggregation"${originOf('lora_aggregation')} and "peft.method"${originOf('peft.method')}: exact aggregation folds LoRA factors; peft.method is "${config.peft.method}"`,
    );
  }
}

/** The model-side spec (camelCase, shared/model/types.ts) of a compiled `peft` section. */
export function toPeftSpec(peft: PeftConfig): PeftSpec {
  switch (peft.method) {
    case 'lora':
      return {
        method: 'lora',
        r: peft.r,
        loraAlpha: peft.lora_alpha,
        loraDropout: peft.lora_dropout,
        targetModules: peft.target_modules,
        useRslora: peft.use_rslora,
      };
    case 'adapter':
      return { method: 'adapter', adapterSize: peft.adapter_size, nonLinearity: peft.adapter_non_linearity };
    case 'prompt':
      return { method: 'prompt', numVirtualTokens: peft.num_virtual_tokens };
    case 'feature':
      return { method: 'feature', trainableTopLayers: peft.trainable_top_layers };
    case 'full':
      return { method: 'full' };
  }
}
