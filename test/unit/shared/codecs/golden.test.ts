/**
 * Golden bytes for coded tensors: one grad_result frame per codec (a fixed 2×6 gradient), in
 * test/fixtures/frames/codecs/<codec>.hex. Any change to a codec's byte layout or rounding fails here.
 *
 * To regenerate after a deliberate wire change (and review the diff!):
 *   UPDATE_FRAME_FIXTURES=1 npx vitest run test/unit/shared/codecs/golden.test.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { encodeMessage } from '../../../../shared/codec.js';
import { CODEC_NAMES, decodeTensor, encodeTensor, type CodecName, type CodecSpec } from '../../../../shared/codecs/index.js';
import { makeMessage } from '../../../../shared/protocol/build.js';
import type { Message } from '../../../../shared/protocol/messages.js';
import { parseMessage } from '../../../../shared/protocol/parse.js';

const FIXTURE_DIR = fileURLToPath(new URL('../../../fixtures/frames/codecs/', import.meta.url));
const UPDATE = process.env.UPDATE_FRAME_FIXTURES === '1';

const SPECS: Record<CodecName, CodecSpec> = {
  fp32: { codec: 'fp32' },
  fp16: { codec: 'fp16' },
  bf16: { codec: 'bf16' },
  int8: { codec: 'int8', blockSize: 4 },
  topk: { codec: 'topk', density: 0.25 },
};

// Exactly representable in fp16 and bf16 where it matters, with a tie and a value that rounds.
const VALUES = Float32Array.of(0.5, -0.25, 1 + 2 ** -8, 0, -3, 0.1, 2, -0.0625, 1e-3, 7, -7, 0.75);

function sample(codec: CodecName): Message {
  return makeMessage(
    'grad_result',
    {
      replyTo: 'msg-gradreq-0001',
      step: 3,
      grads: [encodeTensor('blk.0.attn_q.lora_b', [2, 6], VALUES, SPECS[codec])],
      stats: { lossSum: 1.5, numSamples: 2, numLossItems: 2, numTokens: 5, numCorrect: 1 },
      computeMs: 4,
    },
    { id: `msg-codec-${codec}` },
  );
}

function toHex(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
  return `${hex.match(/.{1,64}/g)!.join('\n')}\n`;
}

function fromHex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
}

describe('golden coded frames', () => {
  for (const codec of CODEC_NAMES) {
    const path = `${FIXTURE_DIR}${codec}.hex`;

    it(`${codec}: encodes to the fixture byte for byte`, () => {
      const bytes = encodeMessage(sample(codec));
      if (UPDATE) writeFileSync(path, toHex(bytes));
      expect(toHex(bytes)).toBe(readFileSync(path, 'utf8'));
    });

    it(`${codec}: the fixture parses back and decodes to the sample's values`, () => {
      const parsed = parseMessage(fromHex(readFileSync(path, 'utf8')));
      if (parsed.kind !== 'grad_result') throw new Error('expected grad_result');
      const original = sample(codec);
      if (original.kind !== 'grad_result') throw new Error('expected grad_result');
      expect(parsed.grads[0].codec).toBe(original.grads[0].codec);
      expect(Array.from(decodeTensor(parsed.grads[0]))).toEqual(Array.from(decodeTensor(original.grads[0])));
    });
  }
});
