/**
 * `npm run pretrain`: the embedded default model made by swarmtune itself. In order: a byte-level BPE tokenizer
 * learnt on the corpus's training documents (and a share of the downstream task's training texts); the corpus
 * packed into one-window pieces (cached); a LLaMA model initialised from the seed and written as an HF directory;
 * the general phase, a real `swarmtune run` (causal-lm, `peft.method: full`, data-parallel over local worker
 * processes) from those random weights, evaluated on held-out documents before and after; the domain-adaptive
 * phase, a second run continuing from the general model on the task's training texts (its evaluation texts held
 * out); the trained weights written as an HF directory with a model card.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { loadPretrainingCorpus, type PretrainingSource } from '../shared/data/pretraining-corpus.js';
import type { LlamaConfig } from '../shared/model/types.js';
import { cachedCorpusPieces } from '../shared/pretrain/corpus-pieces.js';
import { cachedDomainCorpus, type DomainCorpus } from '../shared/pretrain/domain-corpus.js';
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
   * Keep the finished runs in `workDir` when their configuration files are unchanged (same data, model, steps and
   * seed) and only rewrite the model directory, card and samples. @default false
   */
  readonly reuseRun: boolean;
  /** The domain-adaptive phase after the general one; `maxSteps: 0` skips it. */
  readonly domain: DomainPhaseOptions;
}

/**
 * Domain-adaptive pre-training (DAPT): the general model trained on, as a causal LM, the training texts of the
 * downstream task that `taskConfig` describes (its evaluation texts are held out), and the tokenizer learnt on a
 * share of those texts next to the general corpus.
 */
export interface DomainPhaseOptions {
  /** The downstream task's `swarmtune run` configuration. @default examples/main-job.yaml */
  readonly taskConfig: string;
  /** Optimizer steps of the phase; 0 skips the phase (and keeps the task's text out of the tokenizer). @default 400 */
  readonly maxSteps: number;
  /** @default 3e-3 */
  readonly learningRate: number;
  /** Window length in tokens (the task's `max_length` is the natural choice). @default 128 */
  readonly maxLength: number;
  /** Characters of the task's training texts added to the tokenizer's training text. @default 4,000,000 */
  readonly tokenizerChars: number;
}

/** The defaults: about 25 minutes on an idle 2-core machine. */
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
  maxSteps: 200,
  learningRate: 5e-3,
  warmupRatio: 0.05,
  weightDecay: 0.01,
  maxEvalSamples: 48,
  samplePrompts: ['The', 'It was a', 'The government of the United States'],
  sampleTokens: 40,
  sampleTemperature: 0.7,
  reuseRun: false,
  domain: { taskConfig: 'examples/main-job.yaml', maxSteps: 400, learningRate: 3e-3, maxLength: 128, tokenizerChars: 4_000_000 },
};

/**
 * Runs the pipeline and returns what the card states.
 * @throws what the steps throw: InputFileError for missing corpus packages, OrchestratorError E_INTERNAL when a run fails.
 */
