/**
 * The proof that distribution is correct: synchronous data-parallel training with N workers over real
 * WebSockets on loopback, each with per-worker batch b, equals one in-process trainer with batch N·b.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileConfig, type RunConfig } from '../../shared/config.js';
import { batchIndices, collateBatch } from '../../shared/data/index.js';
import { TaskModel } from '../../shared/model/task-model.js';
import { createTrainableState, prepareRun, runCoordinator, trainingPlan } from '../../coordinator/run.js';
import { sumContributions } from '../../coordinator/aggregation.js';
import { selectBackend, type BackendReport } from '../../worker/backend.js';
import { connectWithRetry } from '../../worker/transport-ws.js';
import { runWorkerSession } from '../../worker/worker-runtime.js';
import { writeRandomLlamaGguf } from '../helpers/random-gguf.js';

const STEPS = 5;
const PER_WORKER_BATCH = 3;
let dir: string;
let backend: BackendReport;

function configFor(numWorkers: number): RunConfig {
  return compileConfig({
    model: join(dir, 'model.gguf'),
    dataset: `jsonl:${join(dir, 'train.jsonl')}`,
    eval_split_size: 10,
    max_train_samples: -1,
    max_eval_samples: -1,
    max_length: 20,
    per_device_train_batch_size: PER_WORKER_BATCH,
    workers: numWorkers,
    max_steps: STEPS,
    learning_rate: 0.02,
    warmup_steps: 1,
    weight_decay: 0.01,
    max_grad_norm: 0.5,
    peft: { r: 4, lora_alpha: 8, target_modules: ['q', 'v', 'down'] },
    seed: 11,
    logging_steps: 1,
    output_dir: join(dir, `run-${numWorkers}`),
  });
}

/** One process, global batch N·b, the same optimizer code: the reference. */
async function referenceRun(config: RunConfig): Promise<{ losses: number[]; params: Map<string, Float32Array> }> {
  const prepared = await prepareRun(config);
  const { globalBatchSize, totalSteps } = trainingPlan(config, prepared.train.length);
  const state = createTrainableState(config, prepared, totalSteps);
  const model = TaskModel.create(prepared.loaded.config, prepared.loaded.weights, prepared.modelSpec);
  const losses: number[] = [];
  try {
    for (let epoch = 0; state.step < totalSteps; epoch++) {
      for (const globalBatch of batchIndices(prepared.train.length, { batchSize: globalBatchSize, seed: config.seed, epoch })) {
        if (state.step >= totalSteps) break;
        model.setTrainable(state.paramsFloat32());
        const batch = collateBatch(globalBatch.map((i) => prepared.train[i]), { task: config.task, padId: prepared.loaded.tokenizer.padId });
        const contribution = model.computeGradients(batch);
        losses.push(state.applyGradients(sumContributions([contribution], state.manifest)).loss);
      }
    }
  } finally {
    model.dispose();
  }
  return { losses, params: state.paramsFloat32() };
}

function maxRelativeDifference(actual: Map<string, Float32Array>, expected: Map<string, Float32Array>): number {
  let maxDiff = 0;
  let maxRef = 0;
  for (const [name, ref] of expected) {
    const got = actual.get(name)!;
    for (let i = 0; i < ref.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(got[i] - ref[i]));
      maxRef = Math.max(maxRef, Math.abs(ref[i]));
    }
  }
  return maxDiff / maxRef;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'swarmtune-dp-'));
  backend = await selectBackend('auto');
  await writeRandomLlamaGguf(join(dir, 'model.gguf'), { seed: 5, dim: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, hiddenDim: 64, vocabSize: 400 });
  const words = ['free', 'money', 'meeting', 'tomorrow', 'offer', 'project', 'click', 'report', 'win', 'lunch', 'prize', 'notes'];
  const lines = Array.from({ length: 46 }, (_, i) => {
    const text = Array.from({ length: 3 + (i % 7) }, (_, j) => words[(i * 5 + j * 3) % words.length]).join(' ');
    return JSON.stringify({ text, label: i % 3 === 0 ? 'spam' : 'ham' });
  });
  writeFileSync(join(dir, 'train.jsonl'), `${lines.join('\n')}\n`);
});

afterAll(() => undefined);

describe('synchronous data-parallel over WebSockets', () => {
  it.each([1, 2, 3])('%i worker(s) with batch b equal one process with batch N·b after 5 steps', async (numWorkers) => {
    const config = configFor(numWorkers);
    const sessions: Promise<unknown>[] = [];
    const result = await runCoordinator(config, {
      log: () => undefined,
      onListening: (url) => {
        for (let i = 0; i < numWorkers; i++) {
          sessions.push(connectWithRetry(url).then((transport) => runWorkerSession({ transport, backend, log: () => undefined })));
        }
      },
    });
    const outcomes = await Promise.all(sessions);
    expect(outcomes.every((o) => (o as { kind: string }).kind === 'stopped')).toBe(true);

    const reference = await referenceRun(config);
    expect(result.steps).toBe(STEPS);
    expect(result.stepLosses).toHaveLength(STEPS);
    result.stepLosses.forEach((loss, i) => expect(Math.abs(loss - reference.losses[i]) / reference.losses[i]).toBeLessThan(1e-5));
    // The weights must have moved (a run that never stepped would match trivially).
    const initial = (await prepareRun(config)).initial;
    expect(maxRelativeDifference(reference.params, initial)).toBeGreaterThan(1e-3);
    expect(maxRelativeDifference(result.params, reference.params)).toBeLessThan(1e-5);
  });
});
