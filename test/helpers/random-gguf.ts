/**
 * Seeded random LLaMA models in GGUF, laid out like stories260K (GGUF names, PyTorch shapes, a llama
 * SentencePiece tokenizer in the metadata). Tests use them where the real checkpoint is absent.
 */
import {
  ggufArray,
  ggufTyped,
  writeGguf,
  type GgufTensorInput,
  type GgufWritableValue,
  type WritableTensorType,
} from '../../shared/formats/gguf-writer.js';
import { GgufValueType } from '../../shared/formats/gguf.js';
import { expectedLlamaTensors } from '../../shared/model/load-gguf.js';
import type { LlamaConfig } from '../../shared/model/types.js';
import { mulberry32, randomNormal } from '../../shared/random.js';

/** Options of {@link writeRandomLlamaGguf}. */
export interface RandomLlamaOptions {
  readonly seed: number;
  readonly dim: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly hiddenDim: number;
  /** Vocabulary size, at least 259 + 95 (specials, bytes, printable ASCII). @default 512 */
  readonly vocabSize?: number;
  /** @default 2048 */
  readonly contextLength?: number;
  /** Standard deviation of the weights (norm weights are 1). @default 0.02 */
  readonly std?: number;
  /** Leave `output.weight` out, so that the loader ties it to `token_embd.weight`. @default false */
  readonly tiedOutput?: boolean;
  /**
   * Storage type of the 2-D weights (norms stay F32, and Q8_0 falls back to F32 for rows whose length is not a
   * multiple of 32, as llama.cpp does). @default 'F32'
   */
  readonly tensorType?: WritableTensorType;
}

/** What {@link writeRandomLlamaGguf} wrote. */
export interface RandomLlamaGguf {
  readonly path: string;
  readonly config: LlamaConfig;
  /** The exact f32 values written (before any F16/Q8_0 rounding), by GGUF name, PyTorch order. */
  readonly weights: Map<string, Float32Array>;
  readonly tokens: readonly string[];
}

const SPACE = '\u2581';

/** A small English corpus the synthetic tokenizer learns its merges from (TinyStories style). */
const CORPUS = `Once upon a time, there was a little girl named Lily. She loved to play outside in the park.
One day, she saw a big red ball under a tree. She ran to get it and showed it to her mom.
"Look, Mom! I found a ball!" said Lily. Her mom smiled and said, "That is a very nice ball."
Tom was a happy boy who liked to run and jump. He had a small dog named Max.
Every morning, Tom and Max went for a walk in the garden and looked at the flowers.
The sun was warm and the sky was blue. They were very happy together.
The cat sat on the mat and the dog played with the ball. They are good friends.
The quick brown fox jumps over the lazy dog, and then it goes home to sleep.
Hello world! This is a test of the tokenizer with some numbers: 1, 2, 3, 10, 42 and 2024.
Spam e-mail often says: you have won a free prize, click here now to claim your money!`;

/** Printable ASCII except the space (which SentencePiece spells ▁), plus ▁: the base pieces. */
function basePieces(): string[] {
  const out = [SPACE];
  for (let c = 0x21; c <= 0x7e; c++) out.push(String.fromCharCode(c));
  return out;
}

/** BPE merges learnt on {@link CORPUS}, most frequent pair first (ties: lexicographic), at most `max`. */
function learnMerges(max: number, known: Set<string>): string[] {
  const counts = new Map<string, number>();
  for (const word of CORPUS.split(/\s+/).filter(Boolean)) counts.set(SPACE + word, (counts.get(SPACE + word) ?? 0) + 1);
  let words = [...counts].map(([w, n]) => ({ parts: Array.from(w), n }));
  const merges: string[] = [];
  while (merges.length < max) {
    const pairs = new Map<string, { a: string; b: string; n: number }>();
    for (const { parts, n } of words) {
      for (let i = 0; i + 1 < parts.length; i++) {
        const key = `${parts[i]}\u0000${parts[i + 1]}`;
        const p = pairs.get(key) ?? { a: parts[i], b: parts[i + 1], n: 0 };
        p.n += n;
        pairs.set(key, p);
      }
    }
    let best: { a: string; b: string; n: number } | undefined;
    for (const p of pairs.values()) {
      if (!best || p.n > best.n || (p.n === best.n && p.a + p.b < best.a + best.b)) best = p;
    }
    if (!best) break;
    const merged = best.a + best.b;
    if (!known.has(merged)) {
      merges.push(merged);
      known.add(merged);
    }
    const { a, b } = best;
    words = words.map(({ parts, n }) => {
      const next: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (i + 1 < parts.length && parts[i] === a && parts[i + 1] === b) {
          next.push(a + b);
          i++;
        } else next.push(parts[i]);
      }
      return { parts: next, n };
    });
  }
  return merges;
}

/**
 * GGUF tokenizer metadata of a synthetic llama SentencePiece-BPE vocabulary: `<unk>`=0, `<s>`=1, `</s>`=2, byte
 * pieces `<0x00>`..`<0xFF>` at 3..258 (as stories260K), then merges learnt on a small English corpus (scores
 * -rank), then the printable-ASCII base pieces (lowest scores), then unique `<unusedN>` pieces (type UNUSED)
 * when `vocabSize` exceeds what the corpus teaches.
 * @param vocabSize total number of tokens, at least 354. @default 512
 */
