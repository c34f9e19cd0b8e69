/**
 * The metrics users expect of a model on held-out examples, per task: classification accuracy and loss;
 * causal-lm NLL (`eval_loss`, nats per target token) and `perplexity`; instruction: response loss and perplexity,
 * exact-match accuracy of greedy answers and a few greedy samples.
 */
import { collateBatch } from '../data/collate.js';
import type { RawExample, TokenizedItem } from '../data/types.js';
import { evaluateInstructionAnswers, type AnswerTokenizer, type GreedySample } from './instruction-eval.js';
import type { TaskModel } from './task-model.js';
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
}

/**
 * Evaluate `model` (parameters as set) on `items`; for `instruction`, `raw[i]` holds the reference response of
 * `items[i]`.
 * @throws ShapeError for items that do not fit the model.
 */
export function evaluateHeldOut(
  model: TaskModel,
  tokenizer: AnswerTokenizer & { readonly padId: number },
  task: RunTask,
  items: readonly TokenizedItem[],
  raw: readonly RawExample[],
  options: HeldOutOptions = {},
): HeldOutMetrics {
  const batchSize = options.batchSize ?? 32;
  let lossSum = 0;
  let lossItems = 0;
  let correct = 0;
  for (let start = 0; start < items.length; start += batchSize) {
    const stats = model.evaluate(collateBatch(items.slice(start, start + batchSize), { task, padId: tokenizer.padId }));
    lossSum += stats.lossSum;
    lossItems += stats.numLossItems;
    correct += stats.numCorrect;
  }
  const evalLoss = lossItems === 0 ? Number.NaN : lossSum / lossItems;
  const base = { task, eval_loss: evalLoss, eval_accuracy: lossItems === 0 ? Number.NaN : correct / lossItems, eval_samples: items.length, eval_loss_items: lossItems };
  if (task === 'classification') return base;
  if (task === 'causal-lm') return { ...base, perplexity: Math.exp(evalLoss) };
  const answers = evaluateInstructionAnswers(model, tokenizer, items, raw, { maxExamples: options.maxGenerate ?? 100, numSamples: options.numSamples ?? 3 });
  return {
    ...base,
    perplexity: Math.exp(evalLoss),
    eval_exact_match: answers.exactMatch,
    eval_prefix_match: answers.prefixMatch,
    eval_exact_match_examples: answers.numExamples,
    eval_generations: answers.samples,
  };
}