export async function runPretrainPipeline(options: PretrainOptions, log: (line: string) => void): Promise<PretrainReport> {
  const started = performance.now();
  const work = resolve(options.workDir);
  const tokenizerDir = join(work, 'tokenizer');
  await mkdir(work, { recursive: true });
  const isDomainPhase = options.domain.maxSteps > 0;
  const domainCorpus = isDomainPhase ? await cachedDomainCorpus(resolve(options.domain.taskConfig), join(work, 'cache')) : undefined;
  if (domainCorpus) {
    log(`domain: ${domainCorpus.numTrainTexts} training texts of ${domainCorpus.dataset} (${options.domain.taskConfig}); its ${domainCorpus.numHeldOutTexts} evaluation texts held out${domainCorpus.isCached ? ' (cached)' : ''}`);
  }

  log(`tokenizer: byte-level BPE, vocabulary ${options.vocabSize}, on the training documents of ${options.sources.join(', ')}${domainCorpus ? ` and ${options.domain.tokenizerChars.toLocaleString('en-US')} characters of the domain's` : ''}`);
  const tokenizerInputs = domainCorpus ? [await domainTokenizerText(domainCorpus, options.domain.tokenizerChars, join(work, 'cache'))] : [];
  const tok = await runBpeTrainJob({ corpus: options.sources, inputFiles: tokenizerInputs, outputDir: tokenizerDir, vocabSize: options.vocabSize, seed: options.seed, heldOutFraction: options.heldOutFraction });
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
  const initDir = join(work, 'init');
  await writeRandomHfModel(initDir, config, tokenizerDir, options.seed);
  log(`initial model: ${initDir} (seed ${options.seed})`);

  const generalConfig = pretrainRunConfig(options, initDir, pieces.trainPath, pieces.heldOutPath, join(work, 'run'));
  const general = await runPhase('general', generalConfig, join(work, 'pretrain-run.json'), options.reuseRun, log);
  const generalWeights = await baseWeightsFromFullAdapter(join(general.runDir, 'adapter'), config);
  let finalWeights = generalWeights;
  let domain: PretrainReport['domain'];
  if (domainCorpus) {
    const generalDir = join(work, 'general');
    await rm(generalDir, { recursive: true, force: true });
    await writeTrainedHfModel(generalDir, config, generalWeights, tokenizerDir);
    const domainConfig = domainRunConfig(options, generalDir, domainCorpus, join(work, 'domain-run'));
    const phase = await runPhase('domain-adaptive', domainConfig, join(work, 'domain-run.json'), options.reuseRun, log);
    finalWeights = await baseWeightsFromFullAdapter(join(phase.runDir, 'adapter'), config);
    domain = { ...phase.report, corpus: domainCorpus, windowTokens: options.domain.maxLength };
  }

  const out = resolve(options.outputDir);
  await rm(out, { recursive: true, force: true });
  await writeTrainedHfModel(out, config, finalWeights, tokenizerDir);
  // The general held-out text once more, on the final model: what domain adaptation cost in general English.
  const finalGeneralEvalLoss = domain ? await heldOutLoss(out, join(work, 'pretrain-run.json')) : general.report.finalEvalLoss;

  const samples: { prompt: string; text: string }[] = [];
  for (const prompt of options.samplePrompts) {
    const args = ['--prompt', prompt, '--max-new-tokens', String(options.sampleTokens), '--temperature', String(options.sampleTemperature), '--seed', String(options.seed)];
    const { stdout } = await runSwarmtune(['generate', '--model', out, ...args], () => undefined, false);
    samples.push({ prompt, text: stdout.trimEnd() });
    log(`sample: ${stdout.trimEnd()}`);
  }

  let sizeBytes = 0;
  for (const name of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) sizeBytes += (await stat(join(out, name))).size;
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
    ...general.report,
    globalBatchSize: options.perDeviceBatchSize * options.workers,
    windowsSeen: options.maxSteps * options.perDeviceBatchSize * options.workers,
    tokensSeen: estimateTokensSeen(pieces.train, options.maxSteps * options.perDeviceBatchSize * options.workers),
    numEvalPieces: Math.min(options.maxEvalSamples, pieces.heldOut.numPieces),
    finalGeneralEvalLoss,
    domain,
    totalWallMs: performance.now() - started,
    runReused: general.isReused,
    samples,
    sizeBytes,
    isTied: !finalWeights.has('output.weight') || finalWeights.get('output.weight') === finalWeights.get('token_embd.weight'),
  };
  await writeFile(join(out, 'README.md'), modelCardMarkdown(report));
  return report;
}

/** What one `swarmtune run` of the pipeline measured. */
interface PhaseResult {
  readonly runDir: string;
  readonly isReused: boolean;
  readonly report: Pick<PretrainReport, 'steps' | 'lossCurve' | 'initialEvalLoss' | 'finalEvalLoss' | 'runWallMs'>;
}

