/**
 * The llama (SentencePiece) vocabulary stored in GGUF metadata, read and checked once.
 */
import { ErrorCode, InputFileError } from '../errors.js';
import type { GgufMetadata, GgufValue } from '../formats/gguf.js';

/** SentencePiece token types as stored in `tokenizer.ggml.token_type`. */
export const TokenType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;
export type TokenType = (typeof TokenType)[keyof typeof TokenType];

/** A SentencePiece vocabulary: pieces, scores and types by id, plus the special ids. */
export interface SpmVocab {
  readonly tokens: readonly string[];
  readonly scores: readonly number[];
  readonly types: readonly number[];
  readonly unkId: number;
  readonly bosId: number;
  readonly eosId: number;
  /** `tokenizer.ggml.padding_token_id` when present and inside the vocabulary, else undefined. */
  readonly padId: number | undefined;
}

const BYTE_PIECE = /^<0x[0-9A-F]{2}>$/;

function fail(what: string): never {
  throw new InputFileError(ErrorCode.MODEL_FILE, `GGUF tokenizer metadata: ${what}`);
}

function optionalId(metadata: GgufMetadata, key: string, numTokens: number): number | undefined {
  const v = Object.hasOwn(metadata, key) ? metadata[key] : undefined;
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(`${key} is not an integer`);
  // llama.cpp writes -1 as u32 0xFFFFFFFF (and some converters write any out-of-range value) for "none".
  return v >= 0 && v < numTokens ? v : undefined;
}

function numberArray(metadata: GgufMetadata, key: string, length: number): number[] | undefined {
  const v: GgufValue | undefined = Object.hasOwn(metadata, key) ? metadata[key] : undefined;
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length !== length || v.some((x) => typeof x !== 'number')) {
    fail(`${key} must be an array of ${length} numbers (one per token)`);
  }
  return v as number[];
}

/**
 * Reads the llama SentencePiece vocabulary from GGUF metadata (`tokenizer.ggml.*`).
 * Missing scores default to `-id` (earlier pieces merge first); missing types default to NORMAL, BYTE for
 * `<0xXX>` pieces, CONTROL for the BOS/EOS ids and UNKNOWN for the unk id.
 * @throws InputFileError E_MODEL_FILE when `tokenizer.ggml.model` is not "llama", or the arrays are missing or
 *   inconsistent.
 */
export function readSpmVocab(metadata: GgufMetadata): SpmVocab {
  const model = metadata['tokenizer.ggml.model'];
  if (model !== 'llama') {
    fail(`tokenizer.ggml.model is ${JSON.stringify(model)}; only "llama" (SentencePiece BPE) is supported`);
  }
  const tokens = metadata['tokenizer.ggml.tokens'];
  if (!Array.isArray(tokens) || tokens.length === 0 || tokens.some((t) => typeof t !== 'string')) {
    fail('tokenizer.ggml.tokens must be a non-empty array of strings');
  }
  const pieces = tokens as string[];
  const n = pieces.length;
  const unkId = optionalId(metadata, 'tokenizer.ggml.unknown_token_id', n) ?? 0;
  const bosId = optionalId(metadata, 'tokenizer.ggml.bos_token_id', n) ?? 1;
  const eosId = optionalId(metadata, 'tokenizer.ggml.eos_token_id', n) ?? 2;
  const padId = optionalId(metadata, 'tokenizer.ggml.padding_token_id', n);
  const scores = numberArray(metadata, 'tokenizer.ggml.scores', n) ?? pieces.map((_, i) => -i);
  const types =
    numberArray(metadata, 'tokenizer.ggml.token_type', n) ??
    pieces.map((p, i) => {
      if (i === unkId) return TokenType.UNKNOWN;
      if (i === bosId || i === eosId) return TokenType.CONTROL;
      return BYTE_PIECE.test(p) ? TokenType.BYTE : TokenType.NORMAL;
    });
  return { tokens: pieces, scores, types, unkId, bosId, eosId, padId };
}
