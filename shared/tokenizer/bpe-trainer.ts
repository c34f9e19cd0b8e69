/**
 * Learns a byte-level BPE vocabulary (GPT-2 style) from word counts, the way Hugging Face's `BpeTrainer` does:
 * start from the 256 byte characters, and repeatedly merge the most frequent adjacent pair of symbols, counted
 * over the unique pre-tokenized words weighted by their counts, updating pair counts incrementally.
 *
 * Determinism: the next merge is the pair with the highest count; ties go to the pair with the smaller left
 * symbol id, then the smaller right symbol id (ids: special tokens first, then the 256 byte characters by code
 * point, then merged tokens in the order they were made). Nothing depends on the order words were counted in,
 * so the same text always gives the same merges.
 */
import { ConfigError, ErrorCode } from '../errors.js';
import { BYTE_LEVEL_ALPHABET, GPT2_SPLIT_PATTERN, toByteLevel } from './bpe-byte-level.js';

/** Options of {@link trainBpe}. */
export interface BpeTrainOptions {
  /** Target vocabulary size, special tokens and the 256 byte characters included. */
  readonly vocabSize: number;
  /** Special tokens, given the first ids in this order. @default ['<|endoftext|>'] */
  readonly specialTokens?: readonly string[];
  /** A pair seen fewer times than this is never merged (training stops early). @default 2 */
  readonly minFrequency?: number;
}

/** A trained byte-level BPE model. */
export interface BpeModel {
  /** Token strings by id: special tokens, the byte alphabet, then merged tokens. */
  readonly tokens: readonly string[];
  /** Merges in rank order (left, right), as byte-level strings. */
  readonly merges: readonly (readonly [string, string])[];
  /** How many leading ids are special tokens. */
  readonly numSpecialTokens: number;
}

/** The largest vocabulary {@link trainBpe} accepts (pair keys pack two ids into one double). */
export const MAX_BPE_VOCAB_SIZE = 1 << 20;

/** Counts GPT-2 pre-tokens over any number of texts; feed {@link BpeWordCounter.byteLevelCounts} to {@link trainBpe}. */
export class BpeWordCounter {
  /** UTF-16 code units seen. */
  numChars = 0;
  // Raw pre-tokens: converting each unique one to byte-level once is far cheaper than once per occurrence.
  private readonly rawCounts = new Map<string, number>();
  private readonly specialSplit: RegExp | undefined;

  /** @param specialTokens text spelling one of these is cut out, as Hugging Face does before pre-tokenizing. */
  constructor(specialTokens: readonly string[] = []) {
    const escaped = specialTokens.filter((t) => t.length > 0).map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.specialSplit = escaped.length > 0 ? new RegExp(escaped.join('|'), 'g') : undefined;
  }

  /** Adds one text's pre-tokens. */
  add(text: string): void {
    this.numChars += text.length;
    const parts = this.specialSplit === undefined ? [text] : text.split(this.specialSplit);
    const counts = this.rawCounts;
    for (const part of parts) {
      for (const piece of part.match(GPT2_SPLIT_PATTERN) ?? []) counts.set(piece, (counts.get(piece) ?? 0) + 1);
    }
  }

  /** Byte-level word (`'Ġthe'`) → occurrences, over everything added so far. */
  byteLevelCounts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [piece, count] of this.rawCounts) {
      const word = toByteLevel(piece);
      out.set(word, (out.get(word) ?? 0) + count);
    }
    return out;
  }
}

const PAIR_SHIFT = MAX_BPE_VOCAB_SIZE;
const pairKey = (left: number, right: number): number => left * PAIR_SHIFT + right;

/** A max-heap of (count, left, right) ordered by count desc, then left asc, then right asc. */
class PairHeap {
  private readonly counts: number[] = [];
  private readonly lefts: number[] = [];
  private readonly rights: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  private before(i: number, j: number): boolean {
    const c = this.counts;
    if (c[i] !== c[j]) return c[i] > c[j];
    if (this.lefts[i] !== this.lefts[j]) return this.lefts[i] < this.lefts[j];
    return this.rights[i] < this.rights[j];
  }

