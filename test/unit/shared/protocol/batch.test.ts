import { describe, expect, it } from 'vitest';
import { encodeMessage, int32Blob } from '../../../../shared/codec.js';
import { ErrorCode } from '../../../../shared/errors.js';
import { batchToWire, wireToBatch } from '../../../../shared/protocol/batch.js';
import { makeMessage } from '../../../../shared/protocol/build.js';
import { expectKind, parseMessage } from '../../../../shared/protocol/parse.js';

const batch = {
  batchSize: 2,
  seqLen: 3,
  inputIds: Int32Array.from([5, 6, 7, 8, 9, 0]),
  attentionMask: Int32Array.from([1, 1, 1, 1, 1, 0]),
  labels: Int32Array.from([1, 0]),
};

describe('batch wire form', () => {
  it('round-trips through a grad_request frame', () => {
    const msg = makeMessage('grad_request', { step: 0, paramsVersion: 0, batch: batchToWire(batch), dropoutSeed: 1 });
    const back = wireToBatch(expectKind(parseMessage(encodeMessage(msg)), 'grad_request').batch);
    expect(back).toEqual(batch);
  });

  it('carries causal-lm labels of batchSize * seqLen', () => {
    const lm = { ...batch, labels: Int32Array.from([6, 7, -100, 9, -100, -100]) };
    const wire = batchToWire(lm);
    expect(wire.labels.shape).toEqual([6]);
    expect(wireToBatch(wire).labels).toEqual(lm.labels);
  });

  it('refuses shapes that disagree with batchSize/seqLen, naming the field', () => {
    const wire = batchToWire(batch);
    const bad = { ...wire, attentionMask: int32Blob('attentionMask', [3, 2], new Int32Array(6)) };
    expect(() => wireToBatch(bad)).toThrowError(expect.objectContaining({ code: ErrorCode.TENSOR_SHAPE }));
    expect(() => wireToBatch(bad)).toThrow(/attentionMask.*expected \[2, 3\]/);
    expect(() => batchToWire({ ...batch, labels: new Int32Array(4) })).toThrow(/labels/);
    expect(() => wireToBatch({ ...wire, labels: { ...wire.labels, dtype: 'float32' } })).toThrowError(
      expect.objectContaining({ code: ErrorCode.TENSOR_DTYPE }),
    );
  });
});
