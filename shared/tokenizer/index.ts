/** Text tokenizers: the llama SentencePiece tokenizer from GGUF metadata, as a Hugging Face tokenizer. */
export { tokenizerFromGguf, tokenizerFromJson, type EncodeOptions, type TextTokenizer } from './text-tokenizer.js';
export { readSpmVocab, TokenType, type SpmVocab } from './gguf-vocab.js';
export {
  buildTokenizerConfig,
  buildTokenizerJson,
  deriveMerges,
  SPM_SPACE,
  type HfAddedToken,
  type HfTokenizerJson,
} from './hf-tokenizer-json.js';
export { encodeSpmReference } from './spm-reference.js';
