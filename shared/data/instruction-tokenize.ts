/**
 * Rendered instruction examples to token ids with the response marked: `[BOS, prompt…, response…, EOS]` and the
 * number of leading prompt positions, whose next-token targets the loss ignores (collateBatch writes -100 there).
 */
import { ConfigError, ErrorCode } from '../errors.js';
import type { DataTokenizer } from './tokenize.js';
import type { RawExample, TokenizedItem } from './types.js';

/**
 * Prompt tokens always kept at the end of a cut prompt: the template's response marker ("### Response:") must
 * survive truncation, or the model would be asked to answer a prompt it never sees the end of.
 */
export const PROMPT_TAIL_TOKENS = 24;

/** A tokenized instruction example. */
export interface InstructionItem extends TokenizedItem {
  /** Positions `[0, promptLength)` (BOS and prompt) carry no loss on the token that follows them. */
  readonly promptLength: number;
}

/**
 * Tokenize `examples` (text = prompt, response = answer). The prompt and the response are encoded separately and
 * concatenated (so the answer starts at a token boundary, as it does when the model generates after the prompt).
 * Longer than `maxLength`: the prompt loses tokens from its middle, keeping its head and its last
 * {@link PROMPT_TAIL_TOKENS}; if even that does not leave room for the whole response and EOS, the response is cut
 * at its end (its EOS lost).
 * @throws ConfigError E_CONFIG_INVALID for `maxLength` < 2 or an example without a response.
 */
export function tokenizeForInstruction(examples: readonly RawExample[], tokenizer: DataTokenizer, options: { maxLength: number }): InstructionItem[] {
  const { maxLength } = options;
  if (!Number.isInteger(maxLength) || maxLength < 2) throw new ConfigError(ErrorCode.CONFIG_INVALID, `invalid max_length ${maxLength}: expected an integer >= 2`);
  const plain = { addBos: false, addEos: false };
  return examples.map((example, index) => {
    if (example.response === undefined) throw new ConfigError(ErrorCode.CONFIG_INVALID, `instruction example ${index} has no response`);
    let prompt = tokenizer.encode(example.text, plain);
    let response = [...tokenizer.encode(example.response, plain), tokenizer.eosId];
    const budget = maxLength - 1;
    if (prompt.length + response.length > budget) {
      const tail = Math.min(PROMPT_TAIL_TOKENS, prompt.length, budget - 1);
      const promptRoom = Math.max(tail, budget - response.length);
      prompt = [...prompt.slice(0, promptRoom - tail), ...prompt.slice(prompt.length - tail)];
      response = response.slice(0, budget - prompt.length);
    }
    const ids = Int32Array.from([tokenizer.bosId, ...prompt, ...response]);
    return { ids, promptLength: 1 + prompt.length };
  });
}
