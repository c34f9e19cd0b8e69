import { describe, expect, it } from 'vitest';
import {
  blobToFloat32,
  blobToInt32,
  decodeFrame,
  encodeMessage,
  float32Blob,
  int32Blob,
  tensorsToBlobs,
  validateTensors,
} from '../../../shared/codec.js';
import { ErrorCode, OrchestratorError } from '../../../shared/errors.js';
import { makeMessage } from '../../../shared/protocol/build.js';
import type { TensorBlob } from '../../../shared/protocol/messages.js';
import { expectKind, parseMessage } from '../../../shared/protocol/parse.js';

const manifest = [
  { name: 'a', shape: [2, 3] },
  { name: 'b', shape: [4] },
];

function blobs(): TensorBlob[] {
  return [float32Blob('a', [2, 3], Float32Array.from([1, 2, 3, 4, 5, 6])), float32Blob('b', [4], Float32Array.from([-1, 0, 1, 2]))];
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(OrchestratorError);
    return (err as OrchestratorError).code;
  }
  throw new Error('expected a throw');
}

describe('tensor blobs', () => {
  it('wraps typed arrays without copying', () => {
    const values = Float32Array.from([1, 2, 3, 4]);
    const blob = float32Blob('w', [2, 2], values);
    expect(blob.data.buffer).toBe(values.buffer);
    expect(blob.data.byteLength).toBe(16);
    expect(blobToFloat32(blob)).toEqual(values);
    expect(blobToInt32(int32Blob('ids', [3], Int32Array.from([7, -8, 9])))).toEqual(Int32Array.from([7, -8, 9]));
  });

  it('refuses a value count that does not match the shape', () => {
    expect(codeOf(() => float32Blob('w', [2, 3], new Float32Array(5)))).toBe(ErrorCode.TENSOR_SHAPE);
  });

  it('decodes zero-copy when 4-aligned and with exactly one copy otherwise', () => {
    const backing = new Uint8Array(4 + 16 + 1);
    const values = Float32Array.from([0.5, -2, 3.25, 1e-40]);
    backing.set(new Uint8Array(values.buffer), 4);
    const aligned = blobToFloat32({ name: 'x', dtype: 'float32', shape: [4], data: backing.subarray(4, 20) });
    expect(aligned.buffer).toBe(backing.buffer);
    expect(aligned).toEqual(values);

    const shifted = new Uint8Array(4 + 16 + 1);
    shifted.set(new Uint8Array(values.buffer), 1);
    const copied = blobToFloat32({ name: 'x', dtype: 'float32', shape: [4], data: shifted.subarray(1, 17) });
    expect(copied.buffer).not.toBe(shifted.buffer);
    expect(copied.byteOffset).toBe(0);
    expect(Array.from(copied)).toEqual(Array.from(values));
  });

  it('names the tensor when the byte length is wrong', () => {
    const bad: TensorBlob = { name: 'blk.3.ffn_up.lora_b', dtype: 'float32', shape: [2, 2], data: new Uint8Array(12) };
    expect(codeOf(() => blobToFloat32(bad))).toBe(ErrorCode.CODEC);
    expect(() => blobToFloat32(bad)).toThrow(/blk\.3\.ffn_up\.lora_b.*12 bytes.*expected 16/);
  });

  it('refuses the wrong dtype and an unknown codec', () => {
    expect(codeOf(() => blobToFloat32(int32Blob('i', [1], Int32Array.of(1))))).toBe(ErrorCode.TENSOR_DTYPE);
    const fp16 = { ...float32Blob('h', [1], Float32Array.of(1)), codec: 'fp16' } as unknown as TensorBlob;
    expect(codeOf(() => blobToFloat32(fp16))).toBe(ErrorCode.CODEC);
  });

  it('round-trips bit patterns exactly through a frame (-0, denormals, extremes)', () => {
    const values = Float32Array.from([-0, 1.4e-45, 3.4028234663852886e38, -1.1754943508222875e-38, Math.PI]);
    const msg = makeMessage('grad_result', {
      replyTo: 'r',
      step: 0,
      grads: [float32Blob('g', [5], values)],
      stats: { lossSum: 0, numSamples: 1, numLossItems: 1, numTokens: 1, numCorrect: 0 },
      computeMs: 1,
    });
    const back = blobToFloat32(expectKind(parseMessage(encodeMessage(msg)), 'grad_result').grads[0]);
    expect(new Uint32Array(back.slice().buffer)).toEqual(new Uint32Array(values.buffer));
  });
});

