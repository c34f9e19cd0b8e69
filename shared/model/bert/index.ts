/**
 * The BERT family (`BertModel`, `BertForSequenceClassification`, `BertForMaskedLM`) from Hugging Face directories:
 * config, loader, frozen encoder, trainable classifier and masked-LM with every fine-tuning method, merge and writer.
 */
export { BERT_ACTIVATIONS, BERT_CONFIG_DEFAULTS, bertHeadDim, expectedBertTensors, isBertConfig, parseBertConfig, type BertConfig } from './bert-config.js';
export { bertAttentionMask, bertEncoderForward, bertPool, clsSelection, FrozenBert, geluErf, layerNorm, type BertInputs, type BertLinearAdapter, type BertSublayerAdapter, type BertTrainableParts } from './bert-encoder.js';
export { exportHfBert } from './bert-export.js';
export { bertConfigJson, mergeBertLora, writeHfBert, type WritableBert } from './bert-merge.js';
export { BERT_BASE_PREFIX, bertAdapterManifest, bertAdapterTensorName, bertBaseTuningManifest, bertPromptManifest } from './bert-methods.js';
export { promptedMask, statsOf, validateBertBatch } from './bert-batch.js';
export { BertTaskModel, type BertCheckpoint, type BertTaskModelOptions } from './bert-task-model.js';
export { bertMlmLogits } from './bert-mlm-forward.js';
export {
  BERT_MLM_BIAS,
  BERT_MLM_DENSE_BIAS,
  BERT_MLM_DENSE_WEIGHT,
  BERT_MLM_INIT_STD,
  BERT_MLM_MODULE,
  BERT_MLM_NORM_BIAS,
  BERT_MLM_NORM_WEIGHT,
  bertMlmHeadManifest,
  bertMlmHeadTrains,
  bertMlmHeadValues,
  initBertMlmHead,
  isBertMlm,
  mlmRowSelection,
  type BertMlmHead,
} from './bert-mlm-head.js';
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
export { BERT_SPECIAL_TOKENS, bertSpecialIds, bertTokenizerFromJson, bertWeightsFromTensors, isHfBertDir, loadHfBert, type BertWeights, type LoadedBert } from './load-hf-bert.js';
