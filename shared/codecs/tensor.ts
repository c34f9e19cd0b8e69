/**
 * {@link encodeTensor} / {@link decodeTensor}: one float32 tensor ⇄ a {@link TensorBlob} under any codec.
 */
import { CodecError, ErrorCode, ShapeError } from '../errors.js';
import type { TensorBlob } from '../protocol/messages.js';
import { TENSOR_CODECS } from '../protocol/messages.js';
import { checkLength } from './common.js';
import { decodeBf16, encodeBf16 } from './bf16.js';
import { decodeFp16, encodeFp16 } from './fp16.js';
import { decodeFp32, encodeFp32 } from './fp32.js';
import { decodeInt8, encodeInt8, int8ByteLength } from './int8.js';
import type { CodecSpec } from './spec.js';
import { DEFAULT_INT8_BLOCK_SIZE, DEFAULT_TOPK_DENSITY } from './spec.js';
import { decodeTopk, encodeTopk } from './topk.js';

/**
 * Encodes a float32 tensor under `spec`. `fp32` blobs carry no `codec` field (the v1 default) and view `values`
 * without copying (do not mutate `values` until the frame is encoded); every other codec writes a fresh buffer
 * (see {@link encodeTensorInto} to reuse one).
 * @throws ShapeError E_TENSOR_SHAPE when `values.length` is not prod(shape); E_TENSOR_NON_FINITE for ±Inf/NaN
 *   input and E_TENSOR_RANGE for finite values a codec cannot hold (fp16 beyond ±65504, bf16 beyond ±3.39e38),
 *   naming the tensor and the index; CodecError for an unknown codec or a bad block size / density.
 */
export function encodeTensor(name: string, shape: readonly number[], values: Float32Array, spec: CodecSpec): TensorBlob {
  checkLength(name, shape, values);
  const base = { name, dtype: 'float32' as const, shape: [...shape] };
  switch (spec.codec) {
    case 'fp32':
      return { ...base, data: encodeFp32(name, values) };
    case 'fp16':
      return { ...base, data: encodeFp16(name, values), codec: 'fp16' };
    case 'bf16':
      return { ...base, data: encodeBf16(name, values), codec: 'bf16' };
    case 'int8': {
      const blockSize = spec.blockSize ?? DEFAULT_INT8_BLOCK_SIZE;
      return { ...base, data: encodeInt8(name, values, blockSize), codec: 'int8', blockSize };
    }
    case 'topk':
      return { ...base, data: encodeTopk(name, values, spec.density ?? DEFAULT_TOPK_DENSITY), codec: 'topk' };
    default:
      throw new CodecError(`tensor "${name}": unknown codec "${String((spec as { codec: unknown }).codec)}" (expected one of ${TENSOR_CODECS.join(', ')})`);
  }
}

/**
 * Bytes {@link encodeTensorInto} needs for a tensor of `n` elements under `spec`, or undefined where the codec
 * writes no dense buffer (`fp32` views its input; `topk`'s size is its own).
 */
export function encodedByteLength(n: number, spec: CodecSpec): number | undefined {
  switch (spec.codec) {
    case 'fp16':
    case 'bf16':
      return 2 * n;
    case 'int8':
      return int8ByteLength(n, spec.blockSize ?? DEFAULT_INT8_BLOCK_SIZE);
    default:
      return undefined;
  }
}

/**
 * {@link encodeTensor} writing fp16, bf16 and int8 data into the caller's `into` ({@link encodedByteLength} bytes,
 * 4-aligned), so repeated encodes of large tensors skip the page faults of fresh memory; the blob's data is a view
 * of `into`, valid until the caller writes there again. `fp32` and `topk` ignore `into` and encode as
 * {@link encodeTensor} does.
 * @throws as {@link encodeTensor}; CodecError when `into` has the wrong size or alignment.
 */
export function encodeTensorInto(name: string, shape: readonly number[], values: Float32Array, spec: CodecSpec, into: Uint8Array): TensorBlob {
  checkLength(name, shape, values);
  const base = { name, dtype: 'float32' as const, shape: [...shape] };
  switch (spec.codec) {
    case 'fp16':
      return { ...base, data: encodeFp16(name, values, into), codec: 'fp16' };
    case 'bf16':
      return { ...base, data: encodeBf16(name, values, into), codec: 'bf16' };
    case 'int8': {
      const blockSize = spec.blockSize ?? DEFAULT_INT8_BLOCK_SIZE;
      return { ...base, data: encodeInt8(name, values, blockSize, into), codec: 'int8', blockSize };
    }
    default:
      return encodeTensor(name, shape, values, spec);
  }
}

/**
 * Decodes a float32 blob of any codec. `fp32` returns a view of `blob.data` when 4-aligned (else one copy);
 * the others return a fresh array. Values are not checked for finiteness (see `validateTensors` in shared/codec.ts).
 * @throws ShapeError E_TENSOR_DTYPE when the blob is not float32, E_TENSOR_SHAPE for a bad shape; CodecError naming
 *   the tensor for an unknown codec, a byte length that does not match shape and codec, a block size on a codec
 *   other than int8, or bad topk indices.
 */
export function decodeTensor(blob: TensorBlob): Float32Array {
  return decode(blob, undefined);
}

/**
 * {@link decodeTensor} into a caller-owned array of prod(shape) elements (every codec writes all of it, fp32 by
 * copying), so repeated decodes of large tensors skip the page faults of fresh memory.
 * @returns `into`.
 * @throws as {@link decodeTensor}; ShapeError E_TENSOR_SHAPE when `into` has the wrong length.
 */
export function decodeTensorInto(blob: TensorBlob, into: Float32Array): Float32Array {
  return decode(blob, into);
}

function decode(blob: TensorBlob, into: Float32Array | undefined): Float32Array {
  const { name, shape, data } = blob;
  if (blob.dtype !== 'float32') throw new ShapeError(ErrorCode.TENSOR_DTYPE, `tensor "${name}": dtype ${blob.dtype}, expected float32`);
  const codec = blob.codec ?? 'fp32';
  if (blob.blockSize !== undefined && codec !== 'int8') {
    throw new CodecError(`tensor "${name}": blockSize is set but the codec is ${codec} (only int8 has blocks)`);
  }
  switch (codec) {
    case 'fp32':
      return decodeFp32(name, shape, data, into);
    case 'fp16':
      return decodeFp16(name, shape, data, into);
    case 'bf16':
      return decodeBf16(name, shape, data, into);
    case 'int8':
      return decodeInt8(name, shape, data, blob.blockSize ?? DEFAULT_INT8_BLOCK_SIZE, into);
    case 'topk':
      return decodeTopk(name, shape, data, into);
    default:
      throw new CodecError(`tensor "${name}": unknown codec "${String(codec)}" (this build knows ${TENSOR_CODECS.join(', ')})`);
  }
}
