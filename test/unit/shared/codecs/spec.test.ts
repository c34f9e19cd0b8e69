/**
 * Codec policies: glob overrides (first match wins), spec validation and the short string form.
 */
import { describe, expect, it } from 'vitest';
import { checkCodecSpec, matchesGlob, parseCodecSpec, resolveCodec, type CodecPolicy } from '../../../../shared/codecs/index.js';
import { ErrorCode } from '../../../../shared/errors.js';
import { codeOf, messageOf } from './arbitraries.js';

describe('resolveCodec', () => {
  const policy: CodecPolicy = {
    default: { codec: 'bf16' },
    overrides: [
      { pattern: 'score.weight', spec: { codec: 'fp32' } },
      { pattern: '*.lora_B.weight', spec: { codec: 'topk', density: 0.01 } },
      { pattern: '*layers.1.*', spec: { codec: 'int8', blockSize: 32 } },
      { pattern: '*', spec: { codec: 'fp16' } },
    ],
  };

  it('takes the first matching override, else the default', () => {
    expect(resolveCodec(policy, 'score.weight')).toEqual({ codec: 'fp32' });
    expect(resolveCodec(policy, 'base_model.model.layers.1.self_attn.q_proj.lora_B.weight')).toEqual({ codec: 'topk', density: 0.01 });
    expect(resolveCodec(policy, 'base_model.model.layers.1.self_attn.q_proj.lora_A.weight')).toEqual({ codec: 'int8', blockSize: 32 });
    expect(resolveCodec(policy, 'anything')).toEqual({ codec: 'fp16' });
    expect(resolveCodec({ default: { codec: 'int8' } }, 'x')).toEqual({ codec: 'int8' });
  });

  it('matches whole names, treats everything but * literally', () => {
    expect(matchesGlob('score.weight', 'xscore.weight')).toBe(false);
    expect(matchesGlob('score.weight', 'score_weight')).toBe(false);
    expect(matchesGlob('a*b', 'ab')).toBe(true);
    expect(matchesGlob('a*b', 'a.x.y.b')).toBe(true);
    expect(matchesGlob('(a)+[b]', '(a)+[b]')).toBe(true);
    expect(matchesGlob('*.lora_B.weight', 'x.lora_A.weight')).toBe(false);
  });
});

describe('checkCodecSpec / parseCodecSpec', () => {
  it('fills defaults', () => {
    expect(checkCodecSpec({ codec: 'int8' })).toEqual({ codec: 'int8', blockSize: 64 });
    expect(checkCodecSpec({ codec: 'topk' })).toEqual({ codec: 'topk', density: 0.01 });
    expect(checkCodecSpec({ codec: 'fp16' })).toEqual({ codec: 'fp16' });
  });

  it('parses the short form', () => {
    expect(parseCodecSpec('int8:128')).toEqual({ codec: 'int8', blockSize: 128 });
    expect(parseCodecSpec(' topk:0.05 ')).toEqual({ codec: 'topk', density: 0.05 });
    expect(parseCodecSpec('bf16')).toEqual({ codec: 'bf16' });
  });

  it('refuses bad specs with E_CONFIG_INVALID naming where they came from', () => {
    const bad: unknown[] = [
      { codec: 'fp8' },
      { codec: 'int8', blockSize: 0 },
      { codec: 'int8', blockSize: 2.5 },
      { codec: 'topk', density: 0 },
      { codec: 'topk', density: 1.5 },
      { codec: 'fp16', density: 0.1 },
      { codec: 'fp32', blocksize: 4 },
      'int8',
    ];
    for (const spec of bad) {
      expect(codeOf(() => checkCodecSpec(spec, 'codec.overrides[2].spec'))).toBe(ErrorCode.CONFIG_INVALID);
      expect(messageOf(() => checkCodecSpec(spec, 'codec.overrides[2].spec'))).toContain('codec.overrides[2].spec');
    }
    for (const text of ['fp16:3', 'int8:x', 'topk:', 'int8:1:2', 'zstd']) {
      expect(codeOf(() => parseCodecSpec(text, 'codec'))).toBe(ErrorCode.CONFIG_INVALID);
    }
  });
});
