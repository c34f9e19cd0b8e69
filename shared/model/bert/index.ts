/**
 * The BERT family (`BertModel`, `BertForSequenceClassification`) from Hugging Face directories: config, loader,
 * frozen encoder, trainable classifier with every fine-tuning method, merge and writer.
 */
export { BERT_ACTIVATIONS, BERT_CONFIG_DEFAULTS, bertHeadDim, expectedBertTensors, isBertConfig, parseBertConfig, type BertConfig } from './bert-config.js';
export { bertAttentionMask, bertEncoderForward, bertPool, clsSelection, FrozenBert, geluErf, layerNorm, type BertInputs, type BertLinearAdapter, type BertSublayerAdapter, type BertTrainableParts } from './bert-encoder.js';
export { exportHfBert } from './bert-export.js';
export { bertConfigJson, mergeBertLora, writeHfBert, type WritableBert } from './bert-merge.js';
export { BERT_BASE_PREFIX, bertAdapterManifest, bertAdapterTensorName, bertBaseTuningManifest, bertPromptManifest } from './bert-methods.js';
export { BertTaskModel, validateBertBatch, type BertTaskModelOptions } from './bert-task-model.js';
export {
  BERT_CLASSIFIER_BIAS,
  BERT_CLASSIFIER_INIT_STD,
  BERT_CLASSIFIER_WEIGHT,
  BERT_LORA_TARGETS,
  BERT_MODULE_PATHS,
  BERT_PEFT_METHODS,
  bertLinearShape,
  bertLoraDropout,
  bertLoraSpec,
  bertLoraTensorName,
  bertTargets,
  bertTrainableManifest,
  initBertTrainableValues,
  validateBertSpec,
  type BertLoraTarget,
} from './bert-trainable.js';
export { BERT_SPECIAL_TOKENS, bertTokenizerFromJson, bertWeightsFromTensors, isHfBertDir, loadHfBert, type BertWeights, type LoadedBert } from './load-hf-bert.js';
