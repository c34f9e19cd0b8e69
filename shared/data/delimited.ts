/**
 * CSV (RFC 4180) and TSV parsing with line numbers for error messages.
 *
 * Rules, the same for both delimiters (as Python's `csv` module and pandas read them): the first record is the
 * header; a field that starts with `"` is quoted, may hold delimiters and line breaks, and writes a quote as `""`;
 * a quote inside an unquoted field is kept literally; records end at CRLF, LF or CR; fully empty lines are skipped;
 * a UTF-8 byte-order mark at the start is dropped.
 */
import { ErrorCode, InputFileError } from '../errors.js';

/** One data record: its fields by header column, and the 1-based line where it starts. */
export interface DelimitedRecord {
  readonly line: number;
  readonly fields: readonly string[];
}

/** A parsed table. */
export interface DelimitedTable {
  /** Column names from the header record. */
  readonly header: readonly string[];
  /** 1-based line of the header record (the first non-empty line). */
  readonly headerLine: number;
  /** Data records, each with exactly `header.length` fields. */
  readonly records: readonly DelimitedRecord[];
}

/**
 * Parse delimited text.
 *
 * @param text the whole file.
 * @param delimiter `,` for CSV, `\t` for TSV.
 * @param source what to call the text in errors (a file path).
 * @throws InputFileError E_DATASET naming the source and the line for: no header, an empty or duplicate column name,
 *   an unterminated quoted field, text after a closing quote, a record whose field count differs from the header's.
 */
export function parseDelimited(text: string, delimiter: ',' | '\t', source: string): DelimitedTable {
  const fail = (line: number, problem: string): never => {
    throw new InputFileError(ErrorCode.DATASET, `${source} line ${line}: ${problem}`);
  };
  const input = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const all: DelimitedRecord[] = [];
  let i = 0;
  let line = 1;
  const n = input.length;

  const atEndOfRecord = (at: number): boolean => at >= n || input[at] === '\n' || input[at] === '\r';
  const skipNewline = (): void => {
    if (input[i] === '\r' && input[i + 1] === '\n') i += 2;
    else i += 1;
    line += 1;
  };

  while (i < n) {
    const recordLine = line;
    if (atEndOfRecord(i)) {
      skipNewline();
      continue;
    }
    const fields: string[] = [];
    for (;;) {
      if (input[i] === '"') {
        const fieldLine = line;
        let value = '';
        i += 1;
        for (;;) {
          const close = input.indexOf('"', i);
          if (close < 0) fail(fieldLine, 'unterminated quoted field (a " is never closed)');
          const chunk = input.slice(i, close);
          value += chunk;
          line += countLineBreaks(chunk);
          if (input[close + 1] === '"') {
            value += '"';
            i = close + 2;
          } else {
            i = close + 1;
            break;
          }
        }
        if (!atEndOfRecord(i) && input[i] !== delimiter) {
          fail(line, `unexpected character ${JSON.stringify(input[i])} after a closing quote (write a quote inside a quoted field as "")`);
        }
        fields.push(value);
      } else {
        let end = i;
        while (end < n && input[end] !== delimiter && input[end] !== '\n' && input[end] !== '\r') end += 1;
        fields.push(input.slice(i, end));
        i = end;
      }
      if (input[i] === delimiter) {
        i += 1;
        if (atEndOfRecord(i)) {
          fields.push('');
          break;
        }
        continue;
      }
      break;
    }
    if (i < n) skipNewline();
    all.push({ line: recordLine, fields });
  }

  if (all.length === 0) fail(1, 'no header row (the file is empty)');
  const [headerRecord, ...records] = all;
  const header = headerRecord.fields.map((name) => name.trim());
  const seen = new Set<string>();
  header.forEach((name, column) => {
    if (name === '') fail(headerRecord.line, `column ${column + 1} of the header has no name`);
    if (seen.has(name)) fail(headerRecord.line, `duplicate column "${name}" in the header`);
    seen.add(name);
  });
  for (const record of records) {
    if (record.fields.length !== header.length) {
      fail(record.line, `expected ${header.length} fields as in the header but found ${record.fields.length}`);
    }
  }
  return { header, headerLine: headerRecord.line, records };
}

function countLineBreaks(chunk: string): number {
  let count = 0;
  for (let j = 0; j < chunk.length; j++) {
    const c = chunk[j];
    if (c === '\n') count += 1;
    else if (c === '\r' && chunk[j + 1] !== '\n') count += 1;
  }
  return count;
}
