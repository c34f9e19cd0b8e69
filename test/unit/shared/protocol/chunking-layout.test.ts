/**
 * The frame layout large sends use (`encodeMessageInto`): tensor data 8-aligned inside the frame, so that
 * the receiver decodes fp32 without a copy; small frames byte-identical to `encodeMessage` (golden fixtures).
 */
import { describe, expect, it } from 'vitest';
import { ALIGN_MIN_BYTES, blobToFloat32, encodeMessage, encodeMessageInto, float32Blob } from '../../../../shared/codec.js';
import { makeMessage } from '../../../../shared/protocol/build.js';
import type { Message } from '../../../../shared/protocol/messages.js';
import { parseMessage } from '../../../../shared/protocol/parse.js';
import { sampleList } from '../../../fixtures/frames/samples.js';

const stats = { lossSum: 1, numSamples: 1, numLossItems: 1, numTokens: 1, numCorrect: 0 };

function gradResult(sizes: number[], namePrefix = 'w'): Message {
  const grads = sizes.map((n, t) => float32Blob(`${namePrefix}${t}`, [n], Float32Array.from({ length: n }, (_, i) => i * 0.5 + t)));
  return makeMessage('grad_result', { replyTo: 'r', step: 1, grads, stats, computeMs: 2 });
}

describe('encodeMessageInto', () => {
  it('encodes small frames byte for byte as encodeMessage', () => {
    for (const msg of sampleList()) {
      expect(Buffer.from(encodeMessageInto(msg, Buffer.alloc(1 << 16)))).toEqual(Buffer.from(encodeMessage(msg)));
    }
  });

  it('lays out every large tensor 8-aligned, whatever precedes it, and decodes to the same values without a copy', () => {
    // Odd sizes and names shift every later tensor by a different amount.
    for (const [sizes, prefix] of [
      [[1025, 3, 2049, 5000], 'w'],
      [[1031, 1024, 77, 16_385], 'a_longer_tensor_name.'],
      [[20_000], 'x'],
    ] as const) {
      const msg = gradResult([...sizes], prefix);
      const bytes = Uint8Array.from(encodeMessageInto(msg, Buffer.alloc(64)));
      const back = parseMessage(bytes);
      if (back.kind !== 'grad_result' || msg.kind !== 'grad_result') throw new Error('expected grad_result');
      back.grads.forEach((blob, t) => {
        if (blob.data.byteLength >= ALIGN_MIN_BYTES) {
          expect(blob.data.byteOffset % 8).toBe(0);
          expect(blob.data.buffer).toBe(bytes.buffer);
          expect(blobToFloat32(blob).buffer).toBe(bytes.buffer);
        }
        expect(blob).not.toHaveProperty('pad');
        expect(blobToFloat32(blob)).toEqual(blobToFloat32(msg.grads[t]));
      });
    }
  });

  it('reuses the scratch buffer when the frame fits and leaves later encodeMessage output alone', () => {
    const scratch = Buffer.alloc(1 << 20);
    const first = encodeMessageInto(gradResult([10_000]), scratch);
    expect(first.buffer).toBe(scratch.buffer);
    const other = encodeMessage(sampleList()[0]);
    const copy = Buffer.from(other);
    encodeMessageInto(gradResult([20_000]), scratch);
    expect(Buffer.from(other)).toEqual(copy);
  });
});
