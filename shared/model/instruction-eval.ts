/**
 * The generation half of instruction-tuning evaluation: greedy answers to held-out prompts, their exact-match
 * accuracy against the reference responses, and a few samples to read. (The response loss comes from the usual
 * evaluation of masked batches.)
 */
import { normalizeAnswer } from '../data/instruction-template.js';
import type { RawExample, TokenizedItem } from '../data/types.js';
import { argMax } from './generate.js';
import type { TaskModel } from './task-model.js';

/** What greedy answering needs of a model: next-token logits of a prefix, within its context (`TaskModel` fits). */
export type AnswerModel = Pick<TaskModel, 'nextTokenLogits'> & { readonly config: { readonly contextLength: number } };

/** What greedy evaluation needs from a tokenizer. */
export interface AnswerTokenizer {
  decode(ids: readonly number[]): string;
  readonly eosId: number;
}

/** One greedy answer next to its reference. */
export interface GreedySample {
  /** The end of the prompt as the model saw it (its last {@link SAMPLE_PROMPT_CHARS} characters). */
  readonly prompt: string;
  readonly reference: string;
  readonly generated: string;
  readonly isMatch: boolean;
  /** Whether the answer starts with the reference as a whole word ({@link isPrefixMatch}). */
  readonly isPrefixMatch: boolean;
}

/** What {@link evaluateInstructionAnswers} returns. */
export interface InstructionAnswerResult {
  /** Fraction of examples whose normalised greedy answer equals the normalised reference (`normalizeAnswer`). */
  readonly exactMatch: number;
  /**
   * Fraction whose normalised answer starts with the normalised reference followed by a non-letter or the end
   * ("no, because" and "no$es" count for "no"): the answer was right even where the model failed to stop after it.
   */
  readonly prefixMatch: number;
  readonly numExamples: number;
  /** The first `numSamples` examples' answers. */
  readonly samples: GreedySample[];
}

/** Characters of the prompt kept in a {@link GreedySample}. @default 160 */
export const SAMPLE_PROMPT_CHARS = 160;

/** Options of {@link evaluateInstructionAnswers}. */
export interface InstructionAnswerOptions {
  /**
   * Tokens generated at most per answer. @default the longest reference response of `items` in tokens plus 2
   * (EOS and one token of slack), at most 64
   */
  readonly maxNewTokens?: number;
  /** Samples returned. @default 3 */
  readonly numSamples?: number;
  /** Examples answered (the first ones). @default all */
  readonly maxExamples?: number;
}

/**
 * Greedy-decode an answer to each instruction item's prompt (its ids up to `promptLength`: BOS and the prompt as
 * truncated for training) and compare it with the raw example's response. Stops at EOS, `maxNewTokens` or the
 * context length; no KV cache (each token recomputes the prefix).
 * @param items instruction items (with `promptLength`), `raw[i]` the example behind `items[i]`.
 * @throws ShapeError from the model for an id outside its vocabulary.
 */
export function evaluateInstructionAnswers(
  model: AnswerModel,
  tokenizer: AnswerTokenizer,
  items: readonly TokenizedItem[],
  raw: readonly RawExample[],
  options: InstructionAnswerOptions = {},
): InstructionAnswerResult {
  const count = Math.min(items.length, raw.length, options.maxExamples ?? Infinity);
  let longest = 0;
  for (const item of items) longest = Math.max(longest, item.ids.length - (item.promptLength ?? item.ids.length));
  const maxNewTokens = options.maxNewTokens ?? Math.min(64, longest + 2);
  const numSamples = options.numSamples ?? 3;
  const samples: GreedySample[] = [];
  let matches = 0;
  let prefixMatches = 0;
  for (let i = 0; i < count; i++) {
    const item = items[i];
    const promptIds = Array.from(item.ids.subarray(0, item.promptLength ?? item.ids.length));
    const generated = greedyAnswer(model, tokenizer, promptIds, maxNewTokens);
    const reference = raw[i].response ?? '';
    const isMatch = normalizeAnswer(generated) === normalizeAnswer(reference);
    const prefix = isPrefixMatch(generated, reference);
    if (isMatch) matches++;
    if (prefix) prefixMatches++;
    if (samples.length < numSamples) {
      const prompt = raw[i].text;
      samples.push({ prompt: prompt.length > SAMPLE_PROMPT_CHARS ? `…${prompt.slice(-SAMPLE_PROMPT_CHARS)}` : prompt, reference, generated, isMatch, isPrefixMatch: prefix });
    }
  }
  return { exactMatch: count === 0 ? 0 : matches / count, prefixMatch: count === 0 ? 0 : prefixMatches / count, numExamples: count, samples };
}

/** Whether normalised `answer` starts with normalised `reference` followed by a non-letter or the end. */
export function isPrefixMatch(answer: string, reference: string): boolean {
  const a = normalizeAnswer(answer);
  const r = normalizeAnswer(reference);
  if (r === '' || !a.startsWith(r)) return r === a;
  return a.length === r.length || !/\p{L}/u.test(a[r.length]);
}

/** The greedy continuation of `promptIds`, decoded (EOS excluded). */
export function greedyAnswer(model: AnswerModel, tokenizer: AnswerTokenizer, promptIds: readonly number[], maxNewTokens: number): string {
  const ids = [...promptIds];
  const start = ids.length;
  while (ids.length - start < maxNewTokens && ids.length < model.config.contextLength) {
    const next = argMax(model.nextTokenLogits(ids));
    if (next === tokenizer.eosId) break;
    ids.push(next);
  }
  if (ids.length === start) return '';
  // As in generate(): decode with the prompt and cut it off, so a SentencePiece decoder keeps the answer's space.
  const prefix = tokenizer.decode(ids.slice(0, start));
  const full = tokenizer.decode(ids);
  return full.startsWith(prefix) ? full.slice(prefix.length) : tokenizer.decode(ids.slice(start));
}
