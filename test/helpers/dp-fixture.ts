/**
 * A small data-parallel fine-tuning setup for integration tests: a random GGUF model and a labelled JSONL file
 * on disk, a config for N workers, and the single-process reference trainer the distributed runs must equal.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileConfig, type RunConfig } from '../../shared/config.js';
import { batchIndices, collateBatch } from '../../shared/data/index.js';
import { buildTrainableModel } from '../../shared/model/build-trainable-model.js';
import { maskedIfMlm } from '../../shared/model/mlm-plan.js';
import { createTrainableState, prepareRun, trainingPlan } from '../../coordinator/run.js';
import { sumContributions } from '../../coordinator/aggregation.js';
import { writeRandomLlamaGguf } from './random-gguf.js';

/** The `peft` block of each method beside LoRA, small enough for the fixture's models. */
export const NON_LORA_METHOD_PEFT: Readonly<Record<string, Record<string, unknown>>> = {
  adapter: { method: 'adapter', adapter_size: 8 },
  prompt: { method: 'prompt', num_virtual_tokens: 4 },
  feature: { method: 'feature', trainable_top_layers: 1 },
  full: { method: 'full' },
};

/** Files of the fixture. */
export interface DpFixture {
  readonly dir: string;
  readonly modelPath: string;
  readonly dataPath: string;
}

/** Writes a 2-layer random model and 46 labelled examples into a fresh temporary folder. */
export async function makeDpFixture(): Promise<DpFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'swarmtune-dp-'));
  const modelPath = join(dir, 'model.gguf');
  const dataPath = join(dir, 'train.jsonl');
  await writeRandomLlamaGguf(modelPath, { seed: 5, dim: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, hiddenDim: 64, vocabSize: 400 });
  const words = ['free', 'money', 'meeting', 'tomorrow', 'offer', 'project', 'click', 'report', 'win', 'lunch', 'prize', 'notes'];
  const lines = Array.from({ length: 46 }, (_, i) => {
    const text = Array.from({ length: 3 + (i % 7) }, (_, j) => words[(i * 5 + j * 3) % words.length]).join(' ');
    return JSON.stringify({ text, label: i % 3 === 0 ? 'spam' : 'ham' });
  });
  writeFileSync(dataPath, `${lines.join('\n')}\n`);
  return { dir, modelPath, dataPath };
}

/** A config of `steps` optimizer steps with `numWorkers` workers of `perWorkerBatch` examples each. */
export function dpConfig(fixture: DpFixture, numWorkers: number, overrides: Record<string, unknown> = {}): RunConfig {
  return compileConfig({
    model: fixture.modelPath,
    dataset: `jsonl:${fixture.dataPath}`,
    eval_split_size: 10,
    max_train_samples: -1,
    max_eval_samples: -1,
    max_length: 20,
    per_device_train_batch_size: 3,
    workers: numWorkers,
    max_steps: 5,
    learning_rate: 0.02,
    warmup_steps: 1,
    weight_decay: 0.01,
    max_grad_norm: 0.5,
    peft: { r: 4, lora_alpha: 8, target_modules: ['q', 'v', 'down'] },
    seed: 11,
    logging_steps: 1,
    output_dir: join(fixture.dir, `run-${numWorkers}-${Math.random().toString(36).slice(2)}`),
    ...overrides,
  });
}

/** One process, the whole global batch at once, the same optimizer code: what a distributed run must equal. */
export async function referenceRun(config: RunConfig): Promise<{ losses: number[]; params: Map<string, Float32Array> }> {
  const prepared = await prepareRun(config);
  const { globalBatchSize, totalSteps } = trainingPlan(config, prepared.train.length);
  const state = createTrainableState(config, prepared, totalSteps);
  const model = buildTrainableModel(prepared.loaded, prepared.modelSpec);
  const losses: number[] = [];
  try {
    for (let epoch = 0; state.step < totalSteps; epoch++) {
      for (const globalBatch of batchIndices(prepared.train.length, { batchSize: globalBatchSize, seed: config.seed, epoch })) {
        if (state.step >= totalSteps) break;
        model.setTrainable(state.paramsFloat32());
        const collated = collateBatch(globalBatch.map((i) => prepared.train[i]), { task: config.task, padId: prepared.loaded.tokenizer.padId });
        const batch = maskedIfMlm(collated, prepared.mlm, globalBatch, state.step);
        const contribution = model.computeGradients(batch);
        losses.push(state.applyGradients(sumContributions([contribution], state.manifest)).loss);
      }
    }
  } finally {
    model.dispose();
  }
  return { losses, params: state.paramsFloat32() };
}

/** max |a − b| / max |b| over every tensor: a scale-free distance between two parameter sets. */
export function maxRelativeDifference(actual: Map<string, Float32Array>, expected: Map<string, Float32Array>): number {
  let maxDiff = 0;
  let maxRef = 0;
  for (const [name, ref] of expected) {
    const got = actual.get(name);
    if (!got) throw new Error(`maxRelativeDifference: "${name}" is missing`);
    for (let i = 0; i < ref.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(got[i] - ref[i]));
      maxRef = Math.max(maxRef, Math.abs(ref[i]));
    }
  }
  return maxDiff / maxRef;
}
