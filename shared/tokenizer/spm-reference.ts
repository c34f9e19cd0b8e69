/**
 * A direct port of llama.cpp's SentencePiece tokenizer (`llm_tokenizer_spm`): the reference the Hugging Face
 * tokenizer built from the same vocabulary is checked against. Slow-ish and simple on purpose.
 */
import { SPM_SPACE } from './hf-tokenizer-json.js';
import type { SpmVocab } from './gguf-vocab.js';

interface Bigram {
  left: number;
  right: number;
  score: number;
  size: number;
}

/** Max-heap by score, then by smallest left index (llama.cpp's `llm_bigram_spm::comparator`). */
class BigramQueue {
  private readonly items: Bigram[] = [];
  private static before(a: Bigram, b: Bigram): boolean {
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }
  get size(): number {
    return this.items.length;
  }
  push(b: Bigram): void {
    const h = this.items;
    h.push(b);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!BigramQueue.before(h[i], h[parent])) break;
      [h[i], h[parent]] = [h[parent], h[i]];
      i = parent;
    }
  }
  pop(): Bigram {
    const h = this.items;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && BigramQueue.before(h[l], h[m])) m = l;
        if (r < h.length && BigramQueue.before(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

/**
 * Token ids of `text` by llama.cpp's SPM algorithm (no BOS): prepend a space, spaces → ▁, start from UTF-8
 * characters, repeatedly merge the adjacent pair whose concatenation is the highest-scoring piece (leftmost on
 * ties), then map pieces to ids, characters outside the vocabulary to byte pieces `<0xXX>`.
 */
export function encodeSpmReference(vocab: SpmVocab, text: string): number[] {
  if (text.length === 0) return [];
  const ids = new Map<string, number>();
  vocab.tokens.forEach((t, i) => {
    if (!ids.has(t)) ids.set(t, i);
  });
  const normalized = (' ' + text).replaceAll(' ', SPM_SPACE);
  const chars = Array.from(normalized);
  const symText = chars.slice();
  const prev = chars.map((_, i) => i - 1);
  const next = chars.map((_, i) => (i + 1 < chars.length ? i + 1 : -1));
  const alive = chars.map(() => true);
  // Which two symbols each merged piece came from, for resegmentation (llama.cpp's rev_merge).
  const revMerge = new Map<string, [string, string]>();
  const queue = new BigramQueue();

  const tryAddBigram = (left: number, right: number): void => {
    if (left === -1 || right === -1) return;
    const merged = symText[left] + symText[right];
    const id = ids.get(merged);
    if (id === undefined) return;
    queue.push({ left, right, score: vocab.scores[id], size: merged.length });
    revMerge.set(merged, [symText[left], symText[right]]);
  };

  for (let i = 1; i < chars.length; i++) tryAddBigram(i - 1, i);
  while (queue.size > 0) {
    const b = queue.pop();
    // Stale entries: one side was merged away or grew since the bigram was queued.
    if (!alive[b.left] || !alive[b.right] || symText[b.left].length + symText[b.right].length !== b.size) continue;
    symText[b.left] += symText[b.right];
    alive[b.right] = false;
    next[b.left] = next[b.right];
    if (next[b.right] !== -1) prev[next[b.right]] = b.left;
    tryAddBigram(prev[b.left], b.left);
    tryAddBigram(b.left, next[b.left]);
  }

  const out: number[] = [];
  const encoder = new TextEncoder();
  const resegment = (piece: string): void => {
    const id = ids.get(piece);
    if (id !== undefined) {
      out.push(id);
      return;
    }
    const parts = revMerge.get(piece);
    if (parts !== undefined) {
      resegment(parts[0]);
      resegment(parts[1]);
      return;
    }
    for (const byte of encoder.encode(piece)) {
      const byteId = ids.get(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`);
      out.push(byteId ?? vocab.unkId);
    }
  };
  for (let i = 0; i !== -1; i = next[i]) resegment(symText[i]);
  return out;
}
