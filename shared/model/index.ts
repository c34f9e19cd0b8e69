/**
 * The LLaMA model, its heads and generation (`load-gguf.ts`, the GGUF loader, is imported from its own file).
 */
export { additiveAttentionMask, attention, MASKED_LOGIT } from './attention.js';
export { validateBatch } from './batch-validation.js';
export { decoderForward, embedTokens, type DecoderHooks, type DecoderInputs, type LinearAdapter } from './decoder.js';
export { embeddingGradPath, embeddingLookup, ONE_HOT_LIMIT_ELEMENTS, type EmbeddingGradPath } from './embedding-lookup.js';
export { FrozenBase, type FrozenLayer } from './frozen-base.js';
export { argMax, generate, sampleFromLogits, type GenerateOptions, type GenerationTokenizer } from './generate.js';
export { disposeFrozenMatrix, frozenLeftMatMul, frozenLinear, frozenMatrix, loraDelta, trainableLinear, type FrozenMatrix } from './linear-ops.js';
export { expectedBaseShapes, GGUF_LINEAR_NAMES, headDimOf, linearShapeOf, validateLlamaConfig } from './llama-config.js';
export { crossEntropyRows, crossEntropyTargets, IGNORE_INDEX, poolingMatrix, type CrossEntropyTargets } from './losses.js';
export { FORMULATIONS, opsFor, type Formulation, type ModelOps } from './ops.js';
export { randomBaseWeights, type RandomWeightsOptions } from './random-weights.js';
export { rmsNorm } from './rms-norm.js';
export { applyRope, pairSwapMatrix, ropeTables, type RopeTables } from './rope.js';
export { swiglu } from './swiglu.js';
export { TaskModel, type GradientOptions, type TaskModelOptions } from './task-model.js';
export { initTrainableValues, SCORE_INIT_STD, SCORE_WEIGHT, trainableManifest, validateModelSpec, type BaseShape } from './trainable.js';
export * from './types.js';