describe('validateTensors', () => {
  it('returns the values in manifest order', () => {
    const out = validateTensors([...blobs()].reverse(), manifest);
    expect([...out.keys()]).toEqual(['a', 'b']);
    expect(Array.from(out.get('b')!)).toEqual([-1, 0, 1, 2]);
  });

  it('refuses missing, extra and duplicate tensors with E_TENSOR_NAME', () => {
    expect(codeOf(() => validateTensors(blobs().slice(0, 1), manifest))).toBe(ErrorCode.TENSOR_NAME);
    expect(() => validateTensors(blobs().slice(0, 1), manifest)).toThrow(/missing tensor "b"/);
    expect(() => validateTensors([...blobs(), float32Blob('c', [1], Float32Array.of(0))], manifest)).toThrow(/unexpected tensor "c"/);
    expect(codeOf(() => validateTensors([...blobs(), blobs()[0]], manifest))).toBe(ErrorCode.TENSOR_NAME);
  });

  it('refuses a wrong shape with E_TENSOR_SHAPE and a wrong dtype with E_TENSOR_DTYPE', () => {
    const wrongShape = [float32Blob('a', [3, 2], new Float32Array(6)), blobs()[1]];
    expect(codeOf(() => validateTensors(wrongShape, manifest))).toBe(ErrorCode.TENSOR_SHAPE);
    expect(() => validateTensors(wrongShape, manifest)).toThrow(/"a": shape \[3, 2\], expected \[2, 3\]/);
    const wrongDtype = [int32Blob('a', [2, 3], new Int32Array(6)), blobs()[1]];
    expect(codeOf(() => validateTensors(wrongDtype, manifest))).toBe(ErrorCode.TENSOR_DTYPE);
  });

  it('names the tensor and the first non-finite index', () => {
    const b = Float32Array.from([0, 1, Number.NaN, Number.POSITIVE_INFINITY]);
    const bad = [blobs()[0], float32Blob('b', [4], b)];
    expect(codeOf(() => validateTensors(bad, manifest))).toBe(ErrorCode.TENSOR_NON_FINITE);
    expect(() => validateTensors(bad, manifest)).toThrow(/"b": non-finite value NaN at index 2/);
  });

  it('tensorsToBlobs is the inverse, in manifest order', () => {
    const named = validateTensors(blobs(), manifest);
    const again = tensorsToBlobs(named, manifest);
    expect(again.map((b) => b.name)).toEqual(['a', 'b']);
    expect(validateTensors(again, manifest)).toEqual(named);
    expect(codeOf(() => tensorsToBlobs(new Map(), manifest))).toBe(ErrorCode.TENSOR_NAME);
  });
});

describe('encodeMessage / decodeFrame', () => {
  it('leaves out undefined optional fields', () => {
    const msg = makeMessage('error', { code: 'E_TIMEOUT', message: 'slow', retryable: true, replyTo: undefined }, { id: 'e' });
    expect(Object.keys(decodeFrame(encodeMessage(msg)) as object)).toEqual(['v', 'kind', 'id', 'code', 'message', 'retryable']);
  });

  it('returns buffers that later encodes do not overwrite', () => {
    const first = encodeMessage(makeMessage('stop', { reason: 'first' }, { id: 'a' }));
    const copy = Uint8Array.from(first);
    for (let i = 0; i < 200; i++) encodeMessage(makeMessage('stop', { reason: `other ${i}`.repeat(50) }, { id: 'b' }));
    expect(Array.from(first)).toEqual(Array.from(copy));
  });

  it('reports an unencodable value as E_CODEC', () => {
    const msg = makeMessage('welcome', {
      replyTo: 'h',
      runId: 'r',
      workerId: 'w',
      model: { path: 'm', sha256: 's', format: 'gguf' },
      modelSpec: { task: 'causal-lm', numLabels: 0, pooling: 'last', peft: { method: 'lora', r: 1, loraAlpha: 1, loraDropout: 0, targetModules: ['q'], useRslora: false } },
      manifest: [],
      settings: { big: 2n ** 70n },
    });
    expect(codeOf(() => encodeMessage(msg))).toBe(ErrorCode.CODEC);
  });

  it('refuses non-binary input', () => {
    expect(codeOf(() => decodeFrame('abc' as unknown as Uint8Array))).toBe(ErrorCode.PROTOCOL_MALFORMED);
  });
});
