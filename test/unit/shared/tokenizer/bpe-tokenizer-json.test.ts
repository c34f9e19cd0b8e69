/**
 * A trained byte-level BPE tokenizer as Hugging Face files, loaded back through `@huggingface/tokenizers`:
 * encode/decode round-trips any UTF-8 text, encoding applies the merges by rank, and the files are byte-stable.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../../shared/errors.js';
import { GPT2_SPLIT_PATTERN, toByteLevel } from '../../../../shared/tokenizer/bpe-byte-level.js';
import { loadBpeTokenizerDir, writeBpeTokenizerDir } from '../../../../shared/tokenizer/bpe-tokenizer-json.js';
import { runBpeTrainJob } from '../../../../shared/tokenizer/bpe-train-job.js';
import { BpeWordCounter, trainBpe, type BpeModel } from '../../../../shared/tokenizer/bpe-trainer.js';
import type { TextTokenizer } from '../../../../shared/tokenizer/text-tokenizer.js';

const ROOT = join(import.meta.dirname, '..', '..', '..', '..');
const CORPUS = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** GPT-2's `bpe()`: merge the lowest-ranked adjacent pair, all its occurrences, until none is ranked. */
function referenceEncode(model: BpeModel, text: string): number[] {
  const ranks = new Map(model.merges.map(([a, b], i) => [`${a} ${b}`, i]));
  const ids = new Map(model.tokens.map((t, i) => [t, i]));
  const out: number[] = [];
  for (const piece of text.match(GPT2_SPLIT_PATTERN) ?? []) {
    let symbols = [...toByteLevel(piece)];
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const r = ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
      }
      if (best < 0) break;
      const [a, b] = [symbols[best], symbols[best + 1]];
      const next: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === a && symbols[i + 1] === b) next.push(a + b), i++;
        else next.push(symbols[i]);
      }
      symbols = next;
    }
    for (const s of symbols) out.push(ids.get(s) as number);
  }
  return out;
}

describe('byte-level BPE tokenizer files', () => {
  let model: BpeModel;
  let dir: string;
  let tokenizer: TextTokenizer;

  beforeAll(async () => {
    const counter = new BpeWordCounter(['<|endoftext|>', '<|pad|>']);
    counter.add(CORPUS);
    model = trainBpe(counter.byteLevelCounts(), { vocabSize: 800, specialTokens: ['<|endoftext|>', '<|pad|>'] });
    dir = mkdtempSync(join(tmpdir(), 'swarmtune-bpe-'));
    await writeBpeTokenizerDir(dir, model);
    tokenizer = await loadBpeTokenizerDir(dir);
  });

  it('loads through @huggingface/tokenizers with the special ids from tokenizer_config.json', () => {
    expect(tokenizer.vocabSize).toBe(800);
    expect(tokenizer.bosId).toBe(0);
    expect(tokenizer.eosId).toBe(0);
    expect(tokenizer.padId).toBe(1);
    expect(tokenizer.encode('hello', { addBos: true, addEos: true }).at(-1)).toBe(0);
    const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
    expect(json.model.type).toBe('BPE');
    expect(json.pre_tokenizer).toEqual({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true });
    expect(json.decoder.type).toBe('ByteLevel');
    expect(Object.keys(json.model.vocab)).toHaveLength(800);
    expect(json.model.merges).toHaveLength(model.merges.length);
  });

  it('encodes as the merges say, by rank (a reference GPT-2 bpe())', () => {
    for (const text of [CORPUS.slice(0, 4000), 'Hello, world! 1234 — naïve café 日本語 🙂\n\n  tabs\tand  spaces ']) {
      expect(tokenizer.encode(text, { addBos: false })).toEqual(referenceEncode(model, text));
    }
  });

  it('round-trips text with emoji, CJK, combining marks, control characters and odd whitespace', () => {
    const samples = [
      '',
      ' ',
      '\n\n\n',
      'a\u0000b\u0007c\u001b[0m',
      '👩‍👩‍👧‍👦 🏳️‍🌈 🙂🙂',
      '中文字符 日本語のテキスト 한국어',
      'e\u0301 a\u030a \ufeffBOM \u200bzero-width',
      '\r\n\t \u00a0\u2028\u2029 trailing   ',
      "it's they're we've I'm you'll he'd",
      '<|pad|> is text here',
    ];
    for (const s of samples) expect(tokenizer.decode(tokenizer.encode(s))).toBe(s.replace('<|pad|>', ''));
  });

  it('round-trips any UTF-8 text (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (s) => {
        const ids = tokenizer.encode(s, { addBos: false });
        expect(ids.every((id) => Number.isInteger(id) && id >= 2 && id < 800)).toBe(true);
        expect(tokenizer.decode(ids)).toBe(s);
      }),
      { numRuns: 400, seed: 7 },
    );
  });

  it('compresses English: fewer tokens than bytes on the training text', () => {
    const ids = tokenizer.encode(CORPUS.slice(0, 20_000), { addBos: false });
    expect(ids.length).toBeLessThan(Buffer.byteLength(CORPUS.slice(0, 20_000)) / 2);
  });

  it('refuses a folder without tokenizer files (E_MODEL_FILE)', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'swarmtune-bpe-empty-'));
    await expect(loadBpeTokenizerDir(empty)).rejects.toMatchObject({ code: ErrorCode.MODEL_FILE });
  });
});

describe('runBpeTrainJob', () => {
  it('trains twice to byte-identical files, with the requested vocabulary size', async () => {
    const input = join(mkdtempSync(join(tmpdir(), 'swarmtune-bpe-in-')), 'corpus.txt');
    writeFileSync(input, CORPUS);
    const outA = mkdtempSync(join(tmpdir(), 'swarmtune-bpe-a-'));
    const outB = mkdtempSync(join(tmpdir(), 'swarmtune-bpe-b-'));
    const a = await runBpeTrainJob({ inputFiles: [input], outputDir: outA, vocabSize: 600 });
    const b = await runBpeTrainJob({ inputFiles: [input], outputDir: outB, vocabSize: 600 });
    expect(a.vocabSize).toBe(600);
    expect(b.tokenizerJsonSha256).toBe(a.tokenizerJsonSha256);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      expect(readFileSync(join(outB, f))).toEqual(readFileSync(join(outA, f)));
    }
  });

  it('samples by seed: the same seed gives the same files, another seed other text', async () => {
    const input = join(mkdtempSync(join(tmpdir(), 'swarmtune-bpe-in-')), 'corpus.txt');
    writeFileSync(input, CORPUS);
    const run = (seed: number) =>
      runBpeTrainJob({ inputFiles: [input], outputDir: mkdtempSync(join(tmpdir(), 'swarmtune-bpe-s-')), vocabSize: 400, maxInputChars: 5000, seed });
    const [a, b, c] = [await run(1), await run(1), await run(2)];
    expect(a.numInputChars).toBeLessThanOrEqual(5000);
    expect(b.tokenizerJsonSha256).toBe(a.tokenizerJsonSha256);
    expect(c.tokenizerJsonSha256).not.toBe(a.tokenizerJsonSha256);
  });

  it('names an unreadable input file (E_DATASET)', async () => {
    await expect(
      runBpeTrainJob({ inputFiles: ['/nonexistent/corpus.txt'], outputDir: mkdtempSync(join(tmpdir(), 'swarmtune-bpe-x-')) }),
    ).rejects.toMatchObject({ code: ErrorCode.DATASET, message: expect.stringContaining('/nonexistent/corpus.txt') });
  });
});
