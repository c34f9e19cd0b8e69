/**
 * The pre-training pipeline is reproducible from its seed: the BPE tokenizer trained twice is byte-identical, the
 * random initial model written twice is byte-identical, and a few data-parallel pre-training steps (causal-lm,
 * `peft.method: full`, 2 workers over loopback WebSockets) run twice give the same loss curve within float
 * tolerance; another seed gives another curve.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PRETRAIN_OPTIONS, pretrainRunConfig, type PretrainOptions } from '../../coordinator/pretrain-pipeline.js';
import { compileConfig } from '../../shared/config.js';
import { loadPretrainingCorpus } from '../../shared/data/pretraining-corpus.js';
import { cachedCorpusPieces } from '../../shared/pretrain/corpus-pieces.js';
import { writeRandomHfModel } from '../../shared/pretrain/hf-model-files.js';
import { loadBpeTokenizerDir } from '../../shared/tokenizer/bpe-tokenizer-json.js';
import { runBpeTrainJob } from '../../shared/tokenizer/bpe-train-job.js';
import { selectBackend, type BackendReport } from '../../worker/backend.js';
import { runWithInProcessWorkers } from '../helpers/in-process-workers.js';

const dir = mkdtempSync(join(tmpdir(), 'swarmtune-pretrain-'));
const TINY = { dim: 32, nLayers: 2, nHeads: 2, nKvHeads: 1, hiddenDim: 64, normEps: 1e-5, ropeTheta: 10000, contextLength: 48 };
const options: PretrainOptions = { ...DEFAULT_PRETRAIN_OPTIONS, model: TINY, sources: ['moby-dick'], vocabSize: 320, maxSteps: 3, perDeviceBatchSize: 2, maxEvalSamples: 4, learningRate: 1e-2 };
let backend: BackendReport;
let trainPath: string;
let heldOutPath: string;

const sha = (path: string): string => readFileSync(path).toString('base64');

beforeAll(async () => {
  backend = await selectBackend('auto');
  const job = { corpus: ['moby-dick'] as const, vocabSize: options.vocabSize, maxInputChars: 100_000, seed: 7 };
  await runBpeTrainJob({ ...job, outputDir: join(dir, 'tok-a') });
  await runBpeTrainJob({ ...job, outputDir: join(dir, 'tok-b') });
  const tokenizer = await loadBpeTokenizerDir(join(dir, 'tok-a'));
  const corpus = loadPretrainingCorpus({ sources: ['moby-dick'], seed: 7 });
  const pieces = await cachedCorpusPieces(join(dir, 'cache'), { train: corpus.train.slice(0, 2), heldOut: corpus.heldOut.slice(0, 1) }, tokenizer, TINY.contextLength - 2);
  ({ trainPath, heldOutPath } = pieces);
  for (const name of ['init-a', 'init-b', 'init-c']) {
    await writeRandomHfModel(join(dir, name), { ...TINY, vocabSize: tokenizer.vocabSize }, join(dir, 'tok-a'), name === 'init-c' ? 8 : 7);
  }
}, 60_000);

async function pretrainSteps(model: string, seed: number, tag: string): Promise<number[]> {
  const raw = pretrainRunConfig({ ...options, seed }, join(dir, model), trainPath, heldOutPath, join(dir, `run-${tag}`));
  const config = compileConfig({ ...raw, eval_on_start: false, logging_steps: 1 });
  const { result } = await runWithInProcessWorkers(config, 2, backend);
  expect(result.steps).toBe(options.maxSteps);
  return [...result.stepLosses, result.evalLoss];
}

describe('pre-training reproducibility', () => {
  it('the tokenizer trained twice from the same text and seed is byte-identical', () => {
    expect(sha(join(dir, 'tok-a', 'tokenizer.json'))).toBe(sha(join(dir, 'tok-b', 'tokenizer.json')));
    expect(sha(join(dir, 'tok-a', 'tokenizer_config.json'))).toBe(sha(join(dir, 'tok-b', 'tokenizer_config.json')));
    expect(JSON.parse(readFileSync(join(dir, 'tok-a', 'tokenizer.json'), 'utf8')).model.merges.length).toBeGreaterThan(0);
  });

  it('the random initial model is byte-identical for a seed, and differs for another', () => {
    expect(sha(join(dir, 'init-a', 'model.safetensors'))).toBe(sha(join(dir, 'init-b', 'model.safetensors')));
    expect(sha(join(dir, 'init-a', 'model.safetensors'))).not.toBe(sha(join(dir, 'init-c', 'model.safetensors')));
  });

  it('a few pre-training steps twice with the same seed give the same loss curve; another seed another curve', async () => {
    const first = await pretrainSteps('init-a', 7, 'a');
    const second = await pretrainSteps('init-b', 7, 'b');
    const other = await pretrainSteps('init-c', 8, 'c');
    expect(first.every(Number.isFinite)).toBe(true);
    first.forEach((loss, i) => expect(Math.abs(loss - second[i])).toBeLessThan(1e-5 * Math.abs(loss)));
    expect(Math.max(...first.map((loss, i) => Math.abs(loss - other[i])))).toBeGreaterThan(1e-3);
    // From random weights the loss starts near the uniform rate ln(vocab).
    expect(Math.abs(first[0] - Math.log(options.vocabSize))).toBeLessThan(0.5);
  }, 60_000);
});
