/**
 * `npm run bench:dp`: data-parallel scaling. The same fine-tune (the bench:train workload: a random LLaMA-layout
 * model of 4 layers, width 256, 4 heads, vocabulary 32,000; sequences of 128 tokens; LoRA r = 8 on q and v; a
 * 2-label head) runs through the real coordinator with 1 and then 2 local worker processes (one per core), each
 * with the same per-worker batch (weak scaling, as DDP is usually measured). Throughput counts samples of the
 * timed steps only (after warm-up), coordinator round trips included.
 *
 * For scale, the same run also measures what this machine gives two independent processes: `bench:train` alone,
 * then two copies at once (no coordinator, no synchronisation). `raw_scaling` is their combined throughput over the
 * single one, the ceiling that memory bandwidth and neighbours leave; `efficiency` = scaling / raw_scaling.
 *
 * Progress goes to stderr; the LAST stdout line is one JSON object:
 *   { "samples_per_s_1", "samples_per_s_2", "scaling", "raw_scaling", "efficiency", "backend", ... }
 *
 * Flags: --steps N timed steps (default 5), --warmup N (default 2), --batch N per-worker batch (default 16),
 * --backend auto|wasm|cpu (default auto).
 */
// First: this process runs the coordinator (workers and baselines are child processes), with its GC setting.
import './coordinator-gc-first.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TSX_IMPORT_URL } from '../shared/tsx-loader.js';
import { compileConfig } from '../shared/config.js';
import { mulberry32 } from '../shared/random.js';
import { runCoordinator } from '../coordinator/run.js';
import { startLocalWorkers, type LocalWorkers } from '../coordinator/local-workers.js';
import type { MetricsRecord } from '../coordinator/metrics.js';
import { writeRandomLlamaGguf } from '../test/helpers/random-gguf.js';

const SEQ_LEN = 128;
const { values: flags } = parseArgs({
  options: {
    steps: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    batch: { type: 'string', default: '16' },
    backend: { type: 'string', default: 'auto' },
  },
});
const timedSteps = Number(flags.steps);
const warmupSteps = Number(flags.warmup);
const perDeviceBatch = Number(flags.batch);

function log(message: string): void {
  process.stderr.write(`[bench:dp] ${message}\n`);
}

/** Texts long enough that every example fills the 128-token window. */
function writeDataset(path: string, count: number): void {
  const rng = mulberry32(1);
  const words = ['the', 'offer', 'meeting', 'free', 'report', 'money', 'project', 'click', 'friday', 'prize', 'budget', 'team'];
  const lines = Array.from({ length: count }, (_, i) => {
    const text = Array.from({ length: 200 }, () => words[Math.floor(rng() * words.length)]).join(' ');
    return JSON.stringify({ text, label: i % 2 === 0 ? 'ham' : 'spam' });
  });
  writeFileSync(path, `${lines.join('\n')}\n`);
}

async function measure(dir: string, numWorkers: number): Promise<{ samplesPerS: number; backend: string }> {
  const totalSteps = warmupSteps + timedSteps;
  const config = compileConfig({
    model: join(dir, 'model.gguf'),
    dataset: `jsonl:${join(dir, 'data.jsonl')}`,
    eval_split_size: 4,
    max_eval_samples: 4,
    max_train_samples: -1,
    max_length: SEQ_LEN,
    per_device_train_batch_size: perDeviceBatch,
    workers: numWorkers,
    max_steps: totalSteps,
    logging_steps: 1,
    peft: { r: 8, lora_alpha: 16, target_modules: ['q', 'v'] },
    backend: flags.backend,
    output_dir: join(dir, `run-${numWorkers}`),
  });
  let workers: LocalWorkers | undefined;
  const trainRecords: MetricsRecord[] = [];
  const backends: string[] = [];
  await runCoordinator(config, {
    log: (line) => {
      if (line.includes('joined')) backends.push(/\((\w+),/.exec(line)?.[1] ?? '?');
    },
    onListening: (url) => {
      workers = startLocalWorkers(numWorkers, url, ['--backend', config.backend], () => undefined);
    },
    onMetrics: (record) => {
      if (record.event !== 'train') return;
      trainRecords.push(record);
      log(`${numWorkers} worker(s): step ${record.step}/${totalSteps}: ${(record.samples_per_s as number).toFixed(2)} samples/s`);
    },
  });
  await workers?.stop();
  // Each record covers one step (logging_steps 1): throughput = samples / time over the timed steps.
  const timed = trainRecords.slice(warmupSteps);
  const samples = timed.length * perDeviceBatch * numWorkers;
  const seconds = timed.reduce((s, r) => s + (perDeviceBatch * numWorkers) / (r.samples_per_s as number), 0);
  return { samplesPerS: samples / seconds, backend: backends[0] ?? '?' };
}

/** samples/s of `count` bench:train processes started together, one number per process. */
async function independentThroughput(count: number): Promise<number[]> {
  const script = fileURLToPath(new URL('./bench-train.ts', import.meta.url));
  const runs = Array.from({ length: count }, () =>
    new Promise<number>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', TSX_IMPORT_URL, script, '--steps', String(timedSteps), '--dropout', '0', '--backend', flags.backend], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.on('exit', (code) => {
        if (code !== 0) return reject(new Error(`bench-train exited with ${code}`));
        resolve((JSON.parse(out.trim().split('\n').at(-1)!) as { samples_per_s: number }).samples_per_s);
      });
    }),
  );
  return Promise.all(runs);
}

const dir = mkdtempSync(join(tmpdir(), 'swarmtune-bench-dp-'));
try {
  log('writing the random 4-layer, width-256, vocab-32000 model and the dataset');
  await writeRandomLlamaGguf(join(dir, 'model.gguf'), { seed: 1, dim: 256, nLayers: 4, nHeads: 4, nKvHeads: 4, hiddenDim: 688, vocabSize: 32_000, contextLength: 512 });
  writeDataset(join(dir, 'data.jsonl'), 2 * perDeviceBatch * (warmupSteps + timedSteps) + 8);
  const one = await measure(dir, 1);
  const two = await measure(dir, 2);
  log('independent processes: 1, then 2 at once');
  const [alone] = await independentThroughput(1);
  const together = (await independentThroughput(2)).reduce((a, b) => a + b, 0);
  const scaling = two.samplesPerS / one.samplesPerS;
  const rawScaling = together / alone;
  console.log(
    JSON.stringify({
      samples_per_s_1: Number(one.samplesPerS.toFixed(3)),
      samples_per_s_2: Number(two.samplesPerS.toFixed(3)),
      scaling: Number(scaling.toFixed(3)),
      raw_scaling: Number(rawScaling.toFixed(3)),
      efficiency: Number((scaling / rawScaling).toFixed(3)),
      backend: one.backend,
      per_device_batch: perDeviceBatch,
      seq_len: SEQ_LEN,
      timed_steps: timedSteps,
      warmup_steps: warmupSteps,
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
