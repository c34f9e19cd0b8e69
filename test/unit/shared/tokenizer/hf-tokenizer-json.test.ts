import { describe, expect, it } from 'vitest';
import { TokenType } from '../../../../shared/tokenizer/gguf-vocab.js';
import { buildTokenizerConfig, buildTokenizerJson, deriveMerges } from '../../../../shared/tokenizer/hf-tokenizer-json.js';

describe('deriveMerges (SentencePieceExtractor.extract with scores)', () => {
  it('lists every in-vocabulary split, halves ordered by id, ranked by the merged piece score', () => {
    const tokens = ['a', 'b', 'c', 'ab', 'bc', 'abc'];
    const scores = [0, 0, 0, -1, -2, -3];
    expect(deriveMerges(tokens, scores)).toEqual([
      ['a', 'b'],
      ['b', 'c'],
      ['a', 'bc'], // ids (0, 4) before (3, 2)
      ['ab', 'c'],
    ]);
  });

  it('ranks by score, not by id, and keeps vocabulary order on ties (stable sort)', () => {
    const tokens = ['x', 'y', 'z', 'yz', 'xy', 'zx'];
    const scores = [0, 0, 0, -5, -1, -5];
    expect(deriveMerges(tokens, scores)).toEqual([
      ['x', 'y'],
      ['y', 'z'],
      ['z', 'x'],
    ]);
  });

  it('splits by code point, never inside a surrogate pair', () => {
    const tokens = ['🎉', 'x', '🎉x', '\ud83c'];
    expect(deriveMerges(tokens, [0, 0, -1, 0])).toEqual([['🎉', 'x']]);
  });
});

describe('buildTokenizerJson', () => {
  const vocab = {
    tokens: ['<unk>', '<s>', '</s>', '<0x41>', '▁', 'A', '▁A', '<user>'],
    scores: [0, 0, 0, 0, -2, -3, -1, 0],
    types: [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL, TokenType.BYTE, 1, 1, 1, TokenType.USER_DEFINED],
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: undefined,
  };

  it('writes the legacy llama pipeline: Prepend+Replace normalizer, BPE with byte fallback, llama decoder', () => {
    const json = buildTokenizerJson(vocab);
    expect(json.normalizer).toEqual({
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    });
    expect(json.pre_tokenizer).toBeNull();
    expect(json.model).toMatchObject({ type: 'BPE', unk_token: '<unk>', byte_fallback: true, fuse_unk: true });
    expect(json.model.vocab).toEqual({ '<unk>': 0, '<s>': 1, '</s>': 2, '<0x41>': 3, '▁': 4, A: 5, '▁A': 6, '<user>': 7 });
    expect(json.model.merges).toEqual([['▁', 'A']]);
    expect(json.decoder).toEqual({
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    });
    expect(json.added_tokens.map((t) => [t.id, t.content, t.special])).toEqual([
      [0, '<unk>', true],
      [1, '<s>', true],
      [2, '</s>', true],
      [7, '<user>', false],
    ]);
    expect(json.post_processor).toMatchObject({ type: 'TemplateProcessing', special_tokens: { '<s>': { ids: [1] } } });
  });

  it('writes a tokenizer_config that keeps spaces as they are', () => {
    expect(buildTokenizerConfig(vocab, 128)).toMatchObject({
      bos_token: '<s>',
      eos_token: '</s>',
      unk_token: '<unk>',
      pad_token: null,
      clean_up_tokenization_spaces: false,
      model_max_length: 128,
    });
  });
});
