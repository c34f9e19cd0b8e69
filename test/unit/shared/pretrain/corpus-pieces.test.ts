import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CorpusDocument } from '../../../../shared/data/pretraining-corpus.js';
import { cachedCorpusPieces, packCorpusPieces, piecesToJsonl } from '../../../../shared/pretrain/corpus-pieces.js';

// One token per word (a space attaches to the word after it), as a byte-level BPE pre-tokenizer splits.
const wordTokenizer = {
  sha256: 'words',
  encode: (text: string) => (text.match(/ ?\S+/g) ?? []).map((_, i) => i),
};

const doc = (id: string, text: string): CorpusDocument => ({ source: 'brown', id, text });

describe('packCorpusPieces', () => {
  it('packs whole sentences up to the token budget, never across documents', () => {
    const docs = [doc('a', 'One two three. Four five! Six seven eight nine? Ten.'), doc('b', 'Eleven twelve.')];
    const { texts, numTokens } = packCorpusPieces(docs, wordTokenizer, 5);
    expect(texts).toEqual(['One two three. Four five!', 'Six seven eight nine? Ten.', 'Eleven twelve.']);
    expect(numTokens).toBe(12);
    for (const t of texts) expect(wordTokenizer.encode(t).length).toBeLessThanOrEqual(5);
  });

  it('keeps a sentence longer than the budget as its own piece (the run chunks it)', () => {
    const { texts } = packCorpusPieces([doc('a', 'Short. a b c d e f g h. End.')], wordTokenizer, 3);
    expect(texts).toEqual(['Short.', 'a b c d e f g h.', 'End.']);
  });

  it('refuses a budget below one token', () => {
    expect(() => packCorpusPieces([], wordTokenizer, 0)).toThrow(RangeError);
  });
});

describe('cachedCorpusPieces', () => {
  it('writes JSON Lines once and reuses them for the same documents and tokenizer', async () => {
    const root = mkdtempSync(join(tmpdir(), 'swarmtune-pieces-'));
    const split = { train: [doc('a', 'One two. Three "four".')], heldOut: [doc('b', 'Five six.')] };
    const first = await cachedCorpusPieces(root, split, wordTokenizer, 8);
    expect(first.isCached).toBe(false);
    expect(readFileSync(first.trainPath, 'utf8')).toBe(piecesToJsonl(['One two. Three "four".']));
    expect(first.heldOut).toEqual({ numPieces: 1, numTokens: 2, numChars: 9 });
    const again = await cachedCorpusPieces(root, split, wordTokenizer, 8);
    expect(again).toEqual({ ...first, isCached: true });
    const changed = await cachedCorpusPieces(root, { ...split, heldOut: [doc('b', 'Five seven.')] }, wordTokenizer, 8);
    expect(changed.isCached).toBe(false);
    expect(changed.heldOutPath).not.toBe(first.heldOutPath);
  });
});
