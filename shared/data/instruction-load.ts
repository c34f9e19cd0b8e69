/**
 * Instruction datasets: records with `instruction`, `input` and `output` fields (JSON Lines keys or the columns of a
 * CSV/TSV header), or the built-in `spam-instructions`, rendered through the prompt template into examples whose
 * `text` is the prompt and `response` the answer.
 */
import { resolve } from 'node:path';
import { ErrorCode, InputFileError } from '../errors.js';
import { parseDelimited } from './delimited.js';
import { buildSpamInstructions } from './instruction-spam.js';
import { readDatasetFile } from './load.js';
import { renderInstruction, validatePromptTemplate, type InstructionRecord } from './instruction-template.js';
import { parseDatasetSpec } from './spec.js';
import type { RawExample } from './types.js';

/** The record fields, by role. `input` may be absent (read as empty). */
const FIELDS = ['instruction', 'input', 'output'] as const;

/**
 * Load an instruction dataset and render each record.
 *
 * - `spam-instructions`: {@link buildSpamInstructions}; `spam-assassin` is refused (it has no instructions).
 * - `jsonl:PATH`: one object per line with string `instruction` and `output` and an optional string `input`.
 * - `csv:PATH`, `tsv:PATH`: a header naming `instruction`, `output` and optionally `input`.
 *
 * @param promptTemplate see `renderInstruction`; null = Alpaca's.
 * @throws InputFileError E_DATASET naming the file and line for a missing file, invalid JSON, a missing or
 *   non-string field, an empty file; ConfigError E_CONFIG_INVALID for a bad template.
 */
export async function loadInstructionExamples(spec: string, promptTemplate: string | null, baseDir?: string): Promise<RawExample[]> {
  if (promptTemplate !== null) validatePromptTemplate(promptTemplate);
  const records = await loadInstructionRecords(spec, baseDir);
  return records.map((record) => {
    const { prompt, response } = renderInstruction(record, promptTemplate);
    return { text: prompt, response };
  });
}

/**
 * The raw records of an instruction dataset (see {@link loadInstructionExamples}).
 * @throws as {@link loadInstructionExamples}.
 */
export async function loadInstructionRecords(spec: string, baseDir?: string): Promise<InstructionRecord[]> {
  if (spec.trim() === 'spam-instructions') return buildSpamInstructions();
  const parsed = parseDatasetSpec(spec, baseDir);
  if (parsed.kind === 'builtin') {
    throw new InputFileError(ErrorCode.DATASET, `dataset "${spec}" holds e-mails, not instruction records: use spam-instructions, or jsonl:/csv:/tsv: with instruction, input and output fields`);
  }
  const path = resolve(parsed.path);
  const text = await readDatasetFile(path, spec);
  const records = parsed.scheme === 'jsonl' ? readJsonl(text, path) : readDelimited(text, parsed.scheme === 'csv' ? ',' : '\t', path);
  if (records.length === 0) throw new InputFileError(ErrorCode.DATASET, `dataset file ${path} holds no instruction records`);
  return records;
}

function readJsonl(text: string, path: string): InstructionRecord[] {
  const records: InstructionRecord[] = [];
  const lines = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).split(/\r?\n/);
  lines.forEach((source, index) => {
    if (source.trim() === '') return;
    const fail = (problem: string): never => {
      throw new InputFileError(ErrorCode.DATASET, `${path} line ${index + 1}: ${problem}`);
    };
    let row: unknown;
    try {
      row = JSON.parse(source);
    } catch (err) {
      fail(`invalid JSON (${(err as Error).message})`);
    }
    if (row === null || typeof row !== 'object' || Array.isArray(row)) fail('expected a JSON object');
    const values = row as Record<string, unknown>;
    const field = (name: (typeof FIELDS)[number]): string => {
      const value = Object.hasOwn(values, name) ? values[name] : undefined;
      if (value === undefined || value === null) return name === 'input' ? '' : fail(`missing key "${name}"`);
      return typeof value === 'string' ? value : fail(`key "${name}" is a ${Array.isArray(value) ? 'array' : typeof value}; expected a string`);
    };
    records.push({ instruction: field('instruction'), input: field('input'), output: field('output') });
  });
  return records;
}

function readDelimited(text: string, delimiter: ',' | '\t', path: string): InstructionRecord[] {
  const table = parseDelimited(text, delimiter, path);
  const column = (name: string, required: boolean): number => {
    const at = table.header.indexOf(name);
    if (at < 0 && required) {
      throw new InputFileError(ErrorCode.DATASET, `${path} line ${table.headerLine}: missing column "${name}" in the header; columns are ${table.header.map((h) => `"${h}"`).join(', ')}`);
    }
    return at;
  };
  const [instruction, input, output] = [column('instruction', true), column('input', false), column('output', true)];
  return table.records.map(({ fields }) => ({ instruction: fields[instruction], input: input < 0 ? '' : fields[input], output: fields[output] }));
}
