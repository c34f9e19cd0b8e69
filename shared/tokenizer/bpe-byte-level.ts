/**
 * GPT-2's byte-level alphabet and pre-tokenizer, exactly as Hugging Face's `ByteLevel` pre-tokenizer
 * (`use_regex: true`, `add_prefix_space: false`) and the `@huggingface/tokenizers` port apply them: text is cut
 * by GPT-2's regular expression, each piece is UTF-8 encoded, and each byte becomes one printable character.
 */

/**
 * GPT-2's pre-tokenization pattern (contractions, optionally space-led letter/number/symbol runs, whitespace),
 * the one `@huggingface/tokenizers` uses for `ByteLevel`. Global and unicode: create a fresh match per call.
 */
export const GPT2_SPLIT_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * GPT-2's `bytes_to_unicode`: printable bytes map to themselves, the other 68 to U+0100 upwards in byte order,
 * so every byte has a visible, non-space character. Index = byte value.
 */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const chars = new Array<string>(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    chars[b] = printable.includes(b) ? String.fromCharCode(b) : String.fromCharCode(next++);
  }
  return chars;
})();

/** The 256 byte characters sorted by code point: the initial alphabet, in vocabulary-id order. */
export const BYTE_LEVEL_ALPHABET: readonly string[] = [...BYTE_TO_CHAR].sort(
  (a, b) => a.charCodeAt(0) - b.charCodeAt(0),
);

const encoder = new TextEncoder();

/** One pre-token's bytes as byte-level characters (`'Ġthe'` for `' the'`). */
export function toByteLevel(piece: string): string {
  const bytes = encoder.encode(piece);
  let out = '';
  for (const b of bytes) out += BYTE_TO_CHAR[b];
  return out;
}
