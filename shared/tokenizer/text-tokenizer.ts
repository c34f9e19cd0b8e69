/**
 * The text tokenizer every part of swarmtune uses, backed by `@huggingface/tokenizers`.
 */
import { createHash } from 'node:crypto';
import { Tokenizer } from '@huggingface/tokenizers';
import { ErrorCode, InputFileError } from '../errors.js';
import type { GgufMetadata } from '../formats/gguf.js';
import { readSpmVocab } from './gguf-vocab.js';
import { buildTokenizerConfig, buildTokenizerJson } from './hf-tokenizer-json.js';

/** Options of {@link TextTokenizer.encode}. */
export interface EncodeOptions {
  /** Put the BOS id first. @default true */
  readonly addBos?: boolean;
  /** Put the EOS id last. @default false */
  readonly addEos?: boolean;
}

/** Text ⇄ token ids. */
export interface TextTokenizer {
  /**
   * Token ids of `text` (no truncation). Text that spells a special token (`<s>`, `</s>`, `<unk>`) becomes
   * that token, as in Hugging Face's llama tokenizer.
   */
  encode(text: string, opts?: EncodeOptions): number[];
  /** The text of `ids`; special tokens (BOS, EOS, unk, other control tokens) are skipped. */
  decode(ids: readonly number[]): string;
  /** Number of ids (the embedding table's rows). */
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  /**
   * Id used to pad batches: the file's padding token when it names one, else EOS (what Hugging Face recipes
   * set for llama, which has none). Padded positions are masked, so the choice does not change results.
   */
  readonly padId: number;
  /** sha256 (hex) of the `tokenizer.json` text, `JSON.stringify(toJSON())`. */
  readonly sha256: string;
  /** The `tokenizer.json` object. */
  toJSON(): object;
}

/**
 * Wraps a Hugging Face `tokenizer.json` object and its `tokenizer_config.json` as a {@link TextTokenizer}.
 * @param ids the special ids and vocabulary size (the JSON alone does not say which token pads).
 * @throws InputFileError E_MODEL_FILE when `@huggingface/tokenizers` rejects the JSON.
 */
export function tokenizerFromJson(
  tokenizerJson: object,
  tokenizerConfig: Record<string, unknown>,
  ids: { vocabSize: number; bosId: number; eosId: number; padId: number },
): TextTokenizer {
  let hf: Tokenizer;
  try {
    hf = new Tokenizer(tokenizerJson, tokenizerConfig);
  } catch (err) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `tokenizer.json: rejected by @huggingface/tokenizers: ${err}`, {
      cause: err,
    });
  }
  const text = JSON.stringify(tokenizerJson);
  const sha256 = createHash('sha256').update(text).digest('hex');
  const { vocabSize, bosId, eosId, padId } = ids;
  return {
    vocabSize,
    bosId,
    eosId,
    padId,
    sha256,
    encode(input: string, opts: EncodeOptions = {}): number[] {
      const { addBos = true, addEos = false } = opts;
      const body = hf.encode(input, { add_special_tokens: false }).ids;
      const out = addBos ? [bosId, ...body] : body;
      if (addEos) out.push(eosId);
      return out;
    },
    decode(tokenIds: readonly number[]): string {
      if (tokenIds.length === 0) return '';
      return hf.decode([...tokenIds], { skip_special_tokens: true, clean_up_tokenization_spaces: false });
    },
    toJSON(): object {
      return tokenizerJson;
    },
  };
}

/**
 * Builds the llama SentencePiece-BPE tokenizer stored in GGUF metadata (`tokenizer.ggml.*`).
 * @throws InputFileError E_MODEL_FILE when the metadata holds no usable llama tokenizer.
 */
export function tokenizerFromGguf(metadata: GgufMetadata): TextTokenizer {
  const vocab = readSpmVocab(metadata);
  const contextLength = metadata['llama.context_length'];
  const json = buildTokenizerJson(vocab);
  const config = buildTokenizerConfig(vocab, typeof contextLength === 'number' ? contextLength : undefined);
  return tokenizerFromJson(json, config, {
    vocabSize: vocab.tokens.length,
    bosId: vocab.bosId,
    eosId: vocab.eosId,
    padId: vocab.padId ?? vocab.eosId,
  });
}
