/**
 * Turns a llama SentencePiece vocabulary into a Hugging Face `tokenizer.json` object (and the matching
 * `tokenizer_config.json`), the way transformers' `LlamaConverter` (convert_slow_tokenizer.py) does with
 * `legacy=True`: a BPE model with byte fallback whose merges come from the vocabulary and its scores.
 */
import { TokenType, type SpmVocab } from './gguf-vocab.js';

/** The SentencePiece word-boundary marker (U+2581), which stands for a space. */
export const SPM_SPACE = '\u2581';

/** A `tokenizer.json` object (the subset of fields this project writes). */
export interface HfTokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: HfAddedToken[];
  normalizer: object;
  pre_tokenizer: null;
  post_processor: object;
  decoder: object;
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: string;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    merges: [string, string][];
  };
}

/** One entry of `added_tokens`. */
export interface HfAddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/**
 * Merges derived from a vocabulary as HF's `SentencePieceExtractor.extract(vocab_scores)` does: for every piece,
 * every split into two pieces that are both in the vocabulary (sorted by the halves' ids), all ranked by the
 * merged piece's score, highest first (a stable sort, so ties keep vocabulary order).
 * Pieces are split by code point, as Python slices strings.
 */
export function deriveMerges(tokens: readonly string[], scores: readonly number[]): [string, string][] {
  const ids = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (!ids.has(t)) ids.set(t, i);
  });
  interface Merge {
    left: string;
    right: string;
    score: number;
  }
  const merges: Merge[] = [];
  const seen = new Set<string>();
  for (let id = 0; id < tokens.length; id++) {
    const piece = tokens[id];
    // Python's dict(vocab_scores) keeps one entry per distinct piece.
    if (seen.has(piece)) continue;
    seen.add(piece);
    const chars = Array.from(piece);
    const local: { left: string; right: string; leftId: number; rightId: number }[] = [];
    for (let i = 1; i < chars.length; i++) {
      const left = chars.slice(0, i).join('');
      const right = chars.slice(i).join('');
      const leftId = ids.get(left);
      const rightId = ids.get(right);
      if (leftId !== undefined && rightId !== undefined) local.push({ left, right, leftId, rightId });
    }
    local.sort((a, b) => a.leftId - b.leftId || a.rightId - b.rightId);
    for (const m of local) merges.push({ left: m.left, right: m.right, score: scores[id] });
  }
  // Array.prototype.sort is stable, like Python's sorted.
  merges.sort((a, b) => b.score - a.score);
  return merges.map((m) => [m.left, m.right]);
}

/**
 * Builds the `tokenizer.json` object for a llama SentencePiece vocabulary: legacy normalizer (prepend ▁, spaces
 * to ▁), no pre-tokenizer, BPE with byte fallback, a BOS template post-processor, and the llama decoder
 * (▁ → space, byte fallback, fuse, strip one leading space).
 */
export function buildTokenizerJson(vocab: SpmVocab): HfTokenizerJson {
  const vocabMap: Record<string, number> = {};
  vocab.tokens.forEach((t, i) => {
    if (!Object.hasOwn(vocabMap, t)) vocabMap[t] = i;
  });
  const addedTokens: HfAddedToken[] = [];
  vocab.tokens.forEach((content, id) => {
    const type = vocab.types[id];
    const isSpecial = type === TokenType.UNKNOWN || type === TokenType.CONTROL;
    if (isSpecial || type === TokenType.USER_DEFINED) {
      addedTokens.push({
        id,
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: isSpecial,
      });
    }
  });
  const bos = vocab.tokens[vocab.bosId];
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: SPM_SPACE },
        { type: 'Replace', pattern: { String: ' ' }, content: SPM_SPACE },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [vocab.bosId], tokens: [bos] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPM_SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: vocab.tokens[vocab.unkId],
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: vocabMap,
      merges: deriveMerges(vocab.tokens, vocab.scores),
    },
  };
}

/**
 * The `tokenizer_config.json` that goes with {@link buildTokenizerJson} (LlamaTokenizerFast, legacy, no
 * clean-up of tokenization spaces so that decode inverts encode).
 * @param contextLength model_max_length, when known.
 */
export function buildTokenizerConfig(vocab: SpmVocab, contextLength?: number): Record<string, unknown> {
  return {
    tokenizer_class: 'LlamaTokenizer',
    add_bos_token: true,
    add_eos_token: false,
    legacy: true,
    clean_up_tokenization_spaces: false,
    bos_token: vocab.tokens[vocab.bosId],
    eos_token: vocab.tokens[vocab.eosId],
    unk_token: vocab.tokens[vocab.unkId],
    pad_token: vocab.padId === undefined ? null : vocab.tokens[vocab.padId],
    ...(contextLength === undefined ? {} : { model_max_length: contextLength }),
  };
}
