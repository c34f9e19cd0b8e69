import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MODEL_PATH } from '../../../../shared/config.js';
import { loadSpamAssassin } from '../../../../shared/data/spam-assassin.js';
import { tokenizeForCausalLm, tokenizeForClassification, type DataTokenizer } from '../../../../shared/data/tokenize.js';
import { ErrorCode, errorCodeOf } from '../../../../shared/errors.js';
import { parseGguf } from '../../../../shared/formats/gguf.js';
import { tokenizerFromGguf } from '../../../../shared/tokenizer/text-tokenizer.js';
import { caught } from '../../../helpers/caught.js';

/** One token per character (id 3 + code point % 500); counts its calls and the characters it was given. */
class CharTokenizer implements DataTokenizer {
  readonly padId = 0;
  readonly bosId = 1;
  readonly eosId = 2;
  charsEncoded = 0;
  encode(text: string, opts: { addBos?: boolean; addEos?: boolean }): number[] {
    this.charsEncoded += text.length;
    const ids = [...text].map((c) => 3 + (c.codePointAt(0)! % 500));
    return [...(opts.addBos ?? true ? [this.bosId] : []), ...ids, ...(opts.addEos ? [this.eosId] : [])];
  }
}

const ids = (text: string): number[] => [...text].map((c) => 3 + (c.codePointAt(0)! % 500));

describe('tokenizeForClassification', () => {
  it('is BOS + text, truncated to maxLength, with the label id from the label set', () => {
    const tokenizer = new CharTokenizer();
    const items = tokenizeForClassification(
      [
        { text: 'hi', label: 'spam' },
        { text: 'abcdefgh', label: 'ham' },
      ],
      tokenizer,
      { maxLength: 5, labels: ['ham', 'spam'] },
    );
    expect(items[0]).toEqual({ ids: Int32Array.from([1, ...ids('hi')]), label: 1 });
    expect(items[1]).toEqual({ ids: Int32Array.from([1, ...ids('abcd')]), label: 0 });
  });

  it('encodes only a head of a long text, with the same result as encoding all of it', () => {
    const tokenizer = new CharTokenizer();
    const words = Array.from({ length: 20_000 }, (_, i) => `w${i % 97}`).join(' ');
    const [item] = tokenizeForClassification([{ text: words, label: 'a' }], tokenizer, { maxLength: 64, labels: ['a'] });
    expect(Array.from(item.ids)).toEqual([1, ...ids(words).slice(0, 63)]);
    expect(tokenizer.charsEncoded).toBeLessThan(5_000);
  });

  it('rejects unknown or missing labels and a maxLength below 2', () => {
    const tokenizer = new CharTokenizer();
    const run = (examples: { text: string; label?: string }[], maxLength = 8) => () =>
      tokenizeForClassification(examples, tokenizer, { maxLength, labels: ['ham', 'spam'] });
    expect(errorCodeOf(caught(run([{ text: 'x', label: 'eggs' }])))).toBe(ErrorCode.DATASET);
    expect(errorCodeOf(caught(run([{ text: 'x' }])))).toBe(ErrorCode.DATASET);
    expect(errorCodeOf(caught(run([{ text: 'x', label: 'ham' }], 1)))).toBe(ErrorCode.CONFIG_INVALID);
  });
});

describe('tokenizeForCausalLm', () => {
  it('is BOS + text + EOS when it fits', () => {
    const items = tokenizeForCausalLm([{ text: 'abc' }, { text: '' }], new CharTokenizer(), { maxLength: 8 });
    expect(items.map((item) => Array.from(item.ids))).toEqual([[1, ...ids('abc'), 2], [1, 2]]);
    expect(items[0].label).toBeUndefined();
  });

  it('chunks a long document into windows overlapping by one token, so every next-token pair is kept once', () => {
    const text = 'abcdefghij'; // 12 tokens with BOS and EOS
    const full = [1, ...ids(text), 2];
    const items = tokenizeForCausalLm([{ text }], new CharTokenizer(), { maxLength: 5 });
    expect(items.map((item) => Array.from(item.ids))).toEqual([full.slice(0, 5), full.slice(4, 9), full.slice(8, 12)]);
    const pairs = items.flatMap((item) => Array.from(item.ids.subarray(1), (next, t) => `${item.ids[t]}>${next}`));
    expect(pairs).toEqual(full.slice(1).map((next, t) => `${full[t]}>${next}`));
  });

  it('drops a last window of a single token (it has no target)', () => {
    const text = 'abcdefg'; // 9 tokens; windows of 5 start at 0 and 4; the one at 8 would hold only EOS
    const items = tokenizeForCausalLm([{ text }], new CharTokenizer(), { maxLength: 5 });
    expect(items.map((item) => item.ids.length)).toEqual([5, 5]);
    expect(items[1].ids[4]).toBe(2);
  });

  it('truncates instead when asked', () => {
    const items = tokenizeForCausalLm([{ text: 'abcdefghij' }], new CharTokenizer(), { maxLength: 5, overflow: 'truncate' });
    expect(items.map((item) => Array.from(item.ids))).toEqual([[1, ...ids('abcd')]]);
  });
});

const hasModel = existsSync(DEFAULT_MODEL_PATH);
if (!hasModel) console.warn(`SKIPPING real-tokenizer tokenization tests: ${DEFAULT_MODEL_PATH} is absent`);

describe('with the real stories260K tokenizer', () => {
  it.skipIf(!hasModel)('head encoding equals full encoding on 300 real e-mails', async () => {
    const gguf = parseGguf(new Uint8Array(await readFile(DEFAULT_MODEL_PATH)), DEFAULT_MODEL_PATH);
    const tokenizer = tokenizerFromGguf(gguf.metadata);
    const corpus = await loadSpamAssassin();
    // Long e-mails are the ones the head encoding shortcuts (it encodes ~1 KiB); short ones go the plain path.
    const long = corpus.filter((e) => e.text.length > 2_000 && e.text.length < 20_000).filter((_, i) => i % 5 === 0).slice(0, 150);
    const sample = long.concat(corpus.filter((e) => e.text.length <= 2_000).slice(0, 150));
    expect(long).toHaveLength(150);
    const items = tokenizeForClassification(sample, tokenizer, { maxLength: 64, labels: ['ham', 'spam'] });
    sample.forEach((example, i) => {
      const expected = [tokenizer.bosId, ...tokenizer.encode(example.text, { addBos: false })].slice(0, 64);
      expect(Array.from(items[i].ids)).toEqual(expected);
      expect(items[i].label).toBe(example.label === 'spam' ? 1 : 0);
    });
  });
});
