/**
 * Pre-training text cut into pieces that each fill one training window: sentences of a document are packed
 * greedily until the next would push the piece past the token budget, so a window is almost never half padding and
 * almost never split. Pieces are written as JSON Lines (`{"text": ...}`), the `jsonl:` dataset a causal-lm run reads.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CorpusDocument } from '../data/pretraining-corpus.js';

/** What packing needs from a tokenizer (a `TextTokenizer` fits). */
export interface PieceTokenizer {
  encode(text: string, opts: { addBos?: boolean; addEos?: boolean }): number[];
}

/** Packed pieces of a set of documents, and how many tokens they hold. */
export interface CorpusPieces {
  readonly texts: string[];
  /** Tokens of the pieces' text (no BOS/EOS), summed. */
  readonly numTokens: number;
  /** Characters of the pieces' text, summed. */
  readonly numChars: number;
}

// Split after sentence-ending punctuation (and a closing quote or bracket) followed by white space.
const SENTENCE_END = /(?<=[.!?]["')\]]?)\s+/;

/**
 * Packs each document's sentences into pieces of at most `maxTokens` tokens (a single longer sentence is its own
 * piece; the run's chunking cuts it). Pieces never cross documents. Sentences are joined by one space, and because
 * a byte-level BPE pre-tokenizer attaches a space to the word after it, a piece's token count is the sum of its
 * sentences' counts (each counted with its leading space).
 * @param maxTokens tokens per piece, excluding BOS/EOS; integer >= 1.
 */
export function packCorpusPieces(docs: readonly CorpusDocument[], tokenizer: PieceTokenizer, maxTokens: number): CorpusPieces {
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new RangeError(`maxTokens ${maxTokens} must be an integer >= 1`);
  const texts: string[] = [];
  let numTokens = 0;
  let numChars = 0;
  for (const doc of docs) {
    const sentences = doc.text.split(SENTENCE_END).filter((s) => s.length > 0);
    let current = '';
    let currentTokens = 0;
    const flush = (): void => {
      if (current.length === 0) return;
      texts.push(current);
      numTokens += currentTokens;
      numChars += current.length;
      current = '';
      currentTokens = 0;
    };
    for (const sentence of sentences) {
      const withSpace = current.length === 0 ? sentence : ` ${sentence}`;
      const n = tokenizer.encode(withSpace, { addBos: false, addEos: false }).length;
      if (current.length > 0 && currentTokens + n > maxTokens) {
        flush();
        const alone = tokenizer.encode(sentence, { addBos: false, addEos: false }).length;
        current = sentence;
        currentTokens = alone;
      } else {
        current += withSpace;
        currentTokens += n;
      }
    }
    flush();
  }
  return { texts, numTokens, numChars };
}

/** The JSON Lines text of `pieces` (`{"text": ...}` per line). */
export function piecesToJsonl(pieces: readonly string[]): string {
  return pieces.map((text) => JSON.stringify({ text })).join('\n') + '\n';
}

/** Files of a cached packing. */
export interface CachedPieces {
  readonly trainPath: string;
  readonly heldOutPath: string;
  readonly train: Omit<CorpusPieces, 'texts'> & { readonly numPieces: number };
  readonly heldOut: Omit<CorpusPieces, 'texts'> & { readonly numPieces: number };
  /** Whether the files were already there (same key). */
  readonly isCached: boolean;
}

/**
 * Packs train and held-out documents into `train.jsonl` / `held-out.jsonl` under `cacheRoot/<key>/`, where the key
 * is the sha256 of the tokenizer, `maxTokens` and every document's source, id and text: an unchanged corpus and
 * tokenizer reuse the files (the slow part is tokenizing about 7 MB of text).
 */
export async function cachedCorpusPieces(
  cacheRoot: string,
  split: { readonly train: readonly CorpusDocument[]; readonly heldOut: readonly CorpusDocument[] },
  tokenizer: PieceTokenizer & { readonly sha256: string },
  maxTokens: number,
): Promise<CachedPieces> {
  const hash = createHash('sha256').update(`${tokenizer.sha256}\n${maxTokens}\n`);
  for (const [side, docs] of [['train', split.train], ['held-out', split.heldOut]] as const) {
    for (const d of docs) hash.update(`${side}\0${d.source}\0${d.id}\0${d.text.length}\0`).update(d.text);
  }
  const dir = join(cacheRoot, hash.digest('hex').slice(0, 16));
  const trainPath = join(dir, 'train.jsonl');
  const heldOutPath = join(dir, 'held-out.jsonl');
  const statsPath = join(dir, 'stats.json');
  if (existsSync(statsPath) && existsSync(trainPath) && existsSync(heldOutPath)) {
    const stats = JSON.parse(await readFile(statsPath, 'utf8')) as Pick<CachedPieces, 'train' | 'heldOut'>;
    return { trainPath, heldOutPath, ...stats, isCached: true };
  }
  await mkdir(dir, { recursive: true });
  const train = packCorpusPieces(split.train, tokenizer, maxTokens);
  const heldOut = packCorpusPieces(split.heldOut, tokenizer, maxTokens);
  await writeFile(trainPath, piecesToJsonl(train.texts));
  await writeFile(heldOutPath, piecesToJsonl(heldOut.texts));
  const summary = (p: CorpusPieces) => ({ numPieces: p.texts.length, numTokens: p.numTokens, numChars: p.numChars });
  const stats = { train: summary(train), heldOut: summary(heldOut) };
  // stats.json last and by rename: its presence means the two data files are complete.
  await writeFile(`${statsPath}.tmp`, `${JSON.stringify(stats, null, 2)}\n`);
  await rename(`${statsPath}.tmp`, statsPath);
  return { trainPath, heldOutPath, ...stats, isCached: false };
}
