import { describe, expect, it } from 'vitest';
import { parseDelimited } from '../../../../shared/data/delimited.js';
import { ErrorCode, InputFileError } from '../../../../shared/errors.js';

function failure(text: string, delimiter: ',' | '\t' = ','): InputFileError {
  try {
    parseDelimited(text, delimiter, 'mem.csv');
  } catch (err) {
    expect(err).toBeInstanceOf(InputFileError);
    expect((err as InputFileError).code).toBe(ErrorCode.DATASET);
    return err as InputFileError;
  }
  throw new Error('expected an InputFileError');
}

describe('parseDelimited (RFC 4180)', () => {
  it('parses quoted fields with delimiters, doubled quotes and line breaks, with start lines', () => {
    const table = parseDelimited('a,b\r\n"x, y","say ""hi"""\r\n"multi\r\nline",2\r\nplain,\r\n', ',', 'mem.csv');
    expect(table.header).toEqual(['a', 'b']);
    expect(table.headerLine).toBe(1);
    expect(table.records).toEqual([
      { line: 2, fields: ['x, y', 'say "hi"'] },
      { line: 3, fields: ['multi\r\nline', '2'] },
      { line: 5, fields: ['plain', ''] },
    ]);
  });

  it('handles a missing final newline, LF and CR line ends, blank lines and a BOM', () => {
    const table = parseDelimited('\ufeffa,b\n\n1,2\r3,4\n\n5,6', ',', 'mem.csv');
    expect(table.header).toEqual(['a', 'b']);
    expect(table.records.map((r) => [r.line, ...r.fields])).toEqual([
      [3, '1', '2'],
      [4, '3', '4'],
      [6, '5', '6'],
    ]);
  });

  it('keeps a quote inside an unquoted field and an empty quoted field', () => {
    const table = parseDelimited('a,b\n5" disk,""\n', ',', 'mem.csv');
    expect(table.records[0].fields).toEqual(['5" disk', '']);
  });

  it('parses TSV with the same quoting rules', () => {
    const table = parseDelimited('a\tb\n"x\ty"\tz\n1,2\t3\n', '\t', 'mem.tsv');
    expect(table.records.map((r) => r.fields)).toEqual([
      ['x\ty', 'z'],
      ['1,2', '3'],
    ]);
  });

  it('reports an unterminated quote at the line where the field starts', () => {
    const err = failure('a,b\n1,2\n"open,3\n4,5\n');
    expect(err.message).toContain('mem.csv line 3');
    expect(err.message).toContain('unterminated');
  });

  it('reports text after a closing quote with its line', () => {
    expect(failure('a,b\n1,2\n"x"y,3\n').message).toContain('line 3');
  });

  it('reports a record with the wrong number of fields', () => {
    const err = failure('a,b\n1,2\n\n3,4,5\n');
    expect(err.message).toContain('line 4');
    expect(err.message).toContain('expected 2 fields');
  });

  it('reports an empty file, an empty column name and a duplicate column', () => {
    expect(failure('').message).toContain('no header');
    expect(failure('a,,c\n').message).toContain('column 2');
    expect(failure('a,b,a\n').message).toContain('duplicate column "a"');
  });
});