  private swap(i: number, j: number): void {
    for (const a of [this.counts, this.lefts, this.rights]) {
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  }

  push(count: number, left: number, right: number): void {
    this.counts.push(count);
    this.lefts.push(left);
    this.rights.push(right);
    let i = this.counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Removes and returns the first entry. */
  pop(): [count: number, left: number, right: number] {
    const top: [number, number, number] = [this.counts[0], this.lefts[0], this.rights[0]];
    const last = this.counts.length - 1;
    this.swap(0, last);
    this.counts.pop();
    this.lefts.pop();
    this.rights.pop();
    let i = 0;
    const n = this.counts.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < n && this.before(l, best)) best = l;
      if (r < n && this.before(r, best)) best = r;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
    return top;
  }
}

/**
 * Trains the merges. Stops at `vocabSize` tokens, or earlier when no pair occurs `minFrequency` times.
 * @throws ConfigError E_CONFIG_INVALID when `vocabSize` cannot hold the special tokens and byte alphabet, is
 *   above {@link MAX_BPE_VOCAB_SIZE}, or a special token is empty, repeated or a single byte character.
 */
export function trainBpe(wordCounts: ReadonlyMap<string, number>, opts: BpeTrainOptions): BpeModel {
  const specials = opts.specialTokens ?? ['<|endoftext|>'];
  const minFrequency = opts.minFrequency ?? 2;
  const { vocabSize } = opts;
  const floor = specials.length + BYTE_LEVEL_ALPHABET.length;
  if (!Number.isInteger(vocabSize) || vocabSize < floor || vocabSize > MAX_BPE_VOCAB_SIZE) {
    throw new ConfigError(
      ErrorCode.CONFIG_INVALID,
      `vocab size ${vocabSize} must be an integer from ${floor} (${specials.length} special tokens + 256 bytes) to ${MAX_BPE_VOCAB_SIZE}`,
    );
  }
  if (!Number.isInteger(minFrequency) || minFrequency < 1) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `min frequency ${minFrequency} must be a positive integer`);
  }
  const tokens: string[] = [];
  const ids = new Map<string, number>();
  for (const t of [...specials, ...BYTE_LEVEL_ALPHABET]) {
    if (t.length === 0 || ids.has(t)) {
      throw new ConfigError(ErrorCode.CONFIG_INVALID, `special token ${JSON.stringify(t)} is empty, repeated or a byte character`);
    }
    ids.set(t, tokens.length);
    tokens.push(t);
  }
  const specialSet = new Set(specials);

  // Unique words as symbol-id arrays, with their counts.
  const words: number[][] = [];
  const wordWeights: number[] = [];
  for (const [word, count] of wordCounts) {
    if (count <= 0) continue;
    const symbols: number[] = [];
    for (const ch of word) {
      const id = ids.get(ch);
      if (id === undefined || id < specials.length) {
        throw new ConfigError(ErrorCode.CONFIG_INVALID, `word ${JSON.stringify(word)} holds a character outside the byte-level alphabet`);
      }
      symbols.push(id);
    }
    if (symbols.length < 2) continue;
    words.push(symbols);
    wordWeights.push(count);
  }

  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (w: number, sign: 1 | -1, touched?: Set<number>): void => {
    const symbols = words[w];
    const c = wordWeights[w] * sign;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const key = pairKey(symbols[i], symbols[i + 1]);
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + c);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (set === undefined) pairWords.set(key, (set = new Set()));
        set.add(w);
        touched?.add(key);
      }
    }
  };
  for (let w = 0; w < words.length; w++) addPairs(w, 1);

  const heap = new PairHeap();
  for (const [key, count] of pairCounts) heap.push(count, Math.floor(key / PAIR_SHIFT), key % PAIR_SHIFT);

  const merges: [string, string][] = [];
  while (tokens.length < vocabSize && heap.size > 0) {
    const [count, left, right] = heap.pop();
    const key = pairKey(left, right);
    const current = pairCounts.get(key) ?? 0;
    if (current !== count) {
      // A stale entry: the pair's count fell since it was pushed.
      if (current > 0) heap.push(current, left, right);
      continue;
    }
    if (count < minFrequency) break;
    const merged = tokens[left] + tokens[right];
    if (specialSet.has(merged)) {
      // Never learn a token that spells a special token: the vocabulary would hold one string twice.
      pairCounts.delete(key);
      continue;
    }
    let newId = ids.get(merged);
    if (newId === undefined) {
      newId = tokens.length;
      ids.set(merged, newId);
      tokens.push(merged);
    }
    merges.push([tokens[left], tokens[right]]);

    const touched = new Set<number>();
    for (const w of pairWords.get(key) ?? []) {
      const symbols = words[w];
      const next: number[] = [];
      let changed = false;
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
          next.push(newId);
          i++;
          changed = true;
        } else {
          next.push(symbols[i]);
        }
      }
      if (!changed) continue;
      addPairs(w, -1);
      words[w] = next;
      addPairs(w, 1, touched);
    }
    pairWords.delete(key);
    pairCounts.delete(key);
    for (const k of touched) {
      const c = pairCounts.get(k) ?? 0;
      const l = Math.floor(k / PAIR_SHIFT);
      const r = k % PAIR_SHIFT;
      // Only pairs with the new token can have grown; the others already sit in the heap at a count >= now.
      if (c > 0 && (l === newId || r === newId)) heap.push(c, l, r);
    }
  }
  return { tokens, merges, numSpecialTokens: specials.length };
}
