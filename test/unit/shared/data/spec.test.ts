import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatDatasetSpec, parseDatasetSpec } from '../../../../shared/data/spec.js';
import { ErrorCode, InputFileError } from '../../../../shared/errors.js';

describe('parseDatasetSpec', () => {
  it('parses built-ins and file schemes', () => {
    expect(parseDatasetSpec('spam-assassin')).toEqual({ kind: 'builtin', name: 'spam-assassin' });
    expect(parseDatasetSpec('jsonl:data/a.jsonl')).toEqual({ kind: 'file', scheme: 'jsonl', path: 'data/a.jsonl' });
    expect(parseDatasetSpec('CSV:/abs/b.csv')).toEqual({ kind: 'file', scheme: 'csv', path: '/abs/b.csv' });
    expect(parseDatasetSpec('tsv:C:/x.tsv')).toEqual({ kind: 'file', scheme: 'tsv', path: 'C:/x.tsv' });
  });

  it('resolves relative paths against a base directory when given one', () => {
    expect(parseDatasetSpec('jsonl:a.jsonl', '/base')).toEqual({ kind: 'file', scheme: 'jsonl', path: resolve('/base', 'a.jsonl') });
    expect(parseDatasetSpec('jsonl:/abs/a.jsonl', '/base')).toEqual({ kind: 'file', scheme: 'jsonl', path: '/abs/a.jsonl' });
  });

  it.each([
    ['', 'empty'],
    ['imdb', '"imdb"'],
    ['parquet:x.parquet', 'scheme "parquet"'],
    ['jsonl:', 'names no file'],
  ])('rejects %j with E_DATASET', (spec, fragment) => {
    let caught: unknown;
    try {
      parseDatasetSpec(spec);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InputFileError);
    expect((caught as InputFileError).code).toBe(ErrorCode.DATASET);
    expect((caught as Error).message).toContain(fragment);
  });

  it('formats a parsed spec back to its string', () => {
    for (const spec of ['spam-assassin', 'jsonl:data/a.jsonl', 'tsv:/x/y.tsv']) expect(formatDatasetSpec(parseDatasetSpec(spec))).toBe(spec);
  });
});
