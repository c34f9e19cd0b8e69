/**
 * Hugging Face `config.json` of the LLaMA family (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) ⇄
 * {@link LlamaConfig}.
 */
import { ErrorCode, InputFileError } from '../errors.js';
import type { LlamaConfig } from '../model/types.js';

/** The `architectures` this loader reads; they share LLaMA's module layout. */
export const HF_LLAMA_ARCHITECTURES = ['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM'] as const;
export type HfLlamaArchitecture = (typeof HF_LLAMA_ARCHITECTURES)[number];

/** `rope_theta` when config.json has none (transformers' LlamaConfig default). @default 10000 */
export const HF_DEFAULT_ROPE_THETA = 10000;
/** `rms_norm_eps` when config.json has none (LlamaConfig default). @default 1e-6 */
export const HF_DEFAULT_RMS_NORM_EPS = 1e-6;
/** `max_position_embeddings` when config.json has none (LlamaConfig default). @default 2048 */
export const HF_DEFAULT_MAX_POSITIONS = 2048;

/** What config.json says, checked, with the parts the weights loader needs. */
export interface HfLlamaConfig {
  readonly architecture: HfLlamaArchitecture;
  readonly config: LlamaConfig;
  /** `tie_word_embeddings`: the LM head reuses `model.embed_tokens.weight`. @default false (true for Qwen2 small) */
  readonly tieWordEmbeddings: boolean;
  /** Whether q/k/v projections carry biases (Qwen2). */
  readonly hasQkvBias: boolean;
  readonly bosTokenId?: number;
  readonly eosTokenId?: number;
  readonly padTokenId?: number;
}

/**
 * Checks a parsed config.json and maps it to {@link LlamaConfig}. Mistral's `sliding_window`, when smaller than
 * `max_position_embeddings`, caps the context (inside the window attention is the same as full attention).
 * @throws InputFileError E_MODEL_FILE naming the field: an unsupported architecture, `rope_scaling`, an activation
 *   other than SiLU, a `head_dim` other than hidden_size / num_attention_heads, MLP biases, a bad size.
 */
export function parseHfLlamaConfig(raw: unknown, path: string): HfLlamaConfig {
  const fail = (what: string): never => {
    throw new InputFileError(ErrorCode.MODEL_FILE, `HF config ${path}: ${what}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('is not a JSON object');
  const c = raw as Record<string, unknown>;
  const archs = c.architectures;
  const arch = Array.isArray(archs) && archs.length === 1 ? archs[0] : archs;
  if (!(HF_LLAMA_ARCHITECTURES as readonly unknown[]).includes(arch)) {
    fail(`architectures ${JSON.stringify(archs)} is not supported (expected one of ${HF_LLAMA_ARCHITECTURES.join(', ')})`);
  }
  const architecture = arch as HfLlamaArchitecture;
  const int = (key: string, fallback?: number): number => {
    const v = Object.hasOwn(c, key) && c[key] !== null ? c[key] : fallback;
    if (v === undefined) return fail(`${key} is missing`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) return fail(`${key} = ${JSON.stringify(v)} is not a positive integer`);
    return v;
  };
  const num = (key: string, fallback: number): number => {
    const v = Object.hasOwn(c, key) && c[key] !== null ? c[key] : fallback;
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) return fail(`${key} = ${JSON.stringify(v)} is not a positive number`);
    return v;
  };
  const optionalId = (key: string): number | undefined => {
    const v = c[key];
    if (Array.isArray(v)) return typeof v[0] === 'number' ? v[0] : undefined;
    return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined;
  };
  if (c.rope_scaling !== undefined && c.rope_scaling !== null) {
    fail(`rope_scaling ${JSON.stringify(c.rope_scaling)} is not supported (only plain RoPE)`);
  }
  const act = c.hidden_act ?? c.hidden_activation ?? 'silu';
  if (act !== 'silu') fail(`hidden_act ${JSON.stringify(act)} is not supported (only "silu", SwiGLU)`);
  if (c.mlp_bias === true) fail('mlp_bias = true is not supported');
  const dim = int('hidden_size');
  const nHeads = int('num_attention_heads');
  const nKvHeads = int('num_key_value_heads', nHeads);
  if (dim % nHeads !== 0 || (dim / nHeads) % 2 !== 0) fail(`hidden_size ${dim} does not split into num_attention_heads ${nHeads} heads of even width`);
  if (nHeads % nKvHeads !== 0) fail(`num_attention_heads ${nHeads} is not a multiple of num_key_value_heads ${nKvHeads}`);
  if (c.head_dim !== undefined && c.head_dim !== null && c.head_dim !== dim / nHeads) {
    fail(`head_dim ${JSON.stringify(c.head_dim)} differs from hidden_size / num_attention_heads = ${dim / nHeads} (not supported)`);
  }
  let contextLength = int('max_position_embeddings', HF_DEFAULT_MAX_POSITIONS);
  const window = c.use_sliding_window === false ? null : c.sliding_window;
  if (window !== undefined && window !== null) {
    if (typeof window !== 'number' || !Number.isInteger(window) || window <= 0) fail(`sliding_window ${JSON.stringify(window)} is not a positive integer`);
    contextLength = Math.min(contextLength, window as number);
  }
  const config: LlamaConfig = {
    vocabSize: int('vocab_size'),
    dim,
    nLayers: int('num_hidden_layers'),
    nHeads,
    nKvHeads,
    hiddenDim: int('intermediate_size'),
    normEps: num('rms_norm_eps', HF_DEFAULT_RMS_NORM_EPS),
    ropeTheta: num('rope_theta', HF_DEFAULT_ROPE_THETA),
    contextLength,
  };
  const hasQkvBias = architecture === 'Qwen2ForCausalLM' || c.attention_bias === true;
  return {
    architecture,
    config,
    tieWordEmbeddings: c.tie_word_embeddings === true,
    hasQkvBias,
    bosTokenId: optionalId('bos_token_id'),
    eosTokenId: optionalId('eos_token_id'),
    padTokenId: optionalId('pad_token_id'),
  };
}

/** Special ids written into config.json by {@link hfLlamaConfigJson}. */
export interface HfSpecialIds {
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly padTokenId?: number;
}

/**
 * The `config.json` object of a `LlamaForCausalLM` with `config` (float32 weights, no scaling, no biases).
 * @param tieWordEmbeddings whether the writer omits `lm_head.weight`.
 */
export function hfLlamaConfigJson(config: LlamaConfig, ids: HfSpecialIds, tieWordEmbeddings: boolean): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: config.vocabSize,
    hidden_size: config.dim,
    intermediate_size: config.hiddenDim,
    num_hidden_layers: config.nLayers,
    num_attention_heads: config.nHeads,
    num_key_value_heads: config.nKvHeads,
    head_dim: config.dim / config.nHeads,
    hidden_act: 'silu',
    max_position_embeddings: config.contextLength,
    rms_norm_eps: config.normEps,
    rope_theta: config.ropeTheta,
    rope_scaling: null,
    attention_bias: false,
    attention_dropout: 0.0,
    mlp_bias: false,
    tie_word_embeddings: tieWordEmbeddings,
    bos_token_id: ids.bosTokenId,
    eos_token_id: ids.eosTokenId,
    ...(ids.padTokenId !== undefined ? { pad_token_id: ids.padTokenId } : {}),
    initializer_range: 0.02,
    pretraining_tp: 1,
    use_cache: true,
    torch_dtype: 'float32',
  };
}
