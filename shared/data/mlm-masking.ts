/**
 * Masked-language-model inputs (BERT's pre-training objective, as `DataCollatorForLanguageModeling` makes them):
 * 15 % of the real, non-special tokens are chosen; of those 80 % become [MASK], 10 % a random token and 10 % stay
 * as they are; the loss reads the chosen positions only.
 *
 * The choice is a pure function of (seed, example key, round): the coordinator masks every slice it cuts, keyed by
 * the examples' indices in the dataset and the optimizer step, so N workers see exactly the tokens one process
 * would see for the same global batch. Evaluation uses {@link MLM_EVAL_ROUND}, one fixed mask for the whole run.
 */
import { ConfigError, ErrorCode, ShapeError } from '../errors.js';
import type { Batch } from '../model/types.js';
import { mulberry32 } from '../random.js';
import { IGNORE_INDEX } from './collate.js';
import { mixSeeds } from './seeded-random.js';

/** Fraction of eligible tokens chosen for prediction (BERT's, and HF's `mlm_probability`). @default 0.15 */
export const MLM_PROBABILITY = 0.15;
/** Of the chosen tokens, the fraction replaced by [MASK]. @default 0.8 */
export const MLM_MASK_FRACTION = 0.8;
/** Of the chosen tokens, the fraction replaced by a uniformly random vocabulary id (the rest stay unchanged). @default 0.1 */
export const MLM_RANDOM_FRACTION = 0.1;
/** The round evaluation masks with: the same positions at every evaluation of a run. */
export const MLM_EVAL_ROUND = -1;

/** Stream id mixed into the seed (distinct from the split's and the batch order's). */
const MLM_STREAM = 0x6d1a5c;

/** What masking needs to know about the vocabulary and the run. */
export interface MlmMasking {
  /** Run seed. */
  readonly seed: number;
  /** Id of `[MASK]`. */
  readonly maskTokenId: number;
  /** Random replacements are drawn from `[0, vocabSize)` (HF draws from `len(tokenizer)`). */
  readonly vocabSize: number;
  /** Ids never chosen: [CLS], [SEP], [PAD], [UNK], [MASK] and any other special token. */
  readonly specialTokenIds: readonly number[];
}

/**
 * Throw unless `masking` is usable.
 * @throws ConfigError E_CONFIG_INVALID for a [MASK] id outside the vocabulary or a vocabulary of fewer than 2 ids.
 */
export function validateMlmMasking(masking: MlmMasking): void {
  const { maskTokenId, vocabSize } = masking;
  if (!Number.isInteger(vocabSize) || vocabSize < 2) throw new ConfigError(ErrorCode.CONFIG_INVALID, `masked-LM: vocabulary size ${vocabSize} is not an integer >= 2`);
  if (!Number.isInteger(maskTokenId) || maskTokenId < 0 || maskTokenId >= vocabSize) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `masked-LM: [MASK] id ${maskTokenId} is outside the vocabulary [0, ${vocabSize})`);
  }
}

/**
 * The masked-LM version of a collated batch (its `labels` are ignored): `inputIds` with the chosen tokens replaced,
 * `labels[b, t]` = the original token at chosen positions and {@link IGNORE_INDEX} elsewhere (not shifted: the
 * model predicts the token at its own position). Sequence `b` draws from `mixSeeds(seed, stream, round, keys[b])`,
 * three numbers per real position whatever the padding, so a sequence's mask does not depend on the batch it is in.
 * @param keys one stable identity per sequence (its index in the dataset).
 * @param round the optimizer step for training (a fresh mask each step), {@link MLM_EVAL_ROUND} for evaluation.
 * @throws ShapeError E_TENSOR_SHAPE when `keys` does not hold one key per sequence.
 */
export function maskBatchForMlm(batch: Batch, keys: readonly number[], round: number, masking: MlmMasking): Batch {
  const { batchSize, seqLen } = batch;
  if (keys.length !== batchSize) throw new ShapeError(ErrorCode.TENSOR_SHAPE, `maskBatchForMlm: ${keys.length} keys for ${batchSize} sequences`);
  const special = new Set(masking.specialTokenIds);
  const inputIds = Int32Array.from(batch.inputIds);
  const labels = new Int32Array(batchSize * seqLen).fill(IGNORE_INDEX);
  for (let b = 0; b < batchSize; b++) {
    const rng = mulberry32(mixSeeds(masking.seed, MLM_STREAM, round, keys[b]));
    for (let t = 0; t < seqLen; t++) {
      const i = b * seqLen + t;
      if (batch.attentionMask[i] === 0) continue;
      const chosen = rng() < MLM_PROBABILITY;
      const how = rng();
      const replacement = Math.min(masking.vocabSize - 1, Math.floor(rng() * masking.vocabSize));
      if (!chosen || special.has(batch.inputIds[i])) continue;
      labels[i] = batch.inputIds[i];
      if (how < MLM_MASK_FRACTION) inputIds[i] = masking.maskTokenId;
      else if (how < MLM_MASK_FRACTION + MLM_RANDOM_FRACTION) inputIds[i] = replacement;
    }
  }
  return { batchSize, seqLen, inputIds, attentionMask: batch.attentionMask, labels };
}
