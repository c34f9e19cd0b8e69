/**
 * The metrics users expect of a model on held-out examples, per task: classification accuracy and loss;
 * causal-lm NLL (`eval_loss`, nats per target token) and `perplexity`; instruction: response loss and perplexity,
 * exact-match accuracy of greedy answers and a few greedy samples.
 */
import { collateBatch } from '../data/collate.js';
import type { MlmMasking } from '../data/mlm-masking.js';
import type { RawExample, TokenizedItem } from '../data/types.js';
import { ConfigError, ErrorCode } from '../errors.js';
import { evaluateInstructionAnswers, type AnswerModel, type AnswerTokenizer, type GreedySample } from './instruction-eval.js';
import { maskedIfMlm } from './mlm-plan.js';
import type { TrainableModel } from './trainable-model.js';
import type { RunTask } from './types.js';

/** The metrics of {@link evaluateHeldOut} (Hugging Face `eval_*` names). */
export interface HeldOutMetrics {
  readonly task: RunTask;
  /** Mean loss per loss-bearing item: per sequence (classification) or per target token (response tokens only for instruction), nats. */
  readonly eval_loss: number;
  /** Argmax accuracy per loss-bearing item (class, or next token). */
  readonly eval_accuracy: number;
  /** exp(eval_loss); language-model tasks only. */
  readonly perplexity?: number;
  /** Instruction: fraction of greedy answers equal to the reference (normalised). */
  readonly eval_exact_match?: number;
  /** Instruction: fraction of greedy answers that start with the reference as a whole word (`isPrefixMatch`). */
  readonly eval_prefix_match?: number;
  /** Instruction: prompts answered for `eval_exact_match`. */
  readonly eval_exact_match_examples?: number;
  /** Instruction: the first greedy answers, with their prompt's end and reference. */
  readonly eval_generations?: GreedySample[];
  /** Examples evaluated (sequences). */
  readonly eval_samples: number;
  /** Loss-bearing items behind `eval_loss`. */
  readonly eval_loss_items: number;
}

/** Options of {@link evaluateHeldOut}. */
export interface HeldOutOptions {
  /** Sequences per forward pass. @default 32 */
  readonly batchSize?: number;
  /** Instruction: prompts answered greedily (the first ones). @default 100 */
  readonly maxGenerate?: number;
  /** Instruction: greedy samples reported. @default 3 */
  readonly numSamples?: number;
  /**
   * Masked-LM (`causal-lm` on a BERT encoder, see `mlmMaskingOf`): every batch is masked with the run's fixed
   * evaluation mask, keyed by the examples' indices in `items`, as the coordinator masks its evaluation batches.
   * @default no masking
   */
  readonly mlm?: MlmMasking;
}

/**
 * `model` as one that answers prompts token by token (a decoder with a language-model head).
 * @throws ConfigError E_CONFIG_INVALID for an encoder.
 */
function answerModelOf(model: TrainableModel | (TrainableModel & AnswerModel)): AnswerModel {
  if ('nextTokenLogits' in model) return model;
  throw new ConfigError(
    ErrorCode.CONFIG_INVALID,
    'task instruction needs a model that generates its answers (a decoder with a language-model head), but this model is an encoder (BERT family): use task classification or causal-lm (masked-LM) on it',
  );
}

/**
 * Evaluate `model` (parameters as set) on `items` in batches of consecutive examples, as a run's evaluation does;
 * for `instruction`, `raw[i]` holds the reference response of `items[i]`.
 * @throws ShapeError for items that do not fit the model.
 * @throws ConfigError E_CONFIG_INVALID for `instruction` on a model that cannot generate (an encoder).
 */
export function evaluateHeldOut(
  model: TrainableModel | (TrainableModel & AnswerModel),
  tokenizer: AnswerTokenizer & { readonly padId: number },
  task: RunTask,
  items: readonly TokenizedItem[],
  raw: readonly RawExample[],
  options: HeldOutOptions = {},
): HeldOutMetrics {
  const batchSize = options.batchSize ?? 32;
  if (task === 'instruction') answerModelOf(model);
  let lossSum = 0;
  let lossItems = 0;
  let correct = 0;
  for (let start = 0; start < items.length; start += batchSize) {
    const keys = Array.from({ length: Math.min(batchSize, items.length - start) }, (_, i) => start + i);
    const batch = collateBatch(keys.map((i) => items[i]), { task, padId: tokenizer.padId });
    const stats = model.evaluate(maskedIfMlm(batch, options.mlm, keys, 'eval'));
    lossSum += stats.lossSum;
    lossItems += stats.numLossItems;
    correct += stats.numCorrect;
  }
  const evalLoss = lossItems === 0 ? Number.NaN : lossSum / lossItems;
  const base = { task, eval_loss: evalLoss, eval_accuracy: lossItems === 0 ? Number.NaN : correct / lossItems, eval_samples: items.length, eval_loss_items: lossItems };
  if (task === 'classification') return base;
  if (task === 'causal-lm') return { ...base, perplexity: Math.exp(evalLoss) };
  const answers = evaluateInstructionAnswers(answerModelOf(model), tokenizer, items, raw, { maxExamples: options.maxGenerate ?? 100, numSamples: options.numSamples ?? 3 });
  return {
    ...base,
    perplexity: Math.exp(evalLoss),
    eval_exact_match: answers.exactMatch,
    eval_prefix_match: answers.prefixMatch,
    eval_exact_match_examples: answers.numExamples,
    eval_generations: answers.samples,
  };
}
