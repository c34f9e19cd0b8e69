import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadExamples } from '../../../../shared/data/load.js';
import { ErrorCode, InputFileError } from '../../../../shared/errors.js';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/data/', import.meta.url));
const fixture = (name: string): string => join(FIXTURES, name);

async function failure(promise: Promise<unknown>): Promise<InputFileError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(InputFileError);
    expect((err as InputFileError).code).toBe(ErrorCode.DATASET);
    return err as InputFileError;
  }
  throw new Error('expected an InputFileError');
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swarmtune-data-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loadExamples from JSONL', () => {
  it('reads text and label per line, skipping blank lines', async () => {
    const examples = await loadExamples(`jsonl:${fixture('emails.jsonl')}`, { task: 'classification' });
    expect(examples).toHaveLength(10);
    expect(examples[0]).toEqual({ text: 'Hi team, the meeting moved to 3pm tomorrow.', label: 'ham' });
    expect(examples[3]).toEqual({ text: 'Cheap meds, no prescription needed. Order today!', label: 'spam' });
    expect(examples[4].text).toBe('Lunch on Friday? The usual place — café Zoë.');
    expect(examples[9].text).toBe('Re: your invoice\nPlease find the corrected totals below.');
    expect(examples.filter((e) => e.label === 'spam')).toHaveLength(4);
  });

  it('reads the text only for causal-lm, with no label required', async () => {
    const examples = await loadExamples(`jsonl:${fixture('stories.jsonl')}`, { task: 'causal-lm' });
    expect(examples).toHaveLength(6);
    expect(examples[0]).toEqual({ text: 'Once upon a time, there was a little girl named Lily.' });
    const withLabels = await loadExamples(`jsonl:${fixture('emails.jsonl')}`, { task: 'causal-lm' });
    expect(withLabels.every((e) => e.label === undefined)).toBe(true);
  });

  it('resolves a relative path against baseDir', async () => {
    const examples = await loadExamples('jsonl:stories.jsonl', { task: 'causal-lm', baseDir: FIXTURES });
    expect(examples).toHaveLength(6);
  });

  it('reads custom columns and turns number and boolean labels into strings', async () => {
    const path = join(dir, 'custom.jsonl');
    await writeFile(path, '{"body": "a", "y": 1}\n{"body": "b", "y": false}\n{"body": "", "y": "x"}\r\n');
    const examples = await loadExamples(`jsonl:${path}`, { task: 'classification', textColumn: 'body', labelColumn: 'y' });
    expect(examples).toEqual([
      { text: 'a', label: '1' },
      { text: 'b', label: 'false' },
      { text: '', label: 'x' },
    ]);
  });

  it('names the file and line of invalid JSON', async () => {
    const err = await failure(loadExamples(`jsonl:${fixture('bad-json.jsonl')}`, { task: 'classification' }));
    expect(err.message).toContain(`${fixture('bad-json.jsonl')} line 3: invalid JSON`);
  });

  it('names the file and line of a missing label', async () => {
    const err = await failure(loadExamples(`jsonl:${fixture('missing-label.jsonl')}`, { task: 'classification' }));
    expect(err.message).toContain('line 7');
    expect(err.message).toContain('missing label key "label"');
  });

  it('rejects a line that is not an object, a non-string text and a missing text key', async () => {
    const path = join(dir, 'shapes.jsonl');
    await writeFile(path, '{"text": "ok", "label": "a"}\n[1, 2]\n');
    expect((await failure(loadExamples(`jsonl:${path}`, { task: 'causal-lm' }))).message).toContain('line 2: expected a JSON object');
    await writeFile(path, '{"text": 5}\n');
    expect((await failure(loadExamples(`jsonl:${path}`, { task: 'causal-lm' }))).message).toContain('line 1: key "text" is a number');
    await writeFile(path, '{"text": "a"}\n{"txt": "b"}\n');
    expect((await failure(loadExamples(`jsonl:${path}`, { task: 'causal-lm' }))).message).toContain('line 2: missing key "text"');
  });

  it('rejects an empty file', async () => {
    const path = join(dir, 'empty.jsonl');
    await writeFile(path, '\n\n');
    expect((await failure(loadExamples(`jsonl:${path}`, { task: 'causal-lm' }))).message).toContain('no examples');
  });
});

describe('loadExamples from CSV and TSV', () => {
  it('reads an RFC 4180 CSV with quotes, commas and line breaks in fields', async () => {
    const examples = await loadExamples(`csv:${fixture('emails.csv')}`, { task: 'classification' });
    expect(examples).toEqual([
      { text: 'Hello, world', label: 'ham' },
      { text: 'She said "stop", then left', label: 'ham' },
      { text: 'plain text without quotes', label: 'spam' },
      { text: 'two\nlines', label: 'spam' },
      { text: '', label: 'ham' },
      { text: 'trailing comma field', label: 'spam' },
    ]);
  });

  it('reads a TSV with custom column names', async () => {
    const examples = await loadExamples(`tsv:${fixture('emails.tsv')}`, {
      task: 'classification',
      textColumn: 'body',
      labelColumn: 'category',
    });
    expect(examples).toEqual([
      { text: 'first message body', label: 'ham' },
      { text: 'quoted\tfield with a tab', label: 'spam' },
      { text: 'third one', label: 'ham' },
    ]);
  });

  it('names a missing column and lists the columns there are', async () => {
    const err = await failure(loadExamples(`csv:${fixture('missing-label-column.csv')}`, { task: 'classification' }));
    expect(err.message).toContain('line 1: missing column "label"');
    expect(err.message).toContain('"text", "category"');
    // The label column is not needed for causal-lm.
    expect(await loadExamples(`csv:${fixture('missing-label-column.csv')}`, { task: 'causal-lm' })).toHaveLength(2);
  });

  it('names the line of a ragged row and of an unterminated quote', async () => {
    expect((await failure(loadExamples(`csv:${fixture('ragged.csv')}`, { task: 'classification' }))).message).toContain('line 4');
    expect((await failure(loadExamples(`csv:${fixture('unterminated.csv')}`, { task: 'classification' }))).message).toContain('line 3');
  });

  it('rejects an empty label with its line', async () => {
    const path = join(dir, 'empty-label.csv');
    await writeFile(path, 'text,label\na,ham\nb,\n');
    expect((await failure(loadExamples(`csv:${path}`, { task: 'classification' }))).message).toContain('line 3: empty label');
  });
});

describe('loadExamples errors', () => {
  it('names a missing file and the spec', async () => {
    const path = join(dir, 'nope.jsonl');
    const err = await failure(loadExamples(`jsonl:${path}`, { task: 'classification' }));
    expect(err.message).toContain(path);
    expect(err.message).toContain('not found');
  });

  it('rejects an unknown spec scheme', async () => {
    const err = await failure(loadExamples('parquet:x.parquet', { task: 'classification' }));
    expect(err.message).toContain('scheme "parquet"');
  });
});
