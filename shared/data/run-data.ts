/**
 * The tokenized examples of a run, computed the same way wherever they are needed: by the coordinator, and by a
 * federated client that loads the data itself (`data_delivery: local`) and must see exactly the coordinator's
 * training set for the shard plan's indices to mean the same examples. The digest lets both sides check that.
 */
import { createHash } from 'node:crypto';
import type { RunConfig } from '../config/run-config.js';
import { tokenizeForInstruction } from './instruction-tokenize.js';
import { loadTrainEval, type DataConfig } from './prepare.js';
import { tokenizeForCausalLm, tokenizeForClassification, type DataTokenizer } from './tokenize.js';
import type { RawExample, TokenizedItem } from './types.js';

/** Examples tokenized between two turns of the event loop. */
const TOKENIZE_CHUNK = 100;

/** The configuration keys {@link prepareRunData} reads. */
export type RunDataConfig = DataConfig & Pick<RunConfig, 'max_length'>;

/** The keys of {@link RunDataConfig}, so that a coordinator can hand exactly these to its clients. */
export const RUN_DATA_KEYS = [
  'dataset',
  'eval_dataset',
  'eval_split_size',
  'task',
  'text_column',
  'label_column',
  'max_train_samples',
  'max_eval_samples',
  'seed',
  'max_length',
  'prompt_template',
] as const satisfies readonly (keyof RunDataConfig)[];

/** A run's examples, raw and tokenized, with the digest of the tokenized training set. */
export interface RunData {
  readonly rawTrain: readonly RawExample[];
  /** The evaluation examples as loaded (instruction: rendered prompt and reference response), in `eval` order. */
  readonly rawEval: readonly RawExample[];
  readonly train: TokenizedItem[];
  readonly eval: TokenizedItem[];
  /** Classification label set (sorted); empty for causal-lm. */
  readonly labels: string[];
  /** Lower-case hex SHA-256 over every training item's ids and label, in order. */
  readonly trainSha256: string;
}

/**
 * Loads, splits, caps and tokenizes the run's examples.
 * @param options.baseDir folder against which relative dataset paths resolve. @default process cwd
 * @throws as `loadTrainEval`
 */
export async function prepareRunData(config: RunDataConfig, tokenizer: DataTokenizer, options: { baseDir?: string } = {}): Promise<RunData> {
  const data = await loadTrainEval(config, options);
  const tokenizeChunk = (examples: readonly RawExample[]): TokenizedItem[] =>
    config.task === 'classification'
      ? tokenizeForClassification(examples, tokenizer, { maxLength: config.max_length, labels: data.labels })
      : config.task === 'instruction'
        ? tokenizeForInstruction(examples, tokenizer, { maxLength: config.max_length })
        : tokenizeForCausalLm(examples, tokenizer, { maxLength: config.max_length });
  // In chunks with a turn of the event loop between them: a worker tokenizing thousands of examples must still
  // answer the coordinator's pings.
  const tokenize = async (examples: readonly RawExample[]): Promise<TokenizedItem[]> => {
    const items: TokenizedItem[] = [];
    for (let start = 0; start < examples.length; start += TOKENIZE_CHUNK) {
      items.push(...tokenizeChunk(examples.slice(start, start + TOKENIZE_CHUNK)));
      await new Promise((resolveTurn) => setImmediate(resolveTurn));
    }
    return items;
  };
  const train = await tokenize(data.train);
  return { rawTrain: data.train, rawEval: data.eval, train, eval: await tokenize(data.eval), labels: data.labels, trainSha256: digestItems(train) };
}

/** SHA-256 over items' ids and labels, in order (lower-case hex). */
export function digestItems(items: readonly TokenizedItem[]): string {
  const hash = createHash('sha256');
  const header = new Int32Array(2);
  for (const item of items) {
    header[0] = item.ids.length;
    header[1] = item.label ?? -1;
    hash.update(new Uint8Array(header.buffer));
    hash.update(new Uint8Array(item.ids.buffer, item.ids.byteOffset, item.ids.byteLength));
    // Only instruction items carry it, so the digests of other tasks (kept in checkpoints) do not change.
    if (item.promptLength !== undefined) hash.update(new Uint8Array(Int32Array.of(item.promptLength).buffer));
  }
  return hash.digest('hex');
}

/** The {@link RunDataConfig} part of a configuration, as plain data to send to clients. */
export function runDataSettings(config: RunDataConfig): RunDataConfig {
  return Object.fromEntries(RUN_DATA_KEYS.map((key) => [key, config[key]])) as unknown as RunDataConfig;
}
