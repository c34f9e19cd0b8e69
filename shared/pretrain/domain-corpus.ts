/**
 * The text of domain-adaptive pre-training (DAPT): the training examples of a downstream task, as that task's own
 * configuration splits them, with their labels dropped. The task's evaluation examples are held out of it by
 * construction (the split is the one `swarmtune run` makes from the same data keys and seed), so the downstream
 * evaluation never scores text the model was pre-trained on.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { compileConfig } from '../config.js';
import type { RunConfig } from '../config/run-config.js';
import { loadTrainEval } from '../data/prepare.js';
import { ErrorCode, InputFileError } from '../errors.js';

/** The domain text of a task: its training texts, and its evaluation texts (for measuring, never training). */
export interface DomainCorpus {
  /** `jsonl:` files of `{"text": ...}` lines. */
  readonly trainPath: string;
  readonly heldOutPath: string;
  readonly numTrainTexts: number;
  readonly numHeldOutTexts: number;
  /** UTF-16 code units of the training texts. */
  readonly numTrainChars: number;
  /** The task's dataset and seed, as its configuration states them. */
  readonly dataset: string;
  readonly seed: number;
  /** Whether the files came from an earlier identical call. */
  readonly isCached: boolean;
}

/**
 * Reads the task configuration (a `swarmtune run` YAML or JSON file), loads its dataset with every cap lifted and
 * writes the training and evaluation texts of its split as JSON Lines under `cacheDir` (reused when the task's data
 * keys are unchanged).
 * @throws InputFileError E_CONFIG_FILE when the task file cannot be read; what `loadTrainEval` throws for its data.
 */
export async function cachedDomainCorpus(taskConfigPath: string, cacheDir: string): Promise<DomainCorpus> {
  const task = await readTaskConfig(taskConfigPath);
  const dataKeys = { dataset: task.dataset, eval_dataset: task.eval_dataset, eval_split_size: task.eval_split_size, seed: task.seed, text_column: task.text_column };
  const key = createHash('sha256').update(JSON.stringify(dataKeys)).digest('hex').slice(0, 16);
  const trainPath = join(cacheDir, `domain-${key}-train.jsonl`);
  const heldOutPath = join(cacheDir, `domain-${key}-heldout.jsonl`);
  const summaryPath = join(cacheDir, `domain-${key}.json`);
  if (existsSync(trainPath) && existsSync(heldOutPath) && existsSync(summaryPath)) {
    const summary = JSON.parse(await readFile(summaryPath, 'utf8')) as Omit<DomainCorpus, 'isCached'>;
    return { ...summary, trainPath, heldOutPath, isCached: true };
  }
  // Every example, labels ignored: the caps of the task (max_train_samples, ...) choose what it trains on later.
  const { train, eval: heldOut } = await loadTrainEval({ ...task, max_train_samples: -1, max_eval_samples: -1 }, { baseDir: dirname(taskConfigPath) });
  const trainTexts = train.map((example) => example.text);
  const summary: Omit<DomainCorpus, 'isCached'> = {
    trainPath,
    heldOutPath,
    numTrainTexts: trainTexts.length,
    numHeldOutTexts: heldOut.length,
    numTrainChars: trainTexts.reduce((sum, text) => sum + text.length, 0),
    dataset: task.dataset,
    seed: task.seed,
  };
  await mkdir(cacheDir, { recursive: true });
  await writeAtomically(trainPath, toJsonLines(trainTexts));
  await writeAtomically(heldOutPath, toJsonLines(heldOut.map((example) => example.text)));
  await writeAtomically(summaryPath, `${JSON.stringify(summary, null, 2)}\n`);
  return { ...summary, isCached: false };
}

async function readTaskConfig(path: string): Promise<RunConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new InputFileError(ErrorCode.CONFIG_FILE, `domain-adaptive pre-training: task configuration ${path} cannot be read`, { cause: err });
  }
  return compileConfig(parse(text) as Record<string, unknown>);
}

function toJsonLines(texts: readonly string[]): string {
  return texts.map((text) => `${JSON.stringify({ text })}\n`).join('');
}

async function writeAtomically(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}
