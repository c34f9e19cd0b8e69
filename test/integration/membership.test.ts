/**
 * Membership at the edges of a run, with real processes where the scenario is about a process:
 * S16 a protocol-version mismatch is a readable error on both sides within 1 s and the worker process exits non-zero;
 * S18 a coordinator whose quorum never joins exits non-zero within join_timeout + 1 s naming have/need;
 * S19 a worker joining mid-run gets the current global state and takes part from the next step.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { DataParallelTrainer } from '../../coordinator/data-parallel.js';
import { WorkerRegistry } from '../../coordinator/registry.js';
import { createTrainableState, prepareRun, trainingPlan } from '../../coordinator/run.js';
import { startWsServer } from '../../coordinator/transport-ws.js';
import { encodeMessage } from '../../shared/codec.js';
import { batchIndices } from '../../shared/data/index.js';
import { ExitCode } from '../../shared/exit-codes.js';
import { makeMessage } from '../../shared/protocol/build.js';
import { CloseCode } from '../../shared/protocol/close-codes.js';
import { MsgKind, SUBPROTOCOL, type Message } from '../../shared/protocol/messages.js';
import { selectBackend, type BackendReport } from '../../worker/backend.js';
import { connectWithRetry } from '../../worker/transport-ws.js';
import { runWorkerSession, type WorkerOutcome } from '../../worker/worker-runtime.js';
import { dpConfig, makeDpFixture, maxRelativeDifference, referenceRun, type DpFixture } from '../helpers/dp-fixture.js';
import { recordFigure } from '../helpers/reliability-figures.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'swarmtune.mjs');

let fixture: DpFixture;
let backend: BackendReport;

beforeAll(async () => {
  fixture = await makeDpFixture();
  backend = await selectBackend('auto');
});

/** A `swarmtune` process; `waitFor(re)` resolves at the first stderr line matching `re`, with the time it was seen. */
function startSwarmtune(args: string[]) {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const watchers: { re: RegExp; resolve: (at: number) => void }[] = [];
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    for (const w of [...watchers]) {
      if (w.re.test(stderr)) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve(performance.now());
      }
    }
  });
  const exited = once(child, 'exit').then(([code]) => ({ code: code as number | null, at: performance.now() }));
  return {
    child,
    stderr: () => stderr,
    exited,
    waitFor: (re: RegExp) => new Promise<number>((resolve) => (re.test(stderr) ? resolve(performance.now()) : watchers.push({ re, resolve }))),
  };
}