export function syntheticLlamaTokenizerMetadata(vocabSize = 512): Record<string, GgufWritableValue> {
  const base = basePieces();
  const fixed = 3 + 256 + base.length;
  if (vocabSize < fixed) throw new RangeError(`synthetic vocabulary needs at least ${fixed} tokens, got ${vocabSize}`);
  const tokens: string[] = ['<unk>', '<s>', '</s>'];
  const types: number[] = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
  }
  const merges = learnMerges(vocabSize - fixed, new Set(base));
  const scores: number[] = tokens.map(() => 0);
  merges.forEach((m, i) => {
    tokens.push(m);
    types.push(1);
    scores.push(-i);
  });
  base.forEach((c, i) => {
    tokens.push(c);
    types.push(1);
    scores.push(-(merges.length + i));
  });
  for (let i = 0; tokens.length < vocabSize; i++) {
    tokens.push(`<unused${i}>`);
    types.push(5);
    scores.push(-1e9);
  }
  return {
    'tokenizer.ggml.model': 'llama',
    'tokenizer.ggml.tokens': ggufArray(GgufValueType.STRING, tokens),
    'tokenizer.ggml.scores': ggufArray(GgufValueType.FLOAT32, scores),
    'tokenizer.ggml.token_type': ggufArray(GgufValueType.INT32, types),
    'tokenizer.ggml.unknown_token_id': 0,
    'tokenizer.ggml.bos_token_id': 1,
    'tokenizer.ggml.eos_token_id': 2,
  };
}

/**
 * Writes a seeded random LLaMA GGUF (weights ~ N(0, std), norm weights 1) with a synthetic llama tokenizer.
 * Same options, same bytes.
 */
export async function writeRandomLlamaGguf(path: string, opts: RandomLlamaOptions): Promise<RandomLlamaGguf> {
  const vocabSize = opts.vocabSize ?? 512;
  const config: LlamaConfig = {
    vocabSize,
    dim: opts.dim,
    nLayers: opts.nLayers,
    nHeads: opts.nHeads,
    nKvHeads: opts.nKvHeads,
    hiddenDim: opts.hiddenDim,
    normEps: 1e-5,
    ropeTheta: 10000,
    contextLength: opts.contextLength ?? 2048,
  };
  const tokenizerMetadata = syntheticLlamaTokenizerMetadata(vocabSize);
  const rng = mulberry32(opts.seed);
  const std = opts.std ?? 0.02;
  const weights = new Map<string, Float32Array>();
  const tensors: GgufTensorInput[] = [];
  const tensorTypes: Record<string, WritableTensorType> = {};
  for (const [name, shape] of expectedLlamaTensors(config)) {
    if (name === 'output.weight' && opts.tiedOutput) continue;
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (shape.length === 1) data.fill(1);
    else for (let i = 0; i < data.length; i++) data[i] = std * randomNormal(rng);
    weights.set(name, data);
    tensors.push({ name, shape, data });
    const type = opts.tensorType ?? 'F32';
    if (shape.length > 1 && (type !== 'Q8_0' || shape[shape.length - 1] % 32 === 0)) tensorTypes[name] = type;
  }
  if (opts.tiedOutput) weights.set('output.weight', weights.get('token_embd.weight')!);
  await writeGguf(path, {
    metadata: {
      'general.architecture': 'llama',
      'general.name': `random-llama-seed${opts.seed}`,
      'llama.context_length': config.contextLength,
      'llama.embedding_length': config.dim,
      'llama.block_count': config.nLayers,
      'llama.feed_forward_length': config.hiddenDim,
      'llama.rope.dimension_count': config.dim / config.nHeads,
      'llama.attention.head_count': config.nHeads,
      'llama.attention.head_count_kv': config.nKvHeads,
      'llama.attention.layer_norm_rms_epsilon': ggufTyped(GgufValueType.FLOAT32, config.normEps),
      'llama.rope.freq_base': ggufTyped(GgufValueType.FLOAT32, config.ropeTheta),
      ...tokenizerMetadata,
    },
    tensors,
    tensorTypes,
  });
  const tokensValue = tokenizerMetadata['tokenizer.ggml.tokens'] as { value: string[] };
  return { path, config, weights, tokens: tokensValue.value };
}

/** Options of {@link writeBigRandomLlamaGguf}: every field of {@link RandomLlamaOptions} is optional. */
export type BigRandomLlamaOptions = Partial<RandomLlamaOptions>;

/**
 * Writes a bigger seeded random model for benchmarks, by default the stories15M layout: dim 288, 6 layers,
 * 6 heads (6 kv heads), hidden 768, vocab 32000 (the synthetic vocabulary padded with unique dummy pieces),
 * output tied to the embedding as in stories15M: about 15M parameters (61 MB as F32).
 */
export async function writeBigRandomLlamaGguf(path: string, opts: BigRandomLlamaOptions = {}): Promise<RandomLlamaGguf> {
  return writeRandomLlamaGguf(path, {
    seed: 1,
    dim: 288,
    nLayers: 6,
    nHeads: 6,
    nKvHeads: 6,
    hiddenDim: 768,
    vocabSize: 32000,
    contextLength: 256,
    tiedOutput: true,
    ...opts,
  });
}
