/**
 * From the configuration's data keys to the train and eval examples of a run, in the documented order:
 * load → split (or load `eval_dataset`) → cap.
 */
import type { RunConfig } from '../config/run-config.js';
import { labelSet } from './labels.js';
import { loadInstructionExamples } from './instruction-load.js';
import { loadExamples } from './load.js';
import { seededShuffle, splitTrainEval, takeFirst } from './split.js';
import type { RawExample } from './types.js';

/** The configuration keys {@link loadTrainEval} reads. */
export type DataConfig = Pick<
  RunConfig,
  'dataset' | 'eval_dataset' | 'eval_split_size' | 'task' | 'text_column' | 'label_column' | 'max_train_samples' | 'max_eval_samples' | 'seed'
> &
  Partial<Pick<RunConfig, 'prompt_template'>>;

/** The examples of a run. */
export interface TrainEvalExamples {
  /** Training examples, shuffled and capped at `max_train_samples`. */
  readonly train: RawExample[];
  /** Evaluation examples, shuffled and capped at `max_eval_samples`. */
  readonly eval: RawExample[];
  /**
   * Classification: the sorted label set of everything loaded (train source and eval source, before the caps), so
   * that label ids do not depend on the caps or the seed. Causal-lm: empty.
   */
  readonly labels: string[];
}

/**
 * Load the run's examples.
 *
 * Without `eval_dataset`: `dataset` is shuffled with `seed` and split (`eval_split_size`), then each side is capped.
 * With `eval_dataset`: `dataset` is shuffled with `seed` (all of it is train), `eval_dataset` is shuffled with the same
 * seed, then each side is capped.
 *
 * @param options.baseDir folder against which relative file paths in the specs are resolved. @default process cwd
 * @throws InputFileError E_DATASET as `loadExamples`; ConfigError E_CONFIG_INVALID when `eval_split_size` leaves no
 *   train or eval examples.
 */
export async function loadTrainEval(config: DataConfig, options: { baseDir?: string } = {}): Promise<TrainEvalExamples> {
  const loadOptions = { task: config.task, textColumn: config.text_column, labelColumn: config.label_column, baseDir: options.baseDir };
  // Instruction records are rendered through the template here: every later stage sees a prompt and a response.
  const load = (spec: string): Promise<RawExample[]> =>
    config.task === 'instruction' ? loadInstructionExamples(spec, config.prompt_template ?? null, options.baseDir) : loadExamples(spec, loadOptions);
  const all = await load(config.dataset);
  let train: RawExample[];
  let evaluation: RawExample[];
  let labels: string[];
  if (config.eval_dataset === null) {
    ({ train, eval: evaluation } = splitTrainEval(all, { seed: config.seed, evalSize: config.eval_split_size }));
    labels = labelSet(all);
  } else {
    const evalAll = await load(config.eval_dataset);
    train = seededShuffle(all, config.seed);
    evaluation = seededShuffle(evalAll, config.seed);
    labels = labelSet([...all, ...evalAll]);
  }
  return {
    train: takeFirst(train, config.max_train_samples),
    eval: takeFirst(evaluation, config.max_eval_samples),
    labels: config.task === 'classification' ? labels : [],
  };
}
