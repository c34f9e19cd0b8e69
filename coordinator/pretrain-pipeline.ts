/**
 * `npm run pretrain`: the embedded default model made by swarmtune itself. In order: a byte-level BPE tokenizer
 * learnt on the corpus's training documents; the corpus packed into one-window pieces (cached); a LLaMA model
 * initialised from the seed and written as an HF directory; a real `swarmtune run` (causal-lm, `peft.method: full`,
 * data-parallel over local worker processes) from those random weights, evaluated on held-out documents before and
 * after; the trained weights written as an HF directory with a model card.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadPretrainingCorpus, type PretrainingSource } from '../shared/data/pretraining-corpus.js';
import type { LlamaConfig } from '../shared/model/types.js';
import { cachedCorpusPieces } from '../shared/pretrain/corpus-pieces.js';
import { baseWeightsFromFullAdapter, writeRandomHfModel, writeTrainedHfModel } from '../shared/pretrain/hf-model-files.js';
import { loadBpeTokenizerDir } from '../shared/tokenizer/bpe-tokenizer-json.js';
import { runBpeTrainJob } from '../shared/tokenizer/bpe-train-job.js';
import { runSwarmtune } from './pretrain-cli-runs.js';
import { modelCardMarkdown, type PretrainReport } from './pretrain-model-card.js';

/** Everything the pipeline decides. */
export interface PretrainOptions {
  /** Where the finished model goes (replaced). @default models/swarmtune-mini */
  readonly outputDir: string;
  /** Scratch: tokenizer, cache, initial model, the run's folder. @default runs/pretrain */
  readonly workDir: string;
  /** Seeds the tokenizer sample, the held-out split, the initial weights and the run. @default 42 */
  readonly seed: number;
  readonly sources: readonly PretrainingSource[];
  /** Held-out share of each source's documents. @default 0.05 */
  readonly heldOutFraction: number;
  /** BPE vocabulary size (special tokens and 256 byte tokens included). @default 2000 */
  readonly vocabSize: number;
  /** Model shape; `vocabSize` is filled from the tokenizer. */
  readonly model: Omit<LlamaConfig, 'vocabSize'>;
  readonly workers: number;
  readonly perDeviceBatchSize: number;
  readonly maxSteps: number;
  readonly learningRate: number;
  readonly warmupRatio: number;
  readonly weightDecay: number;
  /** Held-out pieces evaluated (before and after). */
  readonly maxEvalSamples: number;
  /** Prompts for the card's samples. */
  readonly samplePrompts: readonly string[];
  readonly sampleTokens: number;
  /** Sampling temperature of the card's samples (0 = greedy); seeded with `seed`. @default 0.7 */
  readonly sampleTemperature: number;
  /**
   * Keep the finished run in `workDir/run` when its configuration file is unchanged (same data, model, steps and
   * seed) and only rewrite the model directory, card and samples. @default false
   */
  readonly reuseRun: boolean;
}

/** The defaults: about 25 minutes on a loaded 2-core machine. */
export const DEFAULT_PRETRAIN_OPTIONS: PretrainOptions = {
  outputDir: 'models/swarmtune-mini',
  workDir: 'runs/pretrain',
  seed: 42,
  sources: ['brown', 'moby-dick'],
  heldOutFraction: 0.05,
  vocabSize: 2000,
  model: { dim: 128, nLayers: 4, nHeads: 4, nKvHeads: 2, hiddenDim: 352, normEps: 1e-5, ropeTheta: 10000, contextLength: 256 },
  workers: 2,
  perDeviceBatchSize: 8,
  maxSteps: 120,
  learningRate: 5e-3,
  warmupRatio: 0.05,
  weightDecay: 0.01,
  maxEvalSamples: 48,
  samplePrompts: ['The', 'It was a', 'The government of the United States'],
  sampleTokens: 40,
  sampleTemperature: 0.7,
  reuseRun: false,
};

/**
 * Runs the pipeline and returns what the card states.
 * @throws what the steps throw: InputFileError for missing corpus packages, OrchestratorError E_INTERNAL when the run fails.
 */
