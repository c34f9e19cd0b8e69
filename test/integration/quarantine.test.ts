/**
 * S11: a worker whose results fail the value gate (NaN here, injected with the worker fault hook) is struck each
 * time and quarantined at the third strike (the federated case with real worker processes: quarantine-federated.test.ts): closed with 4006, logged and written to metrics.jsonl. No global tensor
 * is ever non-finite. A federated round whose results carry zero total weight is an explicit error and leaves the
 * model unchanged.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { prepareRun, runCoordinator } from '../../coordinator/run.js';
import { float32Blob } from '../../shared/codec.js';
import { makeMessage } from '../../shared/protocol/build.js';
import { CloseCode } from '../../shared/protocol/close-codes.js';
import { MsgKind, type Message } from '../../shared/protocol/messages.js';
import { sizeOf } from '../../shared/tensors.js';
import { selectBackend, type BackendReport } from '../../worker/backend.js';
import type { WorkerFaults } from '../../worker/fault-injection.js';
import { connectWithRetry } from '../../worker/transport-ws.js';
import { runWorkerSession, type WorkerOutcome } from '../../worker/worker-runtime.js';
import { dpConfig, makeDpFixture, maxRelativeDifference, referenceRun, type DpFixture } from '../helpers/dp-fixture.js';
import { recordFigure } from '../helpers/reliability-figures.js';

let fixture: DpFixture;
let backend: BackendReport;

beforeAll(async () => {
  fixture = await makeDpFixture();
  backend = await selectBackend('auto');
});

function readMetrics(outputDir: string): Record<string, unknown>[] {
  return readFileSync(join(outputDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
}

function allFinite(tensors: Iterable<Float32Array>): boolean {
  for (const values of tensors) if (!values.every(Number.isFinite)) return false;
  return true;
}

describe('S11 quarantine', () => {
  it('S11: a data-parallel worker returning NaN every time is quarantined at its third strike; the run equals an honest one', async () => {
    const config = dpConfig(fixture, 3, { max_steps: 6 });
    const outcomes: Promise<WorkerOutcome>[] = [];
    const log: string[] = [];
    const result = await runCoordinator(config, {
      log: (line) => log.push(line),
      onListening: (url) => {
        for (let i = 0; i < 3; i++) {
          const faults: WorkerFaults = i === 0 ? { nanResults: { rate: 1, seed: 1 } } : {};
          outcomes.push(connectWithRetry(url).then((transport) => runWorkerSession({ transport, backend, log: () => undefined, faults })));
        }
      },
    });
    const settled = await Promise.all(outcomes);
    const poisoned = settled[0];
    expect(poisoned.kind).toBe('lost');
    if (poisoned.kind === 'lost') expect(poisoned.close.code).toBe(CloseCode.QUARANTINED);
    const records = readMetrics(result.outputDir);
    const quarantined = records.filter((r) => r.event === 'worker_quarantined');
    expect(quarantined).toHaveLength(1);
    expect(quarantined[0]).toMatchObject({ strikes: 3, code: 'E_TENSOR_NON_FINITE' });
    expect(log.some((line) => line.includes('quarantined'))).toBe(true);
    // Exactly three of its slices were refused: none after the quarantine.
    const refused = records.filter((r) => r.event === 'slice_failed' && r.worker_id === quarantined[0].worker_id);
    expect(refused).toHaveLength(3);
    expect(allFinite(result.params.values())).toBe(true);
    const reference = await referenceRun(config);
    const diff = maxRelativeDifference(result.params, reference.params);
    expect(diff).toBeLessThan(1e-5);
    recordFigure('S11', `data-parallel: quarantined after ${quarantined[0].strikes} strikes; max rel. diff to honest run ${diff.toExponential(1)}`);
  }, 60_000);

  it('S11: a federated round whose results carry zero total weight is an explicit error and leaves the model unchanged', async () => {
    const config = dpConfig(fixture, 1, { mode: 'federated', num_rounds: 2, eval_every_rounds: 0, min_fit_clients: 1, min_available_clients: 1, round_timeout: 20 });
    const prepared = await prepareRun(config);
    let adversary!: Promise<void>;
    const result = await runCoordinator(config, {
      log: () => undefined,
      onListening: (url) => {
        adversary = runZeroWeightClient(url);
      },
    });
    await adversary;
    const rounds = readMetrics(result.outputDir).filter((r) => r.event === 'round');
    expect(rounds).toHaveLength(2);
    for (const round of rounds) {
      expect(round.aggregated).toBe(false);
      expect(String((round.metrics as Record<string, unknown> | undefined)?.fit_error ?? round.fit_error)).toContain('E_AGGREGATION_ZERO_WEIGHT');
    }
    for (const [name, initial] of prepared.initial) expect(result.params.get(name), name).toEqual(initial);
  }, 60_000);
});

/** A client that trains nothing: answers each fit with a non-zero, finite delta claiming 0 examples and 0 tokens. */
async function runZeroWeightClient(url: string): Promise<void> {
  const transport = await connectWithRetry(url);
  transport.onMessage(async (msg: Message) => {
    if (msg.kind === MsgKind.WELCOME) {
      await transport.send(makeMessage(MsgKind.READY, { replyTo: msg.id, modelSha256: msg.model.sha256, backend: { name: 'adversary' }, loadMs: 0 }));
      manifest = msg.manifest;
    } else if (msg.kind === MsgKind.FIT_REQUEST) {
      const frozen = new Set(msg.config.frozen ?? []);
      const delta = manifest.filter((s) => !frozen.has(s.name)).map((s) => float32Blob(s.name, s.shape, new Float32Array(sizeOf(s.shape)).fill(0.5)));
      await transport.send(makeMessage(MsgKind.FIT_RESULT, { replyTo: msg.id, round: msg.round, clientId: msg.clientId, delta, numExamples: 0, numTokens: 0, trainLoss: 1, steps: 1, computeMs: 0 }));
    } else if (msg.kind === MsgKind.EVAL_REQUEST) {
      const n = msg.batch.batchSize;
      await transport.send(makeMessage(MsgKind.EVAL_RESULT, { replyTo: msg.id, step: msg.step, stats: { lossSum: n, numSamples: n, numLossItems: n, numTokens: n, numCorrect: 0 }, computeMs: 0 }));
    }
  });
  let manifest: readonly { name: string; shape: readonly number[] }[] = [];
  await transport.send(
    makeMessage(MsgKind.HELLO, { protocolVersion: 1, clientVersion: 'adversary', capabilities: { backend: 'adversary', cores: 1, memoryBytes: 0, hostname: 'zero', pid: 0 } }),
  );
  await transport.closed;
}
