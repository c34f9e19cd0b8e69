/**
 * Fine-tuning methods' tensors: LoRA names, shapes, initialisation, dropout masks and merging; Houlsby bottleneck
 * adapters; prompt tuning; the base weights trained by feature-based and full fine-tuning.
 */
export {
  canonicalTargets,
  dropoutMask,
  initLoraTensors,
  LORA_MODULE_PATHS,
  loraManifest,
  loraScale,
  loraTensorName,
  mergeLora,
  mixSeed,
  validateLoraSpec,
  type LoraFactor,
} from './lora.js';
export {
  hasEmbeddingLora,
  initLoraEmbeddingTensors,
  LORA_EMBEDDING_A,
  LORA_EMBEDDING_B,
  loraEmbeddingManifest,
  mergeLoraEmbedding,
} from './lora-embedding.js';
export {
  bottleneckForward,
  bottleneckManifest,
  bottleneckTensorName,
  initBottleneckTensors,
  validateBottleneckSpec,
  type AdapterPart,
  type AdapterSite,
} from './bottleneck.js';
export {
  initPromptTuningTensors,
  PROMPT_EMBEDDINGS,
  promptedBatch,
  promptTuningManifest,
  validatePromptTuningSpec,
  type PromptedBatch,
} from './prompt-tuning.js';
export {
  baseLinearName,
  baseNormName,
  baseTuningManifest,
  EMBED_TOKENS,
  FINAL_NORM,
  ggufNameOf,
  initBaseTuningTensors,
  LM_HEAD,
  validateFeatureSpec,
  type BlockNorm,
} from './base-tuning.js';