describe('S18 quorum', () => {
  it('S18: a coordinator whose workers never join exits non-zero within join_timeout + 1 s, naming have/need', async () => {
    const joinTimeoutMs = 1_500;
    const sets = [`model=${fixture.modelPath}`, `dataset=jsonl:${fixture.dataPath}`, 'eval_split_size=10', 'max_length=20', `join_timeout_ms=${joinTimeoutMs}`];
    const coordinator = startSwarmtune(['coordinator', '--workers', '2', '-o', mkdtempSync(join(tmpdir(), 'swarmtune-s18-')), ...sets.flatMap((s) => ['--set', s])]);
    const listeningAt = await Promise.race([coordinator.waitFor(/listening on ws:\/\//), coordinator.exited.then(() => Number.NaN)]);
    expect(listeningAt, coordinator.stderr()).not.toBeNaN();
    const { code, at } = await coordinator.exited;
    const exitAfterMs = at - listeningAt;
    expect(code, coordinator.stderr()).toBe(ExitCode.NO_WORKERS);
    expect(coordinator.stderr()).toMatch(/only 0 of 2 required workers joined within 1500 ms/);
    expect(exitAfterMs).toBeLessThanOrEqual(joinTimeoutMs + 1_000);
    recordFigure('S18', `exit code ${code} ${(exitAfterMs / 1000).toFixed(2)} s after listening (join_timeout ${joinTimeoutMs / 1000} s)`);
  }, 40_000);
});

describe('S16 protocol version mismatch', () => {
  it('S16: a worker process facing a v2 coordinator exits non-zero within 1 s, naming both versions', async () => {
    // A coordinator of a future protocol: accepts the sub-protocol, then answers hello with a v2 frame.
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false) });
    await once(wss, 'listening');
    let sentAt = Number.NaN;
    const closes: { code: number; reason: string }[] = [];
    wss.on('connection', (ws) => {
      ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }));
      ws.once('message', () => {
        const frame = { ...makeMessage(MsgKind.STOP, { reason: 'from the future' }), v: 2 } as unknown as Message;
        ws.send(encodeMessage(frame));
        sentAt = performance.now();
      });
    });
    try {
      const worker = startSwarmtune(['worker', '--connect', `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, '--connect-attempts', '1']);
      const { code, at } = await worker.exited;
      expect(code, worker.stderr()).toBe(ExitCode.CONNECTION);
      expect(worker.stderr()).toMatch(/protocol version mismatch: worker speaks v1, coordinator sent v2/);
      expect(closes[0]?.code).toBe(CloseCode.VERSION_MISMATCH);
      const exitAfterMs = at - sentAt;
      expect(exitAfterMs).toBeLessThanOrEqual(1_000);
      recordFigure('S16', `worker exit ${code} ${exitAfterMs.toFixed(0)} ms after the v2 frame; close ${closes[0]?.code}`);
    } finally {
      wss.close();
    }
  }, 40_000);

  it('S16: the coordinator closes a v2 worker with 4001 and a reason naming both versions within 1 s', async () => {
    const config = dpConfig(fixture, 1);
    const prepared = await prepareRun(config);
    const registry = registryFor(prepared);
    const server = await startWsServer({ port: 0, onConnection: (c) => void registry.admit(c) });
    try {
      const ws = new WebSocket(server.url, SUBPROTOCOL);
      await once(ws, 'open');
      const hello = makeMessage(MsgKind.HELLO, { protocolVersion: 2, clientVersion: 'future', capabilities: { backend: 'cpu', cores: 1, memoryBytes: 0, hostname: 'f', pid: 0 } });
      const started = performance.now();
      ws.send(encodeMessage({ ...hello, v: 2 } as unknown as Message));
      const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
      const ms = performance.now() - started;
      expect(code).toBe(CloseCode.VERSION_MISMATCH);
      expect(reason.toString()).toMatch(/coordinator speaks v1, worker sent v2/);
      expect(ms).toBeLessThanOrEqual(1_000);
      recordFigure('S16', `coordinator closed a v2 worker with ${code} after ${ms.toFixed(0)} ms`);
    } finally {
      await server.close();
    }
  }, 40_000);
});

function registryFor(prepared: Awaited<ReturnType<typeof prepareRun>>): WorkerRegistry {
  return new WorkerRegistry({
    runId: 'run-membership',
    model: { path: prepared.loaded.path, sha256: prepared.loaded.sha256, format: 'gguf' },
    modelSpec: prepared.modelSpec,
    manifest: prepared.manifest,
    settings: { mode: 'data-parallel' },
  });
}

describe('S19 scale-up', () => {
  it('S19: a worker joining after step 3 gets the current parameters and computes from step 4; the run equals one process', async () => {
    const config = dpConfig(fixture, 2, { max_steps: 6 });
    const prepared = await prepareRun(config);
    const { globalBatchSize, totalSteps } = trainingPlan(config, prepared.train.length);
    const state = createTrainableState(config, prepared, totalSteps);
    const registry = registryFor(prepared);
    const server = await startWsServer({ port: 0, onConnection: (c) => void registry.admit(c) });
    const sessions: Promise<WorkerOutcome>[] = [];
    const startWorker = () => sessions.push(connectWithRetry(server.url).then((transport) => runWorkerSession({ transport, backend, log: () => undefined })));
    try {
      startWorker();
      await registry.waitForReady(1, 30_000);
      const trainer = new DataParallelTrainer(registry, state, { task: config.task, padId: prepared.loaded.tokenizer.padId, stepTimeoutMs: 30_000, onWorkerLoss: 'reassign', seed: config.seed });
      const workersPerStep: number[] = [];
      const paramBytesPerStep: number[] = [];
      for (let epoch = 0; state.step < totalSteps; epoch++) {
        for (const globalBatch of batchIndices(prepared.train.length, { batchSize: globalBatchSize, seed: config.seed, epoch })) {
          if (state.step >= totalSteps) break;
          if (state.step === 3) {
            startWorker();
            await registry.waitForReady(2, 30_000);
          }
          const report = await trainer.step(prepared.train, globalBatch);
          workersPerStep.push(report.numWorkers);
          paramBytesPerStep.push(report.paramBytes);
        }
      }
      expect(workersPerStep).toEqual([1, 1, 1, 2, 2, 2]);
      // Step 4 carries the joiner's full copy on top of the first worker's update.
      const fullBytes = prepared.manifest.reduce((n, s) => n + 4 * s.shape.reduce((a, b) => a * b, 1), 0);
      expect(paramBytesPerStep[3]).toBeGreaterThanOrEqual(fullBytes + paramBytesPerStep[2]);
      const reference = await referenceRun(config);
      const diff = maxRelativeDifference(state.paramsFloat32(), reference.params);
      expect(diff).toBeLessThan(1e-5);
      recordFigure('S19', `joined before step 4, computed from step 4 (0 steps missed); max rel. diff to one process ${diff.toExponential(1)}`);
    } finally {
      await registry.stopAll('test over');
      await server.close();
      await Promise.all(sessions);
    }
  }, 60_000);
});
