/**
 * Parameter-efficient adapters: LoRA names, shapes, initialisation, dropout masks and merging.
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
