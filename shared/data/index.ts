/**
 * Datasets: specs and loaders (built-ins, jsonl/csv/tsv), the train/eval split, tokenization, batching.
 */
export { batchIndices, batchesPerEpoch, sequentialBatchIndices, type BatchIndicesOptions } from './batching.js';
export { collateBatch, IGNORE_INDEX, type CollateOptions } from './collate.js';
export { parseDelimited, type DelimitedRecord, type DelimitedTable } from './delimited.js';
export { labelIndex, labelSet } from './labels.js';
export { loadExamples } from './load.js';
export { loadTrainEval, type DataConfig, type TrainEvalExamples } from './prepare.js';
export { digestItems, prepareRunData, runDataSettings, RUN_DATA_KEYS, type RunData, type RunDataConfig } from './run-data.js';
export { mixSeeds, seededPermutation } from './seeded-random.js';
export { emailBody, labelOfGroup, loadSpamAssassin, SPAM_ASSASSIN_PACKAGE, type SpamAssassinExample } from './spam-assassin.js';
export {
  BUILTIN_DATASETS,
  FILE_SCHEMES,
  formatDatasetSpec,
  parseDatasetSpec,
  type BuiltinDataset,
  type DatasetSpec,
  type FileScheme,
} from './spec.js';
export {
  buildShardPlan,
  canonicalJson,
  DIRICHLET_MAX_TRIES,
  SHARD_METHODS,
  shardPlanSha256,
  specOf,
  verifyShardPlan,
  type ShardClient,
  type ShardMethod,
  type ShardPlan,
  type ShardPlanData,
  type ShardPlanSpec,
} from './shard-plan.js';
export { shardPlanSpecOf, type ShardPlanConfig } from './shard-plan-config.js';
export { formatShardSummary, summarizeShardPlan, type CountStats, type ShardPlanSummary } from './shard-plan-summary.js';
export { maskBatchForMlm, MLM_EVAL_ROUND, MLM_MASK_FRACTION, MLM_PROBABILITY, MLM_RANDOM_FRACTION, validateMlmMasking, type MlmMasking } from './mlm-masking.js';
export { evalCount, seededShuffle, splitTrainEval, takeFirst, type SplitOptions } from './split.js';
export {
  tokenizeForCausalLm,
  tokenizeForClassification,
  type CausalLmOverflow,
  type CausalLmTokenizeOptions,
  type ClassificationTokenizeOptions,
  type DataTokenizer,
} from './tokenize.js';
export type { ClassificationItem, LoadOptions, RawExample, TokenizedItem } from './types.js';
