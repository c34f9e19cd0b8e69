import { describe, expect, it } from 'vitest';
import { labelIndex, labelSet } from '../../../../shared/data/labels.js';
import { ErrorCode, InputFileError } from '../../../../shared/errors.js';

describe('labelSet', () => {
  it('is the sorted distinct labels, so ham = 0 and spam = 1', () => {
    expect(labelSet([{ text: '', label: 'spam' }, { text: '', label: 'ham' }, { text: '', label: 'spam' }])).toEqual(['ham', 'spam']);
  });

  it('sorts integer labels numerically and other labels by code unit', () => {
    const of = (...labels: string[]) => labelSet(labels.map((label) => ({ text: '', label })));
    expect(of('10', '2', '0', '1')).toEqual(['0', '1', '2', '10']);
    expect(of('b', 'B', 'a', '10', '2')).toEqual(['10', '2', 'B', 'a', 'b']);
    expect(of('01', '1')).toEqual(['01', '1']);
  });

  it('ignores examples without a label', () => {
    expect(labelSet([{ text: 'x' }, { text: 'y', label: 'a' }])).toEqual(['a']);
  });
});

describe('labelIndex', () => {
  it('maps labels to their index and rejects missing or unknown labels', () => {
    const idOf = labelIndex(['ham', 'spam']);
    expect(idOf('ham')).toBe(0);
    expect(idOf('spam')).toBe(1);
    for (const bad of [undefined, 'eggs']) {
      let caught: unknown;
      try {
        idOf(bad, 'example 3');
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(InputFileError);
      expect((caught as InputFileError).code).toBe(ErrorCode.DATASET);
      expect((caught as Error).message).toContain('example 3');
    }
  });
});
