/**
 * Per-round memory of a federated run with the coordinator and two workers in this process (real loopback
 * WebSockets), for the S20 leak test and `npm run soak`: `tf.memory().numTensors` (every tensor either side
 * holds) and RSS and V8 heap after a full garbage collection, sampled as each round's metrics record is written.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import * as tf from '@tensorflow/tfjs';
import { runCoordinator } from '../../coordinator/run.js';
import type { BackendReport } from '../../worker/backend.js';
import { connectWithRetry } from '../../worker/transport-ws.js';
import { runWorkerSession, type WorkerOutcome } from '../../worker/worker-runtime.js';
import { dpConfig, type DpFixture } from './dp-fixture.js';

/** One sample per round (index 0 = round 1): numTensors every round; RSS and heap bytes after a full GC on every `gcEveryRounds`-th round, NaN on the others. */
export interface RoundMemory {
  readonly numTensors: number[];
  readonly rssBytes: number[];
  readonly heapUsedBytes: number[];
}

/** `global.gc`, made available without `--expose-gc` (RSS between collections is GC timing, not leaks). */
function fullGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/**
 * Runs `numRounds` federated rounds (2 clients, 2 local steps each) and samples memory after every round.
 * @param gcEveryRounds rounds between full collections and RSS samples (a collection costs ~0.5 s here). @default 5
 */
export async function measureRoundMemory(fixture: DpFixture, backend: BackendReport, numRounds: number, gcEveryRounds = 5): Promise<RoundMemory> {
  // max_length 4 truncates every example (3+ words) to one sequence length: the model caches RoPE tables per
  // sequence length (2 tensors each, bounded by max_length), which would otherwise read as growth until every length was seen.
  const config = dpConfig(fixture, 2, {
    mode: 'federated',
    num_rounds: numRounds,
    max_length: 4,
    eval_every_rounds: 0,
    local_steps: 2,
    min_fit_clients: 2,
    min_available_clients: 2,
    round_timeout: 60,
  });
  const gc = fullGc();
  const memory: RoundMemory = { numTensors: [], rssBytes: [], heapUsedBytes: [] };
  const sessions: Promise<WorkerOutcome>[] = [];
  await runCoordinator(config, {
    log: () => undefined,
    onMetrics: (record) => {
      if (record.event !== 'round') return;
      memory.numTensors.push(tf.memory().numTensors);
      const isSampled = memory.numTensors.length % gcEveryRounds === 0;
      if (isSampled) gc();
      const usage = process.memoryUsage();
      memory.rssBytes.push(isSampled ? usage.rss : Number.NaN);
      memory.heapUsedBytes.push(isSampled ? usage.heapUsed : Number.NaN);
    },
    onListening: (url) => {
      for (let i = 0; i < 2; i++) sessions.push(connectWithRetry(url).then((transport) => runWorkerSession({ transport, backend, log: () => undefined })));
    },
  });
  await Promise.all(sessions);
  return memory;
}