/** Runs (or, with `reuseRun` and an unchanged configuration file, reuses) one phase's `swarmtune run`. */
async function runPhase(name: string, runConfig: Record<string, unknown>, configPath: string, reuseRun: boolean, log: (line: string) => void): Promise<PhaseResult> {
  const runDir = String(runConfig.output_dir);
  const configText = `${JSON.stringify(runConfig, null, 2)}\n`;
  const isReused = reuseRun && (await readFile(configPath, 'utf8').catch(() => '')) === configText && existsSync(join(runDir, 'eval_results.json'));
  if (isReused) log(`${name} phase: reusing the finished run in ${runDir} (same configuration)`);
  else {
    log(`${name} phase: swarmtune run --config ${configPath}`);
    await rm(runDir, { recursive: true, force: true });
    await writeFile(configPath, configText);
    await runSwarmtune(['run', '--config', configPath], log);
  }
  const metrics = (await readFile(join(runDir, 'metrics.jsonl'), 'utf8')).split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>);
  const evals = metrics.filter((m) => typeof m.eval_loss === 'number');
  const trains = metrics.filter((m) => typeof m.loss === 'number' && typeof m.step === 'number');
  return {
    runDir,
    isReused,
    report: {
      steps: trains.length > 0 ? Number(trains[trains.length - 1].step) : 0,
      lossCurve: trains.map((m) => ({ step: Number(m.step), loss: Number(m.loss) })),
      initialEvalLoss: evals.length > 1 ? Number(evals[0].eval_loss) : Number.NaN,
      finalEvalLoss: evals.length > 0 ? Number(evals[evals.length - 1].eval_loss) : Number.NaN,
      // From the first worker joining to the end of the run (training and both evaluations; start-up excluded).
      runWallMs: Date.parse(String(metrics[metrics.length - 1].time)) - Date.parse(String(metrics[0].time)),
    },
  };
}

/** `swarmtune eval` of `modelDir` on the held-out data of the run configuration at `runConfigPath`. */
async function heldOutLoss(modelDir: string, runConfigPath: string): Promise<number> {
  const { stdout } = await runSwarmtune(['eval', '--config', runConfigPath, '--model', modelDir], () => undefined, false);
  const lines = stdout.trim().split('\n');
  return Number((JSON.parse(lines[lines.length - 1]) as { eval_loss: number }).eval_loss);
}

/**
 * The tokenizer's share of the domain: a plain-text file of the first training texts (in the task's seeded order)
 * up to `maxChars` characters, one paragraph each.
 */
async function domainTokenizerText(corpus: DomainCorpus, maxChars: number, cacheDir: string): Promise<string> {
  const path = join(cacheDir, `${basename(corpus.trainPath, '.jsonl')}-${maxChars}.txt`);
  if (existsSync(path)) return path;
  const texts: string[] = [];
  let numChars = 0;
  for (const line of (await readFile(corpus.trainPath, 'utf8')).split('\n')) {
    if (line.length === 0 || numChars >= maxChars) continue;
    const { text } = JSON.parse(line) as { text: string };
    texts.push(text);
    numChars += text.length;
  }
  await writeFile(`${path}.tmp`, texts.join('\n\n'));
  await rename(`${path}.tmp`, path);
  return path;
}

/** Mean tokens per window (pieces are one window each, BOS and EOS added), times the windows trained on. */
function estimateTokensSeen(train: { numPieces: number; numTokens: number }, windows: number): number {
  return Math.round(((train.numTokens + 2 * train.numPieces) / train.numPieces) * windows);
}

/** The `swarmtune run` configuration of the general pre-training run. */
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

/** The `swarmtune run` configuration of the domain-adaptive run: the general model on the task's training texts. */
export function domainRunConfig(options: PretrainOptions, generalModelDir: string, corpus: DomainCorpus, runDir: string): Record<string, unknown> {
  return {
    ...pretrainRunConfig(options, generalModelDir, corpus.trainPath, corpus.heldOutPath, runDir),
    max_length: options.domain.maxLength,
    max_steps: options.domain.maxSteps,
    learning_rate: options.domain.learningRate,
  };
}
