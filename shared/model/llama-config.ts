/**
 * Checks and derived sizes of a {@link LlamaConfig}.
 */
import { ConfigError, ErrorCode } from '../errors.js';
import type { LlamaConfig, LoraTarget } from './types.js';

/** Width of one attention head: `dim / nHeads`. */
export function headDimOf(config: LlamaConfig): number {
  return config.dim / config.nHeads;
}

/**
 * Throw unless the configuration describes a buildable decoder: positive integer sizes, `dim` divisible by `nHeads`
 * into an even head width (RoPE rotates pairs), and `nHeads` divisible by `nKvHeads` (grouped-query attention).
 * @throws ConfigError E_CONFIG_INVALID naming the offending field.
 */
export function validateLlamaConfig(config: LlamaConfig): void {
  const ints = ['vocabSize', 'dim', 'nLayers', 'nHeads', 'nKvHeads', 'hiddenDim', 'contextLength'] as const;
  for (const key of ints) {
    const value = config[key];
    if (!Number.isInteger(value) || value <= 0) {
      throw new ConfigError(ErrorCode.CONFIG_INVALID, `model config: ${key} must be a positive integer, got ${value}`);
    }
  }
  if (config.dim % config.nHeads !== 0 || headDimOf(config) % 2 !== 0) {
    throw new ConfigError(
      ErrorCode.CONFIG_INVALID,
      `model config: dim ${config.dim} must split into nHeads ${config.nHeads} heads of even width`,
    );
  }
  if (config.nHeads % config.nKvHeads !== 0) {
    throw new ConfigError(
      ErrorCode.CONFIG_INVALID,
      `model config: nHeads ${config.nHeads} must be a multiple of nKvHeads ${config.nKvHeads}`,
    );
  }
  if (!(config.normEps > 0) || !(config.ropeTheta > 0)) {
    throw new ConfigError(
      ErrorCode.CONFIG_INVALID,
      `model config: normEps (${config.normEps}) and ropeTheta (${config.ropeTheta}) must be positive`,
    );
  }
}

/** GGUF tensor name suffix (after `blk.{i}.`) of each linear layer LoRA can target. */
export const GGUF_LINEAR_NAMES: Readonly<Record<LoraTarget, string>> = {
  q: 'attn_q',
  k: 'attn_k',
  v: 'attn_v',
  o: 'attn_output',
  gate: 'ffn_gate',
  up: 'ffn_up',
  down: 'ffn_down',
};

/** `[out, in]` shape of a targetable linear layer of a model. */
export function linearShapeOf(config: LlamaConfig, target: LoraTarget): [number, number] {
  const headDim = headDimOf(config);
  switch (target) {
    case 'q':
      return [config.nHeads * headDim, config.dim];
    case 'k':
    case 'v':
      return [config.nKvHeads * headDim, config.dim];
    case 'o':
      return [config.dim, config.nHeads * headDim];
    case 'gate':
    case 'up':
      return [config.hiddenDim, config.dim];
    case 'down':
      return [config.dim, config.hiddenDim];
  }
}

/**
 * Every tensor a LLaMA GGUF must hold, with its row-major PyTorch shape. `output.weight` is optional: when absent
 * the output projection is tied to `token_embd.weight`.
 */
export function expectedBaseShapes(config: LlamaConfig): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  shapes.set('token_embd.weight', [config.vocabSize, config.dim]);
  for (let i = 0; i < config.nLayers; i++) {
    shapes.set(`blk.${i}.attn_norm.weight`, [config.dim]);
    shapes.set(`blk.${i}.ffn_norm.weight`, [config.dim]);
    for (const [target, name] of Object.entries(GGUF_LINEAR_NAMES) as [LoraTarget, string][]) {
      shapes.set(`blk.${i}.${name}.weight`, linearShapeOf(config, target));
    }
  }
  shapes.set('output_norm.weight', [config.dim]);
  return shapes;
}
