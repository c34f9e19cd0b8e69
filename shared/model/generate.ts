/**
 * Text generation from a {@link TaskModel}'s language-model head: greedy or temperature sampling, one token at a
 * time, no KV cache (each step recomputes the prefix; the models this project trains are small).
 */
import { ConfigError, ErrorCode } from '../errors.js';
import { mulberry32 } from '../random.js';
import type { TaskModel } from './task-model.js';

/** What generation needs from a tokenizer (shared/tokenizer's `TextTokenizer` fits). */
export interface GenerationTokenizer {
  encode(text: string, opts?: { addBos?: boolean }): number[];
  decode(ids: readonly number[]): string;
  readonly eosId: number;
}

/** Options of {@link generate}. */
export interface GenerateOptions {
  /** Upper bound on generated tokens; generation also stops at EOS and at the context length. */
  readonly maxNewTokens: number;
  /** Softmax temperature; 0 picks the most likely token (greedy, deterministic). @default 0 */
  readonly temperature?: number;
  /** Seed of the sampler when `temperature > 0`. @default 0 */
  readonly seed?: number;
}

/** Index of the largest value (the first one on ties). */
export function argMax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** Draw an index from `softmax(logits / temperature)` using one uniform draw `u` in [0, 1). */
export function sampleFromLogits(logits: Float32Array, temperature: number, u: number): number {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  const weights = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i++) {
    weights[i] = Math.exp((logits[i] - max) / temperature);
    total += weights[i];
  }
  let target = u * total;
  for (let i = 0; i < weights.length; i++) {
    target -= weights[i];
    if (target < 0) return i;
  }
  return weights.length - 1;
}

/**
 * Continue `prompt` (encoded with BOS first) and return ONLY the generated continuation, decoded (EOS excluded).
 * An empty prompt starts from BOS alone.
 * @throws ConfigError E_CONFIG_INVALID for a negative or non-integer `maxNewTokens` or a negative temperature.
 */
export function generate(model: TaskModel, tokenizer: GenerationTokenizer, prompt: string, options: GenerateOptions): string {
  const { maxNewTokens } = options;
  const temperature = options.temperature ?? 0;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `generate: maxNewTokens must be a non-negative integer, got ${maxNewTokens}`);
  }
  if (!(temperature >= 0)) throw new ConfigError(ErrorCode.CONFIG_INVALID, `generate: temperature must be ≥ 0, got ${temperature}`);
  const rng = mulberry32(options.seed ?? 0);
  const ids = tokenizer.encode(prompt, { addBos: true });
  const generated: number[] = [];
  while (generated.length < maxNewTokens && ids.length < model.config.contextLength) {
    const logits = model.nextTokenLogits(ids);
    const next = temperature === 0 ? argMax(logits) : sampleFromLogits(logits, temperature, rng());
    if (next === tokenizer.eosId) break;
    ids.push(next);
    generated.push(next);
  }
  // Decode with the prompt and cut it off: SentencePiece decoders drop the leading space of the first piece, so
  // decoding the continuation alone would glue it to the prompt ("Once upon" + "a time").
  const promptIds = ids.slice(0, ids.length - generated.length);
  const prefix = tokenizer.decode(promptIds);
  const full = tokenizer.decode(ids);
  return full.startsWith(prefix) ? full.slice(prefix.length) : tokenizer.decode(generated);
}
