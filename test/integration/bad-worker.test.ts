/**
 * A worker that speaks the protocol but answers with bad tensors: NaN values, a wrong shape, a wrong dtype, an
 * unknown tensor name, a byte length that does not match its shape, a non-finite loss. Each reply is rejected at
 * the gate before it touches the global state, the slice is recomputed by the honest worker, and the run ends
 * exactly where an all-honest run with the same global batch ends.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { runCoordinator } from '../../coordinator/run.js';
import { float32Blob, int32Blob } from '../../shared/codec.js';
import { makeErrorFrame, makeMessage } from '../../shared/protocol/build.js';
import { MsgKind, type Message, type TensorBlob } from '../../shared/protocol/messages.js';
import { ErrorCode, OrchestratorError } from '../../shared/errors.js';
import { sizeOf, type TensorSpec } from '../../shared/tensors.js';
import { selectBackend, type BackendReport } from '../../worker/backend.js';
import { connectWithRetry } from '../../worker/transport-ws.js';
import { runWorkerSession } from '../../worker/worker-runtime.js';
import { dpConfig, makeDpFixture, maxRelativeDifference, referenceRun, type DpFixture } from '../helpers/dp-fixture.js';

/** Bad gradient sets, one per request in turn, each with what the coordinator must say about it. */
const CORRUPTIONS: { readonly what: string; readonly grads: (manifest: readonly TensorSpec[]) => TensorBlob[]; readonly lossSum?: number }[] = [
  { what: 'NaN values', grads: (m) => m.map((s) => float32Blob(s.name, s.shape, new Float32Array(sizeOf(s.shape)).fill(Number.NaN))) },
  { what: 'wrong shape', grads: (m) => m.map((s, i) => (i === 0 ? float32Blob(s.name, [sizeOf(s.shape)], new Float32Array(sizeOf(s.shape))) : zeros(s))) },
  { what: 'int32 dtype', grads: (m) => m.map((s) => int32Blob(s.name, s.shape, new Int32Array(sizeOf(s.shape)))) },
  { what: 'unknown name', grads: (m) => m.map((s, i) => (i === 1 ? float32Blob(`${s.name}.evil`, s.shape, new Float32Array(sizeOf(s.shape))) : zeros(s))) },
  { what: 'short byte length', grads: (m) => m.map((s) => ({ ...zeros(s), data: new Uint8Array(4 * sizeOf(s.shape) - 2) })) },
  { what: 'infinite loss', grads: (m) => m.map(zeros), lossSum: Number.POSITIVE_INFINITY },
];

function zeros(spec: TensorSpec): TensorBlob {
  return float32Blob(spec.name, spec.shape, new Float32Array(sizeOf(spec.shape)));
}

/** Joins like a worker (it even lies about the model hash correctly) and answers every request badly. */
async function runAdversary(url: string): Promise<{ gradRequests: number }> {
  const transport = await connectWithRetry(url);
  let manifest: readonly TensorSpec[] = [];
  let gradRequests = 0;
  transport.onMessage(async (msg: Message) => {
    if (msg.kind === MsgKind.WELCOME) {
      manifest = msg.manifest;
      await transport.send(makeMessage(MsgKind.READY, { replyTo: msg.id, modelSha256: msg.model.sha256, backend: { name: 'adversary' }, loadMs: 0 }));
    } else if (msg.kind === MsgKind.GRAD_REQUEST) {
      const corruption = CORRUPTIONS[gradRequests++ % CORRUPTIONS.length];
      const stats = { lossSum: corruption.lossSum ?? 1, numSamples: msg.batch.batchSize, numLossItems: msg.batch.batchSize, numTokens: 10, numCorrect: 0 };
      await transport.send(makeMessage(MsgKind.GRAD_RESULT, { replyTo: msg.id, step: msg.step, grads: corruption.grads(manifest), stats, computeMs: 0 }));
    } else if (msg.kind === MsgKind.EVAL_REQUEST) {
      await transport.send(makeErrorFrame(new OrchestratorError(ErrorCode.INTERNAL, 'adversary refuses to evaluate'), { replyTo: msg.id }));
    }
  });
  await transport.send(
    makeMessage(MsgKind.HELLO, { protocolVersion: 1, clientVersion: 'adversary', capabilities: { backend: 'adversary', cores: 1, memoryBytes: 0, hostname: 'evil', pid: 0 } }),
  );
  await transport.closed;
  return { gradRequests };
}

let fixture: DpFixture;
let backend: BackendReport;

beforeAll(async () => {
  fixture = await makeDpFixture();
  backend = await selectBackend('auto');
});

describe('a worker that returns bad tensors', () => {
  it('S10: is rejected at the gate every time; the run survives and equals an all-honest run', async () => {
    // Quarantine off: every corruption must reach the gate (quarantine is tested in test/integration/quarantine.test.ts).
    const config = dpConfig(fixture, 2, { max_steps: CORRUPTIONS.length, quarantine_strikes: 0 });
    let adversary!: Promise<{ gradRequests: number }>;
    const log: string[] = [];
    const result = await runCoordinator(config, {
      log: (line) => log.push(line),
      onListening: async (url) => {
        // Whichever joins first, the adversary holds one slice of every step.
        adversary = runAdversary(url);
        void connectWithRetry(url).then((transport) => runWorkerSession({ transport, backend, log: () => undefined }));
      },
    });
    const { gradRequests } = await adversary;
    expect(gradRequests).toBe(CORRUPTIONS.length);
    expect(result.steps).toBe(CORRUPTIONS.length);
    for (const values of result.params.values()) expect(values.every(Number.isFinite)).toBe(true);
    const reference = await referenceRun(config);
    expect(maxRelativeDifference(result.params, reference.params)).toBeLessThan(1e-5);
    // Each rejection is reported with the code that names the problem.
    const rejections = log.filter((line) => line.includes(' failed slice '));
    for (const code of ['E_TENSOR_NON_FINITE', 'E_TENSOR_SHAPE', 'E_TENSOR_DTYPE', 'E_TENSOR_NAME']) {
      expect(rejections.filter((line) => line.includes(code)).length, `rejections with ${code}:\n${rejections.join('\n')}`).toBeGreaterThan(0);
    }
  });
});
