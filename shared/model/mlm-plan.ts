/**
 * Whether a run is masked-language modelling (`task: causal-lm` on a BERT-family encoder) and, if so, how its
 * batches are masked (shared/data/mlm-masking.ts) and how the run describes itself at start.
 */
import { maskBatchForMlm, MLM_EVAL_ROUND, MLM_MASK_FRACTION, MLM_PROBABILITY, MLM_RANDOM_FRACTION, validateMlmMasking, type MlmMasking } from '../data/mlm-masking.js';
import { ConfigError, ErrorCode } from '../errors.js';
import type { LoadedBaseModel } from './load-model.js';
import type { Batch, ModelSpec } from './types.js';

/**
 * The masking of a masked-LM run, or `undefined` when the run is not one (a LLaMA model, or another task).
 * @throws ConfigError E_CONFIG_INVALID when the BERT tokenizer has no `[MASK]` token.
 */
export function mlmMaskingOf(loaded: LoadedBaseModel, spec: ModelSpec, seed: number): MlmMasking | undefined {
  if (loaded.family !== 'bert' || spec.task !== 'causal-lm') return undefined;
  if (loaded.maskTokenId === undefined) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `task causal-lm on a BERT model is masked-LM, but the tokenizer of ${loaded.path} has no [MASK] token`);
  }
  const masking: MlmMasking = { seed, maskTokenId: loaded.maskTokenId, vocabSize: loaded.tokenizer.vocabSize, specialTokenIds: loaded.specialTokenIds };
  validateMlmMasking(masking);
  return masking;
}

/** The log line of a masked-LM run: the objective, the masking and where the head comes from. */
export function describeMlm(loaded: LoadedBaseModel, seed: number): string {
  const pct = (x: number): string => `${Math.round(x * 100)} %`;
  const head =
    loaded.family === 'bert' && loaded.mlmHead
      ? 'MLM head (cls.predictions) loaded from the checkpoint'
      : `the checkpoint has no MLM head (cls.predictions): initialised from seed ${seed} as Hugging Face does, and trained`;
  return (
    `task causal-lm on a BERT encoder: masked-language modelling (BertForMaskedLM) — ${pct(MLM_PROBABILITY)} of the real non-special tokens, ` +
    `${pct(MLM_MASK_FRACTION)} [MASK] / ${pct(MLM_RANDOM_FRACTION)} random / ${pct(1 - MLM_MASK_FRACTION - MLM_RANDOM_FRACTION)} unchanged, ` +
    `loss on those only; a fresh mask per step, one fixed mask for evaluation; ${head}`
  );
}

/**
 * The batch a model sees for examples `keys` (their indices in the train or eval set) at `round`: masked for a
 * masked-LM run, as collated otherwise.
 * @param round the optimizer step, or `'eval'` for the run's fixed evaluation mask.
 */
export function maskedIfMlm(batch: Batch, masking: MlmMasking | undefined, keys: readonly number[], round: number | 'eval'): Batch {
  return masking ? maskBatchForMlm(batch, keys, round === 'eval' ? MLM_EVAL_ROUND : round, masking) : batch;
}
