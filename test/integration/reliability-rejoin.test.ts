/**
 * Workers that reconnect and rejoin (RELIABILITY.md S3 rejoin, S4): a data-parallel run with an in-process
 * survivor dialled directly and a real `swarmtune worker` process dialled through the TCP fault proxy
 * (test/helpers/fault-proxy.ts). A partition is injected on the proxied link before step FAULT_STEP; the worker's
 * own ping watchdog (`--ping-timeout-ms`) must fire, the worker must dial again (the proxy passes new links: the
 * partition has healed for them), rejoin under the id the coordinator assigned, keep its loaded model, and take
 * part again with the fresh global parameters: the run ends where the single-process reference ends, no reply
 * to a timed-out request is counted (staleReplies 0) and exactly one slice (the one cut off) is reassigned.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareRun, trainingPlan, createTrainableState } from '../../coordinator/run.js';
import { WorkerRegistry } from '../../coordinator/registry.js';
import { DataParallelTrainer, type SliceFailure } from '../../coordinator/data-parallel.js';
import { startWsServer } from '../../coordinator/transport-ws.js';
import { runDataSettings, batchIndices } from '../../shared/data/index.js';
import type { RunConfig } from '../../shared/config.js';
import { startLocalWorkers, type LocalWorkers } from '../../coordinator/local-workers.js';
import { selectBackend, type BackendReport } from '../../worker/backend.js';
import { connectWs } from '../../worker/transport-ws.js';
import { runWorkerSession, type WorkerOutcome } from '../../worker/worker-runtime.js';
import { dpConfig, makeDpFixture, maxRelativeDifference, referenceRun, type DpFixture } from '../helpers/dp-fixture.js';
import { startFaultProxy, type ProxyLink } from '../helpers/fault-proxy.js';

const PING_INTERVAL_MS = 200;
/** The coordinator's pong deadline: long, so that a first TF.js step in a fresh process is not mistaken for a loss. */
const PONG_TIMEOUT_MS = 1_500;
/** The worker's own watchdog: no ping or frame for this long and it drops the link and rejoins. */
const WORKER_PING_TIMEOUT_MS = 1_000;
/** Ping timeout + first jittered backoff (≤ 200 ms) + dial + hello/welcome/ready + slack for this loaded 2-core host. */
const REJOIN_BOUND_MS = WORKER_PING_TIMEOUT_MS + 200 + 8_000;
const STEPS = 7;
const FAULT_STEP = 2;

interface RejoinResult {
  readonly params: Map<string, Float32Array>;
  readonly failures: (SliceFailure & { step: number })[];
  readonly proxiedWorkerId: string;
  /** The worker id of each `joined` event, in order. */
  readonly joinedIds: string[];
  /** ms from the fault to the proxied worker's second `joined`. */
  readonly rejoinMs: number;
  /** Steps the coordinator finished between the fault and the rejoin. */
  readonly stepsMissed: number;
  readonly staleReplies: number;
  /** Bytes the proxied worker sent on its second link during the steps after it rejoined. */
  readonly uploadedAfterRejoin: number;
  readonly firstLink: ProxyLink;
  readonly workerLog: string[];
  readonly workerExitCode: number | null;
}

