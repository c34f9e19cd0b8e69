import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ErrorCode, InputFileError } from '../../../../shared/errors.js';
import { encodeGguf } from '../../../../shared/formats/gguf-writer.js';
import { parseGguf, readGguf, type GgufMetadata } from '../../../../shared/formats/gguf.js';
import { mulberry32 } from '../../../../shared/random.js';
import { readSpmVocab } from '../../../../shared/tokenizer/gguf-vocab.js';
import { encodeSpmReference } from '../../../../shared/tokenizer/spm-reference.js';
import { tokenizerFromGguf, type TextTokenizer } from '../../../../shared/tokenizer/text-tokenizer.js';
import { syntheticLlamaTokenizerMetadata } from '../../../helpers/random-gguf.js';

const STORIES = '/work/shared/models/stories260K.gguf';
const hasStories = existsSync(STORIES);
if (!hasStories) console.warn(`SKIPPING stories260K tokenizer tests: ${STORIES} is absent`);

/** Metadata as the reader returns it (plain values), from the synthetic writer metadata. */
function syntheticMetadata(vocabSize = 512, extra: Record<string, number> = {}): GgufMetadata {
  return parseGguf(encodeGguf({ metadata: { ...syntheticLlamaTokenizerMetadata(vocabSize), ...extra }, tensors: [] }), 'mem')
    .metadata;
}

const SENTENCES = [
  'Once upon a time, there was a little girl named Lily.',
  'She said: "Look, Mom!"\nThen she ran.',
  '  two leading spaces and two trailing  ',
  'tabs\tand\r\nnewlines',
  'héllo wörld, ñandú — “quotes” …',
  '日本語のテキスト and emoji 🎉👍🏽',
  'x',
  ' ',
];

/** Random sentences from a word list that mixes in-vocabulary words, punctuation, unicode and odd spacing. */
function randomSentences(count: number, seed: number): string[] {
  const words = ['Once', 'upon', 'a', 'time', 'there', 'was', 'little', 'girl', 'named', 'Lily', 'she', 'loved', 'to',
    'play', 'the', 'park', 'dog', 'ran', 'happy', 'tree', 'big', 'because', 'Tom', 'said', 'é', 'ñ', '日本', '🎉', '—',
    ',', '.', '!', '"', '?', '3', '42', '2024', '  ', '\n', '\t', 'xyzzy', 'qu'];
  const rng = mulberry32(seed);
  return Array.from({ length: count }, () => {
    let s = '';
    const n = 1 + Math.floor(rng() * 16);
    for (let i = 0; i < n; i++) s += words[Math.floor(rng() * words.length)] + (rng() < 0.8 ? ' ' : '');
    return rng() < 0.3 ? s.trim() : s;
  });
}

function checkTokenizer(tok: TextTokenizer, metadata: GgufMetadata): void {
  it('encodes with BOS first and no EOS by default; options add or drop them', () => {
    const ids = tok.encode('the dog');
    expect(ids[0]).toBe(tok.bosId);
    expect(ids.at(-1)).not.toBe(tok.eosId);
    expect(tok.encode('the dog', { addBos: false })).toEqual(ids.slice(1));
    expect(tok.encode('the dog', { addEos: true })).toEqual([...ids, tok.eosId]);
    expect(tok.encode('')).toEqual([tok.bosId]);
    expect(tok.encode('', { addBos: false })).toEqual([]);
  });

  it('decode inverts encode exactly, non-ASCII (byte fallback) and whitespace included', () => {
    for (const s of [...SENTENCES, ...randomSentences(100, 3)]) {
      const ids = tok.encode(s, { addEos: true });
      expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize)).toBe(true);
      expect(tok.decode(ids)).toBe(s);
    }
    expect(tok.decode([])).toBe('');
  });

  it('falls back to byte pieces for characters outside the vocabulary', () => {
    // U+1F389 is F0 9F 8E 89: four byte pieces <0xF0>.. at ids 3 + byte.
    const ids = tok.encode('🎉', { addBos: false });
    expect(ids.slice(-4)).toEqual([0xf0, 0x9f, 0x8e, 0x89].map((b) => 3 + b));
  });

  it('gives the same ids as llama.cpp’s SPM algorithm on 300 random sentences', () => {
    const vocab = readSpmVocab(metadata);
    const diffs: string[] = [];
    for (const s of [...SENTENCES, ...randomSentences(300, 11)]) {
      const hf = tok.encode(s, { addBos: false });
      const ref = encodeSpmReference(vocab, s);
      if (JSON.stringify(hf) !== JSON.stringify(ref)) diffs.push(`${JSON.stringify(s)}: ${hf} vs ${ref}`);
    }
    expect(diffs).toEqual([]);
  });

  it('hashes the tokenizer.json text, stably across builds', () => {
    expect(tok.sha256).toBe(createHash('sha256').update(JSON.stringify(tok.toJSON())).digest('hex'));
    expect(tokenizerFromGguf(metadata).sha256).toBe(tok.sha256);
  });
}

