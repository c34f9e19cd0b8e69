/**
 * Tensor codecs: float32 tensors ⇄ {@link TensorBlob}s in `fp32`, `fp16`, `bf16`, `int8` (blockwise absmax) or
 * `topk` (sparse), per-tensor choice by {@link CodecPolicy}, and {@link ErrorFeedback} for the lossy ones.
 * Byte layouts and error bounds are stated in each codec's file.
 */
export { decodeTensor, decodeTensorInto, encodedByteLength, encodeTensor, encodeTensorInto } from './tensor.js';
export {
  CODEC_NAMES,
  DEFAULT_INT8_BLOCK_SIZE,
  DEFAULT_TOPK_DENSITY,
  FP32_POLICY,
  MAX_INT8_BLOCK_SIZE,
  checkCodecSpec,
  isCodecName,
  isLossy,
  matchesGlob,
  parseCodecSpec,
  resolveCodec,
} from './spec.js';
export type { CodecName, CodecOverride, CodecPolicy, CodecSpec } from './spec.js';
export { ErrorFeedback } from './error-feedback.js';
export { MAX_CODED_ELEMENTS } from './common.js';
export { BF16_MAX, bf16BitsToFloat, floatToBf16Bits } from './bf16.js';
export { FP16_MAX, floatToFp16Bits, fp16BitsToFloat } from './fp16.js';
export { int8ByteLength } from './int8.js';
export { topkCount } from './topk.js';
export { allocateTopkBudget } from './topk-budget.js';