async function rejoinRun(config: RunConfig, inject: (link: ProxyLink) => void): Promise<RejoinResult> {
  const prepared = await prepareRun(config);
  const { globalBatchSize, totalSteps } = trainingPlan(config, prepared.train.length);
  const state = createTrainableState(config, prepared, totalSteps);
  const { loaded, modelSpec, manifest } = prepared;
  const registry = new WorkerRegistry({
    runId: 'run-rejoin',
    model: { path: loaded.path, sha256: loaded.sha256, format: 'gguf' },
    modelSpec,
    manifest,
    settings: {
      mode: config.mode,
      data_delivery: config.data_delivery,
      data: runDataSettings(config),
      train_sha256: prepared.trainSha256,
      task: config.task,
      max_length: config.max_length,
      grads_codec: config.grads_codec,
      grads_codec_overrides: config.grads_codec_overrides,
      error_feedback: config.error_feedback,
      chunk_size_bytes: config.chunk_size_bytes,
    },
  });
  const server = await startWsServer({ port: 0, pingIntervalMs: PING_INTERVAL_MS, pongTimeoutMs: PONG_TIMEOUT_MS, onConnection: (c) => void registry.admit(c) });
  const proxy = await startFaultProxy({ targetPort: server.port });
  const joined: { id: string; at: number; step: number }[] = [];
  const joinWaiters: (() => void)[] = [];
  registry.subscribe((event) => {
    if (event.type !== 'joined') return;
    joined.push({ id: event.session.id, at: performance.now(), step: state.step });
    for (const wake of joinWaiters.splice(0)) wake();
  });
  const joinedCount = (id: string) => joined.filter((j) => j.id === id).length;
  const waitForJoin = (id: string, count: number, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker ${id} did not rejoin within ${timeoutMs} ms; worker said:\n${workerLog.slice(-20).join('\n')}`)), timeoutMs);
      const check = () => {
        if (joinedCount(id) >= count) {
          clearTimeout(timer);
          resolve();
        } else joinWaiters.push(check);
      };
      check();
    });

  let worker: LocalWorkers | undefined;
  let survivor: Promise<WorkerOutcome> | undefined;
  const workerLog: string[] = [];
  try {
    survivor = runWorkerSession({ transport: await connectWs(server.url), backend, modelPath: config.model, log: () => undefined });
    await registry.waitForReady(1, 60_000);
    worker = startLocalWorkers(1, proxy.url, ['--backend', 'auto', '--ping-timeout-ms', String(WORKER_PING_TIMEOUT_MS), '--rejoin-patience-ms', '30000'], (line) => workerLog.push(line));
    await registry.waitForReady(2, 60_000);
    const firstLink = await proxy.link(0);
    const proxiedWorkerId = joined[1].id;

    const failures: (SliceFailure & { step: number })[] = [];
    const trainer = new DataParallelTrainer(registry, state, {
      task: config.task,
      padId: loaded.tokenizer.padId,
      stepTimeoutMs: 60_000,
      onWorkerLoss: 'reassign',
      seed: config.seed,
      onSliceFailure: (failure) => failures.push({ ...failure, step: state.step }),
    });
    let faultAt = 0;
    let uploadedAtRejoin = 0;
    for (let epoch = 0; state.step < totalSteps; epoch++) {
      for (const globalBatch of batchIndices(prepared.train.length, { batchSize: globalBatchSize, seed: config.seed, epoch })) {
        if (state.step >= totalSteps) break;
        if (state.step === FAULT_STEP) {
          inject(firstLink);
          faultAt = performance.now();
        }
        // S4: back within 2 steps. Steps here take milliseconds, so the test waits (bounded) before the second.
        if (state.step === FAULT_STEP + 2) {
          await waitForJoin(proxiedWorkerId, 2, REJOIN_BOUND_MS);
          uploadedAtRejoin = (await proxy.link(1)).bytes.up.received;
        }
        await trainer.step(prepared.train, globalBatch);
      }
    }
    const rejoin = joined.filter((j) => j.id === proxiedWorkerId)[1];
    const uploadedAfterRejoin = (await proxy.link(1)).bytes.up.received - uploadedAtRejoin;
    const staleReplies = registry.all().reduce((n, s) => n + s.staleReplies, 0);
    await registry.stopAll('training finished');
    const exited = new Promise<number | null>((resolve) => {
      const child = worker!.processes[0];
      if (child.exitCode !== null) resolve(child.exitCode);
      else child.once('exit', (code) => resolve(code));
    });
    const workerExitCode = await Promise.race([exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), 15_000))]);
    return {
      params: state.paramsFloat32(),
      failures,
      proxiedWorkerId,
      joinedIds: joined.map((j) => j.id),
      rejoinMs: rejoin.at - faultAt,
      stepsMissed: rejoin.step - FAULT_STEP,
      staleReplies,
      uploadedAfterRejoin,
      firstLink,
      workerLog,
      workerExitCode,
    };
  } finally {
    await proxy.close();
    await server.close();
    await worker?.stop();
    await survivor;
  }
}

let fixture: DpFixture;
let backend: BackendReport;
let config: RunConfig;
let reference: Map<string, Float32Array>;
const figures: Record<string, unknown> = {};

beforeAll(async () => {
  fixture = await makeDpFixture();
  backend = await selectBackend('auto');
  config = dpConfig(fixture, 2, { max_steps: STEPS });
  reference = (await referenceRun(config)).params;
});

afterAll(() => {
  console.log(JSON.stringify({ reliability_rejoin: figures }));
});

function expectRejoined(result: RejoinResult): number {
  const id = result.proxiedWorkerId;
  // The same id joined twice (first join, rejoin), and nobody else joined after the survivor.
  expect(result.joinedIds.filter((j) => j === id)).toHaveLength(2);
  expect(result.joinedIds).toHaveLength(3);
  expect(result.staleReplies).toBe(0);
  // Only the slice cut off by the partition was redone elsewhere: no duplicate contribution.
  expect(result.failures.map((f) => [f.workerId, f.step])).toEqual([[id, FAULT_STEP]]);
  expect(result.failures[0].outcome).toBe('reassigned');
  expect(result.rejoinMs).toBeLessThanOrEqual(REJOIN_BOUND_MS);
  expect(result.stepsMissed).toBeLessThanOrEqual(2);
  // It computed gradients again after rejoining (each step uploads a gradient frame).
  expect(result.uploadedAfterRejoin).toBeGreaterThan(1_000);
  const log = result.workerLog.join('\n');
  expect(log).toMatch(/heartbeat timeout: no ping from the coordinator/);
  expect(log).toMatch(new RegExp(`rejoining as ${id}`));
  expect(log).toMatch(/rejoin attempt 1 of/);
  expect(log).toMatch(/keeping the model loaded from/);
  expect(result.workerExitCode).toBe(0);
  // Trained with the fresh global parameters after the rejoin: the result is the reference's.
  const diff = maxRelativeDifference(result.params, reference);
  expect(diff).toBeLessThan(1e-5);
  return diff;
}

describe('workers reconnect and rejoin (RELIABILITY.md)', () => {
  it('S4: a one-sided partition (worker can send, cannot receive) trips the worker\'s ping watchdog; it reconnects, rejoins under its id within 2 steps, and no stale upload is counted', async () => {
    const result = await rejoinRun(config, (link) => link.blackholeOneWay('down'));
    const diff = expectRejoined(result);
    // The worker's side still flowed until it gave the link up; the coordinator's did not arrive.
    expect(result.firstLink.bytes.down.received).toBeGreaterThan(result.firstLink.bytes.down.forwarded);
    figures.S4 = { rejoin_ms: Math.round(result.rejoinMs), bound_ms: REJOIN_BOUND_MS, steps_missed: result.stepsMissed, stale_replies: result.staleReplies, max_rel_diff: diff };
  }, 60_000);

  it('S3: after a half-open partition (blackhole both ways) heals, the worker reconnects and trains again with the fresh global parameters; 0 duplicate contributions', async () => {
    const result = await rejoinRun(config, (link) => link.blackhole());
    const diff = expectRejoined(result);
    figures.S3_rejoin = { rejoin_ms: Math.round(result.rejoinMs), bound_ms: REJOIN_BOUND_MS, steps_missed: result.stepsMissed, stale_replies: result.staleReplies, max_rel_diff: diff };
  }, 60_000);
});