export async function runPretrainPipeline(options: PretrainOptions, log: (line: string) => void): Promise<PretrainReport> {
  const started = performance.now();
  const work = resolve(options.workDir);
  const tokenizerDir = join(work, 'tokenizer');
  const initDir = join(work, 'init');
  const runDir = join(work, 'run');
  await mkdir(work, { recursive: true });

  log(`tokenizer: byte-level BPE, vocabulary ${options.vocabSize}, on the training documents of ${options.sources.join(', ')}`);
  const tok = await runBpeTrainJob({ corpus: options.sources, outputDir: tokenizerDir, vocabSize: options.vocabSize, seed: options.seed, heldOutFraction: options.heldOutFraction });
  log(`tokenizer: ${tok.vocabSize} tokens, ${tok.numMerges} merges, sha256 ${tok.tokenizerJsonSha256.slice(0, 12)}`);
  const tokenizer = await loadBpeTokenizerDir(tokenizerDir);

  const corpus = loadPretrainingCorpus({ sources: options.sources, seed: options.seed, heldOutFraction: options.heldOutFraction });
  const maxPieceTokens = options.model.contextLength - 2; // BOS and EOS fill the rest of a window
  const pieces = await cachedCorpusPieces(join(work, 'cache'), corpus, tokenizer, maxPieceTokens);
  log(
    `data: ${corpus.train.length} train documents → ${pieces.train.numPieces} pieces, ${pieces.train.numTokens} tokens; ` +
      `${corpus.heldOut.length} held-out documents → ${pieces.heldOut.numPieces} pieces${pieces.isCached ? ' (cached)' : ''}`,
  );

  const config: LlamaConfig = { ...options.model, vocabSize: tokenizer.vocabSize };
  await writeRandomHfModel(initDir, config, tokenizerDir, options.seed);
  log(`initial model: ${initDir} (seed ${options.seed})`);

  const runConfigPath = join(work, 'pretrain-run.json');
  const runConfigText = `${JSON.stringify(pretrainRunConfig(options, initDir, pieces.trainPath, pieces.heldOutPath, runDir), null, 2)}\n`;
  const isReused = options.reuseRun && (await readFile(runConfigPath, 'utf8').catch(() => '')) === runConfigText && existsSync(join(runDir, 'eval_results.json'));
  if (isReused) log(`reusing the finished run in ${runDir} (same configuration)`);
  else {
    await rm(runDir, { recursive: true, force: true });
    await writeFile(runConfigPath, runConfigText);
    await runSwarmtune(['run', '--config', runConfigPath], log);
  }

  const metrics = (await readFile(join(runDir, 'metrics.jsonl'), 'utf8')).split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>);
  const evals = metrics.filter((m) => typeof m.eval_loss === 'number');
  const trains = metrics.filter((m) => typeof m.loss === 'number' && typeof m.step === 'number');
  // From the first worker joining to the end of the run (training and both evaluations; start-up excluded).
  const runWallMs = Date.parse(String(metrics[metrics.length - 1].time)) - Date.parse(String(metrics[0].time));
  const weights = await baseWeightsFromFullAdapter(join(runDir, 'adapter'), config);
  const out = resolve(options.outputDir);
  await rm(out, { recursive: true, force: true });
  await writeTrainedHfModel(out, config, weights, tokenizerDir);

  const samples: { prompt: string; text: string }[] = [];
  for (const prompt of options.samplePrompts) {
    const args = ['--prompt', prompt, '--max-new-tokens', String(options.sampleTokens), '--temperature', String(options.sampleTemperature), '--seed', String(options.seed)];
    const { stdout } = await runSwarmtune(['generate', '--model', out, ...args], () => undefined, false);
    samples.push({ prompt, text: stdout.trimEnd() });
    log(`sample: ${stdout.trimEnd()}`);
  }

  let sizeBytes = 0;
  for (const name of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) sizeBytes += (await stat(join(out, name))).size;
  const globalBatch = options.perDeviceBatchSize * options.workers;
  const report: PretrainReport = {
    options,
    config,
    tokenizer: { vocabSize: tok.vocabSize, numMerges: tok.numMerges, sha256: tok.tokenizerJsonSha256, numInputChars: tok.numInputChars },
    data: {
      numTrainDocuments: corpus.train.length,
      numHeldOutDocuments: corpus.heldOut.length,
      train: pieces.train,
      heldOut: pieces.heldOut,
    },
    steps: trains.length > 0 ? Number(trains[trains.length - 1].step) : 0,
    globalBatchSize: globalBatch,
    windowsSeen: options.maxSteps * globalBatch,
    tokensSeen: estimateTokensSeen(pieces.train, options.maxSteps * globalBatch),
    lossCurve: trains.map((m) => ({ step: Number(m.step), loss: Number(m.loss) })),
    initialEvalLoss: evals.length > 1 ? Number(evals[0].eval_loss) : Number.NaN,
    finalEvalLoss: evals.length > 0 ? Number(evals[evals.length - 1].eval_loss) : Number.NaN,
    numEvalPieces: Math.min(options.maxEvalSamples, pieces.heldOut.numPieces),
    runWallMs,
    totalWallMs: performance.now() - started,
    runReused: isReused,
    samples,
    sizeBytes,
  };
  await writeFile(join(out, 'README.md'), modelCardMarkdown(report));
  return report;
}

/** Mean tokens per window (pieces are one window each, BOS and EOS added), times the windows trained on. */
function estimateTokensSeen(train: { numPieces: number; numTokens: number }, windows: number): number {
  return Math.round(((train.numTokens + 2 * train.numPieces) / train.numPieces) * windows);
}

/** The `swarmtune run` configuration of the pre-training run. */
export function pretrainRunConfig(options: PretrainOptions, modelDir: string, trainPath: string, heldOutPath: string, runDir: string): Record<string, unknown> {
  return {
    model: modelDir,
    task: 'causal-lm',
    dataset: `jsonl:${trainPath}`,
    eval_dataset: `jsonl:${heldOutPath}`,
    max_length: options.model.contextLength,
    max_train_samples: -1,
    max_eval_samples: options.maxEvalSamples,
    peft: { method: 'full' },
    workers: options.workers,
    per_device_train_batch_size: options.perDeviceBatchSize,
    per_device_eval_batch_size: 16,
    max_steps: options.maxSteps,
    learning_rate: options.learningRate,
    warmup_ratio: options.warmupRatio,
    weight_decay: options.weightDecay,
    lr_scheduler_type: 'linear',
    max_grad_norm: 1.0,
    seed: options.seed,
    eval_on_start: true,
    save_strategy: 'no',
    logging_steps: 10,
    step_timeout_ms: 600_000,
    output_dir: runDir,
  };
}
