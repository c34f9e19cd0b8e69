/**
 * `loadExamples`: a dataset spec to raw examples (text and, for classification, a string label).
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ErrorCode, InputFileError } from '../errors.js';
import { parseDelimited } from './delimited.js';
import { loadSpamAssassin } from './spam-assassin.js';
import { parseDatasetSpec, type FileScheme } from './spec.js';
import type { LoadOptions, RawExample } from './types.js';

/**
 * Load every example of a dataset, in file order.
 *
 * - `spam-assassin`: the built-in corpus (e-mail bodies, labels `ham`/`spam`); the column options do not apply.
 * - `jsonl:PATH`: one JSON object per line; blank lines are skipped.
 * - `csv:PATH`, `tsv:PATH`: a header row of column names, then one record per row (see `parseDelimited`).
 *
 * The text column must hold a string (it may be empty). For classification the label column must be present and
 * non-empty on every row; JSON numbers and booleans are read as their string form (`1` → `"1"`). For causal-lm the
 * label column is not read and examples have no label.
 *
 * @throws InputFileError E_DATASET naming the file and the line for: an unknown spec, a missing or unreadable file,
 *   invalid JSON, a line that is not an object, a missing column or key, a text that is not a string, a missing or
 *   empty label, an empty dataset.
 */
export async function loadExamples(spec: string, options: LoadOptions): Promise<RawExample[]> {
  const parsed = parseDatasetSpec(spec, options.baseDir);
  if (parsed.kind === 'builtin') {
    if (parsed.name === 'spam-instructions') {
      throw new InputFileError(ErrorCode.DATASET, `dataset "spam-instructions" holds instruction records: it needs task: instruction (task is ${options.task})`);
    }
    const corpus = await loadSpamAssassin();
    return corpus.map(({ text, label }) => (options.task === 'classification' ? { text, label } : { text }));
  }
  const path = resolve(parsed.path);
  const text = await readDatasetFile(path, spec);
  const columns = { text: options.textColumn ?? 'text', label: options.labelColumn ?? 'label' };
  const wantLabel = options.task === 'classification';
  const examples = readRows(parsed.scheme, text, path, columns, wantLabel);
  if (examples.length === 0) throw new InputFileError(ErrorCode.DATASET, `dataset file ${path} holds no examples`);
  return examples;
}

interface Columns {
  readonly text: string;
  readonly label: string;
}

function readRows(scheme: FileScheme, text: string, path: string, columns: Columns, wantLabel: boolean): RawExample[] {
  switch (scheme) {
    case 'jsonl':
      return readJsonl(text, path, columns, wantLabel);
    case 'csv':
    case 'tsv':
      return readDelimited(text, scheme === 'csv' ? ',' : '\t', path, columns, wantLabel);
  }
}

function readJsonl(text: string, path: string, columns: Columns, wantLabel: boolean): RawExample[] {
  const fail = (line: number, problem: string): never => {
    throw new InputFileError(ErrorCode.DATASET, `${path} line ${line}: ${problem}`);
  };
  const examples: RawExample[] = [];
  const lines = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).split(/\r?\n/);
  lines.forEach((source, index) => {
    const line = index + 1;
    if (source.trim() === '') return;
    let row: unknown;
    try {
      row = JSON.parse(source);
    } catch (err) {
      fail(line, `invalid JSON (${(err as Error).message})`);
    }
    if (row === null || typeof row !== 'object' || Array.isArray(row)) fail(line, 'expected a JSON object');
    const record = row as Record<string, unknown>;
    if (!Object.hasOwn(record, columns.text)) fail(line, `missing key "${columns.text}" (the text column)`);
    const value = record[columns.text];
    if (typeof value !== 'string') fail(line, `key "${columns.text}" is ${describe(value)}; expected a string`);
    if (!wantLabel) {
      examples.push({ text: value as string });
      return;
    }
    const label = Object.hasOwn(record, columns.label) ? record[columns.label] : undefined;
    if (label === undefined || label === null) fail(line, `missing label key "${columns.label}"`);
    if (typeof label !== 'string' && typeof label !== 'number' && typeof label !== 'boolean') {
      fail(line, `label key "${columns.label}" is ${describe(label)}; expected a string, number or boolean`);
    }
    const labelText = String(label);
    if (labelText.trim() === '') fail(line, `empty label in key "${columns.label}"`);
    examples.push({ text: value as string, label: labelText });
  });
  return examples;
}

function readDelimited(text: string, delimiter: ',' | '\t', path: string, columns: Columns, wantLabel: boolean): RawExample[] {
  const table = parseDelimited(text, delimiter, path);
  const column = (name: string, role: string): number => {
    const index = table.header.indexOf(name);
    if (index < 0) {
      throw new InputFileError(
        ErrorCode.DATASET,
        `${path} line ${table.headerLine}: missing column "${name}" (the ${role} column) in the header; columns are ${table.header.map((h) => `"${h}"`).join(', ')}`,
      );
    }
    return index;
  };
  const textIndex = column(columns.text, 'text');
  const labelIndex = wantLabel ? column(columns.label, 'label') : -1;
  return table.records.map(({ line, fields }) => {
    if (labelIndex < 0) return { text: fields[textIndex] };
    const label = fields[labelIndex];
    if (label.trim() === '') {
      throw new InputFileError(ErrorCode.DATASET, `${path} line ${line}: empty label in column "${columns.label}"`);
    }
    return { text: fields[textIndex], label };
  });
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/**
 * The text of a dataset file, UTF-8.
 * @throws InputFileError E_DATASET naming the file, whether it is missing or unreadable, and the dataset spec.
 */
export async function readDatasetFile(path: string, spec: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'not found' : `cannot be read (${code ?? String(err)})`;
    throw new InputFileError(ErrorCode.DATASET, `dataset file ${path} ${why} (spec "${spec}")`, { cause: err });
  }
}
