/**
 * Train/eval split and sample caps.
 *
 * Order of operations (documented once, relied on everywhere): the whole dataset is shuffled with the seed, the
 * first `evalSize` shuffled examples become the eval set and the rest the train set (both in shuffled order), and
 * only then are `max_train_samples` / `max_eval_samples` applied with {@link takeFirst}. So a cap takes a random
 * subset, and changing a cap never moves an example between train and eval.
 */
import { ConfigError, ErrorCode } from '../errors.js';
import { mixSeeds, seededPermutation } from './seeded-random.js';

/** Stream id mixed into the seed for the split, so the split is unrelated to the batch orders of the same seed. */
const SPLIT_STREAM = 0x5b117;

/** Options of {@link splitTrainEval}. */
export interface SplitOptions {
  /** Run seed; the same seed and data give the same split. */
  readonly seed: number;
  /** Eval examples: a count if an integer >= 1, or a fraction in (0, 1) of the dataset (rounded up). */
  readonly evalSize: number;
}

/**
 * Deterministic seeded split.
 *
 * @throws ConfigError E_CONFIG_INVALID when `evalSize` is not a count or fraction, or leaves no train or no eval
 *   example (the message names `eval_split_size` and the dataset size).
 */
export function splitTrainEval<T>(examples: readonly T[], options: SplitOptions): { train: T[]; eval: T[] } {
  const n = examples.length;
  const numEval = evalCount(n, options.evalSize);
  const shuffled = seededShuffle(examples, options.seed);
  return { eval: shuffled.slice(0, numEval), train: shuffled.slice(numEval) };
}

/**
 * `items` in the seeded order {@link splitTrainEval} uses (a new array): the split is "shuffle, then the first
 * `evalSize` are eval", so shuffling a separate eval dataset with this keeps both paths alike.
 */
export function seededShuffle<T>(items: readonly T[], seed: number): T[] {
  return Array.from(seededPermutation(items.length, mixSeeds(seed, SPLIT_STREAM)), (index) => items[index]);
}

/** How many of `numExamples` a count-or-fraction `evalSize` takes; throws as {@link splitTrainEval}. */
export function evalCount(numExamples: number, evalSize: number): number {
  const valid = Number.isFinite(evalSize) && evalSize > 0 && (evalSize < 1 || Number.isInteger(evalSize));
  if (!valid) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `invalid eval_split_size ${evalSize}: expected an integer >= 1 or a fraction in (0, 1)`);
  }
  const numEval = evalSize < 1 ? Math.ceil(evalSize * numExamples) : evalSize;
  if (numEval >= numExamples) {
    throw new ConfigError(
      ErrorCode.CONFIG_INVALID,
      `eval_split_size ${evalSize} takes ${numEval} of the dataset's ${numExamples} examples and leaves none to train on`,
    );
  }
  return numEval;
}

/**
 * The first `n` items (all of them when `n` is -1 or at least the length); a new array.
 *
 * @param n a cap >= 0, or -1 for no cap (`max_train_samples` semantics).
 * @throws ConfigError E_CONFIG_INVALID for any other value.
 */
export function takeFirst<T>(items: readonly T[], n: number): T[] {
  if (n === -1) return items.slice();
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, `invalid sample cap ${n}: expected an integer >= 0, or -1 for no cap`);
  return items.slice(0, n);
}
