/**
 * `npm run bench:train`: training throughput of one worker process on a fixed workload.
 *
 * Workload: a randomly initialised LLaMA-layout model (4 layers, width 256, 4 heads, 4 kv heads, SwiGLU hidden 688,
 * vocabulary 32,000) built in memory, LoRA r = 8 (alpha 16) on q and v, a 2-label classification head with mean
 * pooling, batches of 16 full sequences of 128 tokens. Runs warm-up steps, then timed `computeGradients` steps.
 *
 * Progress goes to stderr; the LAST stdout line is one JSON object:
 *   { "backend", "simd", "threads", "formulation", "samples_per_s", "tokens_per_s", "step_ms", ... }
 * The process runs with a worker's garbage-collection setting (worker/gc-settings.ts; `heap_growing_percent`
 * says which: `SWARMTUNE_HEAP_GROWING_PERCENT=0` keeps V8's own, to compare).
 *
 * Flags: --backend auto|tensorflow|wasm|cpu (default auto), --steps N (default 5), --warmup N (default 1),
 * --dropout P (LoRA dropout, default 0.05), --naive (also time the textbook formulation: adds `naive_*` fields).
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../shared/random.js';
import { randomBaseWeights } from '../shared/model/random-weights.js';
import type { Formulation } from '../shared/model/ops.js';
import { TaskModel } from '../shared/model/task-model.js';
import type { Batch, LlamaConfig, ModelSpec } from '../shared/model/types.js';
import type { BackendPreference } from '../worker/backend.js';
import { selectBackend } from '../worker/backend.js';
import { applyWorkerGcSettings } from '../worker/gc-settings.js';

const CONFIG: LlamaConfig = {
  vocabSize: 32_000,
  dim: 256,
  nLayers: 4,
  nHeads: 4,
  nKvHeads: 4,
  hiddenDim: 688,
  normEps: 1e-5,
  ropeTheta: 10_000,
  contextLength: 512,
};
const BATCH_SIZE = 16;
const SEQ_LEN = 128;

function log(message: string): void {
  process.stderr.write(`[bench:train] ${message}\n`);
}

function makeBatch(seed: number): Batch {
  const rng = mulberry32(seed);
  const n = BATCH_SIZE * SEQ_LEN;
  return {
    batchSize: BATCH_SIZE,
    seqLen: SEQ_LEN,
    inputIds: Int32Array.from({ length: n }, () => Math.floor(rng() * CONFIG.vocabSize)),
    attentionMask: new Int32Array(n).fill(1),
    labels: Int32Array.from({ length: BATCH_SIZE }, (_, i) => i % 2),
  };
}

interface Timing {
  readonly stepMs: number;
  readonly numTensorsGrowth: number;
  readonly lossPerSample: number;
}

function timeFormulation(formulation: Formulation, spec: ModelSpec, steps: number, warmup: number): Timing {
  const weights = randomBaseWeights(CONFIG, 1);
  const model = TaskModel.create(CONFIG, weights, spec, { formulation });
  model.setTrainable(model.initTrainable(2));
  try {
    const batches = [makeBatch(10), makeBatch(11)];
    for (let i = 0; i < warmup; i++) {
      const t0 = performance.now();
      model.computeGradients(batches[i % 2], { dropoutSeed: i });
      log(`${formulation}: warm-up step ${i + 1}/${warmup}: ${(performance.now() - t0).toFixed(0)} ms`);
    }
    const tensorsBefore = tf.memory().numTensors;
    let total = 0;
    let lossSum = 0;
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      const { stats } = model.computeGradients(batches[i % 2], { dropoutSeed: warmup + i });
      const ms = performance.now() - t0;
      total += ms;
      lossSum += stats.lossSum / stats.numSamples;
      log(`${formulation}: step ${i + 1}/${steps}: ${ms.toFixed(0)} ms (${((BATCH_SIZE * 1000) / ms).toFixed(2)} samples/s)`);
    }
    return { stepMs: total / steps, numTensorsGrowth: tf.memory().numTensors - tensorsBefore, lossPerSample: lossSum / steps };
  } finally {
    model.dispose();
  }
}

async function main(): Promise<void> {
  // This process trains as a worker does, with a worker's garbage-collection setting.
  const heapGrowingPercent = applyWorkerGcSettings();
  const { values } = parseArgs({
    options: {
      backend: { type: 'string', default: 'auto' },
      steps: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      dropout: { type: 'string', default: '0.05' },
      naive: { type: 'boolean', default: false },
    },
  });
  const steps = Math.max(1, Number(values.steps));
  const warmup = Math.max(0, Number(values.warmup));
  const report = await selectBackend(values.backend as BackendPreference);
  log(`backend ${report.name} (simd ${report.simd}, threads ${report.threads})`);
  for (const reason of report.fallbackReasons) log(`  fallback: ${reason}`);
  const spec: ModelSpec = {
    task: 'classification',
    numLabels: 2,
    pooling: 'mean',
    peft: { method: 'lora', r: 8, loraAlpha: 16, loraDropout: Number(values.dropout), targetModules: ['q', 'v'], useRslora: false },
  };
  log(`workload: ${CONFIG.nLayers} layers, dim ${CONFIG.dim}, vocab ${CONFIG.vocabSize}, batch ${BATCH_SIZE} x ${SEQ_LEN} tokens, LoRA r=8 on q,v`);

  const fast = timeFormulation('fast', spec, steps, warmup);
  const result: Record<string, unknown> = {
    backend: report.name,
    simd: report.simd,
    threads: report.threads,
    formulation: 'fast',
    samples_per_s: round((BATCH_SIZE * 1000) / fast.stepMs),
    tokens_per_s: round((BATCH_SIZE * SEQ_LEN * 1000) / fast.stepMs),
    step_ms: round(fast.stepMs),
    steps,
    warmup,
    batch_size: BATCH_SIZE,
    seq_len: SEQ_LEN,
    model: { layers: CONFIG.nLayers, dim: CONFIG.dim, heads: CONFIG.nHeads, kv_heads: CONFIG.nKvHeads, hidden: CONFIG.hiddenDim, vocab: CONFIG.vocabSize },
    lora: spec.peft.method === 'lora' ? { r: 8, alpha: 16, dropout: spec.peft.loraDropout, targets: spec.peft.targetModules } : null,
    loss_per_sample: round(fast.lossPerSample),
    num_tensors_growth: fast.numTensorsGrowth,
    heap_growing_percent: heapGrowingPercent,
  };
  if (values.naive) {
    const naive = timeFormulation('naive', spec, steps, warmup);
    result.naive_samples_per_s = round((BATCH_SIZE * 1000) / naive.stepMs);
    result.naive_step_ms = round(naive.stepMs);
    result.speedup = round(naive.stepMs / fast.stepMs);
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

await main();
