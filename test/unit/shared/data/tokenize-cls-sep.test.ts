import { describe, expect, it } from 'vitest';
import { tokenizeForClassification, type DataTokenizer } from '../../../../shared/data/tokenize.js';

/** One id per character: 'a' → 10, 'b' → 11, ... */
function charTokenizer(classificationEos: boolean): DataTokenizer {
  return {
    encode: (text) => [...text.replace(/ /g, '')].map((c) => c.charCodeAt(0) - 87),
    padId: 0,
    bosId: 1,
    eosId: 2,
    classificationEos,
  };
}

describe('classification framing', () => {
  it('BERT: [CLS] text [SEP], and [SEP] survives truncation', () => {
    const examples = [{ text: 'abc', label: 'x' }, { text: 'abcdefgh', label: 'y' }];
    const items = tokenizeForClassification(examples, charTokenizer(true), { maxLength: 5, labels: ['x', 'y'] });
    expect([...items[0].ids]).toEqual([1, 10, 11, 12, 2]);
    expect([...items[1].ids]).toEqual([1, 10, 11, 12, 2]);
    expect(items.map((i) => i.label)).toEqual([0, 1]);
    expect([...tokenizeForClassification([{ text: 'abc', label: 'x' }], charTokenizer(true), { maxLength: 2, labels: ['x'] })[0].ids]).toEqual([1, 2]);
  });

  it('others: [BOS] text, cut at maxLength', () => {
    const items = tokenizeForClassification([{ text: 'abcdefgh', label: 'x' }], charTokenizer(false), { maxLength: 5, labels: ['x'] });
    expect([...items[0].ids]).toEqual([1, 10, 11, 12, 13]);
  });
});
