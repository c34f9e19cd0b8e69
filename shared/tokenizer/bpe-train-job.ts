/**
 * One tokenizer training job, as `swarmtune tokenizer train` runs it: gather text (files and/or the train split of
 * the pre-training corpus), optionally a seeded sample of it, count words, train byte-level BPE, write the
 * Hugging Face files.
 */
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { ErrorCode, InputFileError } from '../errors.js';
import { loadPretrainingCorpus, type PretrainingSource } from '../data/pretraining-corpus.js';
import { seededPermutation } from '../data/seeded-random.js';
import { BpeWordCounter, trainBpe } from './bpe-trainer.js';
import { writeBpeTokenizerDir } from './bpe-tokenizer-json.js';

/** Default special tokens: end of text (also BOS), then padding. */
export const DEFAULT_BPE_SPECIAL_TOKENS: readonly string[] = ['<|endoftext|>', '<|pad|>'];

/** What to train on and where to write. */
export interface BpeTrainJob {
  /** Text files (UTF-8), each read whole. @default [] */
  readonly inputFiles?: readonly string[];
  /** Pre-training corpus sources whose train split is added (held-out documents are never seen). @default [] */
  readonly corpus?: readonly PretrainingSource[];
  /** Folder for `tokenizer.json` and `tokenizer_config.json`. */
  readonly outputDir: string;
  /** Vocabulary size, special tokens and the 256 byte characters included. @default 2000 */
  readonly vocabSize?: number;
  /** Special tokens; the first is BOS/EOS, the second (if any) padding. @default ['<|endoftext|>', '<|pad|>'] */
  readonly specialTokens?: readonly string[];
  /** See {@link BpeTrainOptions.minFrequency}. @default 2 */
  readonly minFrequency?: number;
  /**
   * Train on at most this many UTF-16 code units: paragraphs (files) and documents (corpus) are taken in a
   * seeded random order until the budget is spent. @default no limit
   */
  readonly maxInputChars?: number;
  /** Seeds the sample above and the corpus's held-out split. @default 42 */
  readonly seed?: number;
  /** Held-out share of the corpus. @default 0.05 */
  readonly heldOutFraction?: number;
  /** Where corpus packages are resolved from (tests). @default this module */
  readonly resolveFrom?: string;
}

/** What a job did. */
export interface BpeTrainSummary {
  readonly outputDir: string;
  readonly vocabSize: number;
  readonly numMerges: number;
  /** UTF-16 code units trained on. */
  readonly numInputChars: number;
  readonly numUniqueWords: number;
  /** Time to read and pre-tokenize, and to learn the merges, in milliseconds. */
  readonly countMs: number;
  readonly trainMs: number;
  /** sha256 (hex) of the written tokenizer.json bytes. */
  readonly tokenizerJsonSha256: string;
}

/**
 * Runs a job end to end. The output depends only on the text, the options and the seed.
 * @throws InputFileError E_DATASET when an input file cannot be read, or there is no text at all.
 * @throws ConfigError E_CONFIG_INVALID for an impossible vocabulary size or special token (from trainBpe).
 */
export async function runBpeTrainJob(job: BpeTrainJob): Promise<BpeTrainSummary> {
  const { inputFiles = [], corpus = [], vocabSize = 2000, specialTokens = DEFAULT_BPE_SPECIAL_TOKENS, seed = 42 } = job;
  const countStart = performance.now();
  const units: string[] = [];
  const sampling = job.maxInputChars !== undefined;
  for (const file of inputFiles) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new InputFileError(ErrorCode.DATASET, `tokenizer input ${file}: cannot read: ${err}`, { cause: err });
    }
    // Cut at blank lines only when sampling; the pieces keep their separators so no text is lost.
    if (sampling) units.push(...text.split(/(?<=\n\s*\n)/));
    else units.push(text);
  }
  if (corpus.length > 0) {
    const { train } = loadPretrainingCorpus({
      sources: corpus,
      seed,
      heldOutFraction: job.heldOutFraction,
      resolveFrom: job.resolveFrom,
    });
    for (const d of train) units.push(d.text);
  }
  const chosen = sampling ? sampleUnits(units, job.maxInputChars ?? 0, seed) : units;
  const counter = new BpeWordCounter(specialTokens);
  for (const unit of chosen) counter.add(unit);
  if (counter.numChars === 0) throw new InputFileError(ErrorCode.DATASET, 'tokenizer training: no input text');
  const words = counter.byteLevelCounts();
  const countMs = performance.now() - countStart;

  const trainStart = performance.now();
  const model = trainBpe(words, { vocabSize, specialTokens, minFrequency: job.minFrequency });
  const trainMs = performance.now() - trainStart;
  const { tokenizerJsonPath } = await writeBpeTokenizerDir(job.outputDir, model);
  const tokenizerJsonSha256 = createHash('sha256').update(await readFile(tokenizerJsonPath)).digest('hex');
  return {
    outputDir: job.outputDir,
    vocabSize: model.tokens.length,
    numMerges: model.merges.length,
    numInputChars: counter.numChars,
    numUniqueWords: words.size,
    countMs,
    trainMs,
    tokenizerJsonSha256,
  };
}

/** Units in a seeded random order until `maxChars` is reached (the unit that crosses it is cut off). */
function sampleUnits(units: readonly string[], maxChars: number, seed: number): string[] {
  const order = seededPermutation(units.length, seed >>> 0);
  const out: string[] = [];
  let left = maxChars;
  for (const i of order) {
    if (left <= 0) break;
    const unit = units[i];
    let end = Math.min(unit.length, left);
    // Never cut a surrogate pair in two.
    if (end < unit.length && end > 0 && /[\uD800-\uDBFF]/.test(unit[end - 1])) end--;
    out.push(unit.slice(0, end));
    left -= unit.length;
  }
  return out;
}
