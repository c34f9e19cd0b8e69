/**
 * Raw examples to token-id sequences, per task.
 */
import { ConfigError, ErrorCode } from '../errors.js';
import { labelIndex } from './labels.js';
import type { ClassificationItem, RawExample, TokenizedItem } from './types.js';

/**
 * What tokenization needs from a tokenizer (shared/tokenizer's `TextTokenizer` satisfies it). `encode` is called
 * with `addBos: false, addEos: false` and the special ids are added here, so the framing does not depend on the
 * tokenizer's defaults.
 */
export interface DataTokenizer {
  encode(text: string, opts: { addBos?: boolean; addEos?: boolean }): number[];
  readonly padId: number;
  readonly bosId: number;
  readonly eosId: number;
  /**
   * Classification sequences end with EOS too, kept when truncating: BERT's `[CLS] text [SEP]` framing (BOS is
   * `[CLS]`, EOS `[SEP]`), as Hugging Face's BERT tokenizer truncates. @default false (`[BOS, ...tokens]`)
   */
  readonly classificationEos?: boolean;
}

/** Options of {@link tokenizeForClassification}. */
export interface ClassificationTokenizeOptions {
  /** Longest sequence, BOS included; longer texts keep their first tokens. Integer >= 2. */
  readonly maxLength: number;
  /** The label set (see `labelSet`); an example's label id is its index here. */
  readonly labels: readonly string[];
}

/** How {@link tokenizeForCausalLm} handles a document longer than `maxLength`. */
export type CausalLmOverflow = 'chunk' | 'truncate';

/** Options of {@link tokenizeForCausalLm}. */
export interface CausalLmTokenizeOptions {
  /** Longest window, in tokens. Integer >= 2. */
  readonly maxLength: number;
  /** @default 'chunk' */
  readonly overflow?: CausalLmOverflow;
}

/**
 * `[BOS, ...tokens(text)]` truncated to `maxLength`, with the label's id. One item per example, same order.
 *
 * @throws InputFileError E_DATASET for an example without a label or with a label outside `labels` (naming its index).
 * @throws ConfigError E_CONFIG_INVALID for `maxLength` < 2.
 */
export function tokenizeForClassification(
  examples: readonly RawExample[],
  tokenizer: DataTokenizer,
  options: ClassificationTokenizeOptions,
): ClassificationItem[] {
  checkMaxLength(options.maxLength);
  const idOf = labelIndex(options.labels);
  return examples.map((example, index) => {
    const label = idOf(example.label, `example ${index}`);
    if (tokenizer.classificationEos === true) return { ids: clsSepFrame(tokenizer, example.text, options.maxLength), label };
    const ids = frame(tokenizer, example.text, false, options.maxLength);
    return { ids: ids.subarray(0, Math.min(ids.length, options.maxLength)).slice(), label };
  });
}

/**
 * `[BOS, ...tokens(text), EOS]` per example, fitted to `maxLength`:
 * - `chunk` (default): a longer document is cut into windows of `maxLength` tokens that overlap by one token
 *   (starts at 0, maxLength-1, 2(maxLength-1), ...), so every next-token pair of the document is a training target in
 *   exactly one window and no text is thrown away. Windows after the first do not start with BOS; a final window
 *   of fewer than 2 tokens (no target) is not emitted. Items of one document are consecutive.
 * - `truncate`: the first `maxLength` tokens only (the EOS is lost when the text is too long).
 *
 * @throws ConfigError E_CONFIG_INVALID for `maxLength` < 2.
 */
export function tokenizeForCausalLm(
  examples: readonly RawExample[],
  tokenizer: DataTokenizer,
  options: CausalLmTokenizeOptions,
): TokenizedItem[] {
  const { maxLength, overflow = 'chunk' } = options;
  checkMaxLength(maxLength);
  const items: TokenizedItem[] = [];
  for (const example of examples) {
    const ids = frame(tokenizer, example.text, true, overflow === 'truncate' ? maxLength : Infinity);
    if (overflow === 'truncate' || ids.length <= maxLength) {
      items.push({ ids: ids.subarray(0, Math.min(ids.length, maxLength)).slice() });
      continue;
    }
    for (let start = 0; start < ids.length - 1; start += maxLength - 1) {
      items.push({ ids: ids.slice(start, Math.min(ids.length, start + maxLength)) });
    }
  }
  return items;
}

/**
 * Tokens kept between the last token used and the cut when encoding only a head of the text: a cut can change
 * the tokens next to it, never tokens this far before it.
 */
const HEAD_MARGIN_TOKENS = 16;

/**
 * The first `numTokens` tokens of `text` (all of them if it has fewer), without encoding all of a long text.
 * Encodes growing heads cut at a space (1 KiB-ish, then x4) until one yields `numTokens` plus a margin; e-mails of
 * 300 KB cost what 1 KB costs. Exact for tokenizers whose tokens do not span a space they are cut at (SentencePiece
 * and byte-level BPE with whitespace pre-tokenization), which the margin makes hold in practice for any tokenizer.
 */
function encodeHead(tokenizer: DataTokenizer, text: string, numTokens: number): number[] {
  const options = { addBos: false, addEos: false };
  for (let budget = Math.max(1024, numTokens * 8); budget < text.length; budget *= 4) {
    const cut = text.lastIndexOf(' ', budget);
    if (cut <= 0) continue;
    const head = tokenizer.encode(text.slice(0, cut), options);
    if (head.length >= numTokens + HEAD_MARGIN_TOKENS) return head.slice(0, numTokens);
  }
  return tokenizer.encode(text, options);
}

/** `[BOS, ...tokens, EOS]` with the body cut to `maxLength - 2` tokens, so EOS survives truncation. */
function clsSepFrame(tokenizer: DataTokenizer, text: string, maxLength: number): Int32Array {
  const body = encodeHead(tokenizer, text, maxLength - 2).slice(0, maxLength - 2);
  const ids = new Int32Array(body.length + 2);
  ids[0] = tokenizer.bosId;
  ids.set(body, 1);
  ids[ids.length - 1] = tokenizer.eosId;
  return ids;
}

function frame(tokenizer: DataTokenizer, text: string, withEos: boolean, maxTokens = Infinity): Int32Array {
  const body = Number.isFinite(maxTokens)
    ? encodeHead(tokenizer, text, maxTokens - 1)
    : tokenizer.encode(text, { addBos: false, addEos: false });
  const ids = new Int32Array(body.length + 1 + (withEos ? 1 : 0));
  ids[0] = tokenizer.bosId;
  ids.set(body, 1);
  if (withEos) ids[ids.length - 1] = tokenizer.eosId;
  return ids;
}

function checkMaxLength(maxLength: number): void {
  if (!Number.isInteger(maxLength) || maxLength < 2) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `invalid max_length ${maxLength}: expected an integer >= 2`);
  }
}
