/**
 * Byte-level BPE training: the merge rule, tie-breaking, vocabulary layout and size, and determinism.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../../shared/errors.js';
import { BYTE_LEVEL_ALPHABET, BYTE_TO_CHAR, toByteLevel } from '../../../../shared/tokenizer/bpe-byte-level.js';
import { BpeWordCounter, trainBpe } from '../../../../shared/tokenizer/bpe-trainer.js';

const ROOT = join(import.meta.dirname, '..', '..', '..', '..');

function countsOf(texts: readonly string[], specials: readonly string[] = []): Map<string, number> {
  const counter = new BpeWordCounter(specials);
  for (const t of texts) counter.add(t);
  return counter.byteLevelCounts();
}

describe('byte-level alphabet', () => {
  it("is GPT-2's bytes_to_unicode: printable bytes as themselves, space as Ġ, newline as Ċ", () => {
    expect(new Set(BYTE_TO_CHAR).size).toBe(256);
    expect(BYTE_TO_CHAR[0x41]).toBe('A');
    expect(BYTE_TO_CHAR[0x20]).toBe('Ġ');
    expect(BYTE_TO_CHAR[0x0a]).toBe('Ċ');
    expect(BYTE_TO_CHAR[0xad]).toBe('Ń');
    expect(BYTE_LEVEL_ALPHABET[0]).toBe('!');
    expect(toByteLevel(' é')).toBe('ĠÃ©');
  });
});

describe('trainBpe', () => {
  it('learns the expected first merges of a tiny corpus, ties going to the smaller ids', () => {
    // Words: hug, Ġhug ×2, Ġpug, Ġpun. Counts: u+g 4, then h+ug 3, then Ġ+p and Ġ+hug both 2: Ġ+p wins the tie
    // because p (a byte) has a smaller id than hug (a merged token). Then only count-1 pairs remain.
    const model = trainBpe(countsOf(['hug hug hug pug pun']), { vocabSize: 300 });
    expect(model.merges).toEqual([
      ['u', 'g'],
      ['h', 'ug'],
      ['Ġ', 'p'],
      ['Ġ', 'hug'],
    ]);
    expect(model.tokens.slice(257)).toEqual(['ug', 'hug', 'Ġp', 'Ġhug']);
    expect(model.tokens.length).toBe(261);
  });

  it('with minFrequency 1 goes on merging count-1 pairs', () => {
    const model = trainBpe(countsOf(['hug hug hug pug pun']), { vocabSize: 300, minFrequency: 1 });
    expect(model.merges.slice(0, 4)).toEqual([
      ['u', 'g'],
      ['h', 'ug'],
      ['Ġ', 'p'],
      ['Ġ', 'hug'],
    ]);
    expect(model.merges.length).toBeGreaterThan(4);
  });

  it('lays out the vocabulary: special tokens, the 256 bytes by code point, then merges in order', () => {
    const model = trainBpe(countsOf(['aaa bbb aaa']), { vocabSize: 300, specialTokens: ['<|endoftext|>', '<|pad|>'] });
    expect(model.tokens.slice(0, 2)).toEqual(['<|endoftext|>', '<|pad|>']);
    expect(model.tokens.slice(2, 258)).toEqual(BYTE_LEVEL_ALPHABET);
    expect(model.numSpecialTokens).toBe(2);
    expect(new Set(model.tokens).size).toBe(model.tokens.length);
  });

  it('reaches exactly the requested vocabulary size on enough text', () => {
    const text = readFileSync(join(ROOT, 'README.md'), 'utf8');
    for (const vocabSize of [257, 300, 700]) {
      expect(trainBpe(countsOf([text]), { vocabSize }).tokens.length).toBe(vocabSize);
    }
  });

  it('does not depend on the order words were counted in', () => {
    const text = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const forward = countsOf([text]);
    const reversed = new Map([...forward].reverse());
    const a = trainBpe(forward, { vocabSize: 600 });
    const b = trainBpe(reversed, { vocabSize: 600 });
    expect(b.merges).toEqual(a.merges);
    expect(b.tokens).toEqual(a.tokens);
  });

  it('cuts special tokens out of the text and never learns a token that spells one', () => {
    const counts = countsOf(['ab ab ab<|endoftext|>ab'], ['<|endoftext|>']);
    expect([...counts.keys()].some((w) => w.includes('endoftext'))).toBe(false);
    const model = trainBpe(countsOf(['ab ab ab ab']), { vocabSize: 300, specialTokens: ['ab'] });
    expect(model.tokens.filter((t) => t === 'ab')).toHaveLength(1);
    expect(model.merges).not.toContainEqual(['a', 'b']);
  });

  it('refuses a vocabulary too small for the special tokens and bytes (E_CONFIG_INVALID)', () => {
    expect(() => trainBpe(new Map(), { vocabSize: 256 })).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
    expect(() => trainBpe(new Map(), { vocabSize: 300, specialTokens: ['A'] })).toThrow(
      expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }),
    );
  });
});