describe('tokenizerFromGguf on the synthetic vocabulary', () => {
  const metadata = syntheticMetadata();
  const tok = tokenizerFromGguf(metadata);
  checkTokenizer(tok, metadata);

  it('has the stories260K special layout and pads with EOS when the file names no padding token', () => {
    expect([tok.vocabSize, tok.bosId, tok.eosId, tok.padId]).toEqual([512, 1, 2, 2]);
    const json = tok.toJSON() as { model: { vocab: Record<string, number> } };
    expect(json.model.vocab['<0x00>']).toBe(3);
    expect(json.model.vocab['<0xFF>']).toBe(258);
  });

  it('learns pieces, so English takes far fewer tokens than characters', () => {
    const s = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.';
    expect(tok.encode(s, { addBos: false }).length).toBeLessThan(s.length / 2);
  });

  it('uses the padding token id when the file has one, and ignores 0xFFFFFFFF (none)', () => {
    expect(tokenizerFromGguf(syntheticMetadata(512, { 'tokenizer.ggml.padding_token_id': 0 })).padId).toBe(0);
    expect(tokenizerFromGguf(syntheticMetadata(512, { 'tokenizer.ggml.padding_token_id': 0xffffffff })).padId).toBe(2);
  });

  it('pads a 32000-token vocabulary with unused pieces that text never produces', () => {
    const big = tokenizerFromGguf(syntheticMetadata(32000));
    expect(big.vocabSize).toBe(32000);
    const ids = big.encode('Once upon a time <unused7> there was a dog.');
    const firstUnused = (big.toJSON() as { model: { vocab: Record<string, number> } }).model.vocab['<unused0>'];
    expect(firstUnused).toBeGreaterThan(600);
    expect(Math.max(...ids)).toBeLessThan(firstUnused);
    expect(big.decode(ids)).toBe('Once upon a time <unused7> there was a dog.');
  });
});

describe('tokenizerFromGguf errors', () => {
  const ok = syntheticMetadata();
  it.each([
    ['another tokenizer model', { ...ok, 'tokenizer.ggml.model': 'gpt2' }, 'tokenizer.ggml.model is "gpt2"'],
    ['no token list', { ...ok, 'tokenizer.ggml.tokens': [] }, 'tokenizer.ggml.tokens'],
    ['scores of the wrong length', { ...ok, 'tokenizer.ggml.scores': [0, 1] }, 'tokenizer.ggml.scores must be an array of 512'],
    ['a non-integer special id', { ...ok, 'tokenizer.ggml.bos_token_id': 1.5 }, 'tokenizer.ggml.bos_token_id'],
  ])('%s → E_MODEL_FILE', (_, metadata, message) => {
    let caught: unknown;
    try {
      tokenizerFromGguf(metadata as GgufMetadata);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InputFileError);
    expect((caught as InputFileError).code).toBe(ErrorCode.MODEL_FILE);
    expect((caught as Error).message).toContain(message);
  });
});

describe.skipIf(!hasStories)('tokenizerFromGguf on stories260K.gguf', async () => {
  const metadata = hasStories ? (await readGguf(STORIES)).metadata : {};
  const tok = hasStories ? tokenizerFromGguf(metadata) : (undefined as unknown as TextTokenizer);
  if (hasStories) checkTokenizer(tok, metadata);

  it('encodes "Once upon a time" as BOS + ▁Once ▁upon ▁a ▁time and decodes it back', () => {
    const ids = tok.encode('Once upon a time');
    const vocab = (tok.toJSON() as { model: { vocab: Record<string, number> } }).model.vocab;
    expect(ids).toEqual([1, vocab['▁Once'], vocab['▁upon'], vocab['▁a'], vocab['▁time']]);
    expect(tok.decode(ids)).toBe('Once upon a time');
    expect([tok.vocabSize, tok.bosId, tok.eosId, tok.padId]).toEqual([512, 1, 2, 2]);
  });
});
