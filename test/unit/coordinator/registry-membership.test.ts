/**
 * Membership in the worker registry: rejoining under a worker id (S14: the new session replaces the old one under
 * the same key; under another key the newcomer is refused with 4409 and the live one is untouched),
 * quarantine after three gate rejections (S11: closed 4006, rejoin under the id refused). Real registry, real
 * `SocketTransport`s over in-memory pairs (every frame encoded and parsed as over a WebSocket).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WorkerRegistry } from '../../../coordinator/registry.js';
import { WorkerState, type WorkerSession } from '../../../coordinator/worker-session.js';
import { ErrorCode, OrchestratorError } from '../../../shared/errors.js';
import { makeMessage } from '../../../shared/protocol/build.js';
import { CloseCode } from '../../../shared/protocol/close-codes.js';
import { MsgKind, type Message } from '../../../shared/protocol/messages.js';
import type { ModelSpec } from '../../../shared/model/types.js';
import type { Transport, TransportCloseEvent } from '../../../shared/transport.js';
import { makeTransportPair, type TransportPair } from '../../helpers/transport-pair.js';
import { recordFigure } from '../../helpers/reliability-figures.js';

const SHA = 'a'.repeat(64);

function makeRegistry(quarantineStrikes?: number): WorkerRegistry {
  return new WorkerRegistry({
    runId: 'run-test',
    model: { path: 'model.gguf', sha256: SHA, format: 'gguf' },
    modelSpec: {
      task: 'classification',
      numLabels: 2,
      pooling: 'mean',
      peft: { method: 'lora', r: 1, loraAlpha: 1, loraDropout: 0, targetModules: ['q'], useRslora: false },
    } as ModelSpec,
    manifest: [],
    settings: {},
    helloTimeoutMs: 2_000,
    loadTimeoutMs: 2_000,
    quarantineStrikes,
  });
}

/** A fake worker on `transport`: hello (under `workerId` if given), then ready on welcome; records the id it was given. */
function fakeWorker(transport: Transport, workerId?: string): { assignedId: Promise<string | undefined> } {
  const assignedId = new Promise<string | undefined>((resolve) => {
    transport.onMessage((msg: Message) => {
      if (msg.kind === MsgKind.WELCOME) {
        resolve(msg.workerId);
        void transport.send(makeMessage(MsgKind.READY, { replyTo: msg.id, modelSha256: SHA, backend: { name: 'cpu' }, loadMs: 0 })).catch(() => undefined);
      }
    });
    transport.onClose(() => resolve(undefined));
  });
  void transport
    .send(
      makeMessage(MsgKind.HELLO, {
        ...(workerId !== undefined ? { workerId } : {}),
        protocolVersion: 1,
        clientVersion: 'test',
        capabilities: { backend: 'cpu', cores: 1, memoryBytes: 0, hostname: 'test', pid: 0 },
      }),
    )
    .catch(() => undefined);
  return { assignedId };
}

/**
 * Connects a fake worker and runs its handshake to the end; `authIdentity` plays the credential the HTTP upgrade
 * verified (coordinator/auth.ts), undefined for a run without authentication.
 */
async function join(registry: WorkerRegistry, workerId?: string, authIdentity?: string): Promise<{ pair: TransportPair; assignedId?: string }> {
  const pair = makeTransportPair();
  const worker = fakeWorker(pair.worker, workerId);
  await registry.admit(authIdentity === undefined ? pair.coordinator : Object.assign(pair.coordinator, { authIdentity }));
  return { pair, assignedId: await worker.assignedId };
}

/** Live (not lost) sessions per id among every session the registry ever held, replaced ones included. */
function liveCountsById(sessions: Iterable<WorkerSession>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const s of sessions) if (s.state !== WorkerState.LOST) counts.set(s.id, (counts.get(s.id) ?? 0) + 1);
  return counts;
}

describe('rejoining under a worker id', () => {
  it('S14: the new session replaces the live one, which is closed with 4007', async () => {
    const registry = makeRegistry();
    const first = await join(registry);
    expect(first.assignedId).toMatch(/^w-/);
    const oldClosed: Promise<TransportCloseEvent> = first.pair.worker.closed;
    const second = await join(registry, first.assignedId);
    expect(second.assignedId).toBe(first.assignedId);
    expect((await oldClosed).code).toBe(CloseCode.REPLACED);
    expect(registry.ready().map((s) => s.id)).toEqual([first.assignedId]);
    expect(registry.ready()[0].transport).toBe(second.pair.coordinator);
  }, 10_000);

  it('S14: a rejoin under a live id with a different key is refused with 4409; the live session is untouched', async () => {
    const registry = makeRegistry();
    const first = await join(registry, undefined, 'hmac:k1');
    const intruder = makeTransportPair();
    const frames: Message[] = [];
    intruder.worker.onMessage((msg) => {
      frames.push(msg);
    });
    const intruderWorker = fakeWorker(intruder.worker, first.assignedId);
    await registry.admit(Object.assign(intruder.coordinator, { authIdentity: 'hmac:k2' }));
    expect(await intruderWorker.assignedId).toBeUndefined();
    const closed = await intruder.worker.closed;
    expect(closed.code).toBe(CloseCode.ID_CONFLICT);
    expect(frames.map((f) => f.kind)).toEqual([MsgKind.ERROR]);
    expect(frames[0]).toMatchObject({ code: ErrorCode.WORKER_ID_CONFLICT, retryable: false });
    expect(first.pair.worker.isOpen).toBe(true);
    expect(registry.ready().map((s) => s.transport)).toEqual([first.pair.coordinator]);
    // The same key replaces, as without authentication.
    const again = await join(registry, first.assignedId, 'hmac:k1');
    expect(again.assignedId).toBe(first.assignedId);
    expect((await first.pair.worker.closed).code).toBe(CloseCode.REPLACED);
    // Once the holder is lost, its id is free for any authenticated worker.
    again.pair.cut();
    await again.pair.coordinator.closed;
    expect((await join(registry, first.assignedId, 'hmac:k2')).assignedId).toBe(first.assignedId);
  }, 10_000);

  it('S14: over 1,000 random join/leave/reconnect/cut sequences with keys, never more than one live session per id', async () => {
    const ids = ['w-a', 'w-b', 'w-c'];
    // undefined: no authentication (no key), which follows the same-key rule.
    const keys = [undefined, 'hmac:k1', 'token:0123456789abcdef'];
    const command = fc.oneof(
      fc.record({ op: fc.constant('join' as const), id: fc.constantFrom(...ids, undefined), key: fc.constantFrom(...keys) }),
      fc.record({ op: fc.constant('leave' as const), id: fc.constantFrom(...ids) }),
      fc.record({ op: fc.constant('cut' as const), id: fc.constantFrom(...ids) }),
    );
    let sequences = 0;
    let maxLive = 0;
    let conflicts = 0;
    let replacements = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 12 }), async (commands) => {
        sequences++;
        const registry = makeRegistry();
        // The model: the newest connection per id (the one that must hold the id).
        const newest = new Map<string, TransportPair>();
        const keyOf = new Map<string, string | undefined>();
        const everSeen = new Set<WorkerSession>();
        for (const cmd of commands) {
          const pair = newest.get(cmd.id ?? '');
          if (cmd.op === 'join') {
            const isConflict = pair !== undefined && keyOf.get(cmd.id!) !== cmd.key;
            const joined = await join(registry, cmd.id, cmd.key);
            if (isConflict) {
              conflicts++;
              expect(joined.assignedId).toBeUndefined();
              expect((await joined.pair.worker.closed).code).toBe(CloseCode.ID_CONFLICT);
              expect(pair.worker.isOpen).toBe(true);
            } else {
              if (pair) replacements++;
              expect(joined.assignedId).toBeDefined();
              newest.set(joined.assignedId!, joined.pair);
              keyOf.set(joined.assignedId!, cmd.key);
            }
          } else if (pair) {
            if (cmd.op === 'leave') pair.worker.close(1000, 'leaving');
            else pair.cut();
            await pair.coordinator.closed;
            newest.delete(cmd.id!);
          }
          for (const s of registry.all()) everSeen.add(s);
          for (const [id, count] of liveCountsById(everSeen)) {
            maxLive = Math.max(maxLive, count);
            expect(count, `live sessions for ${id}`).toBeLessThanOrEqual(1);
          }
          const readyIds = registry.ready().map((s) => s.id);
          expect(new Set(readyIds).size).toBe(readyIds.length);
          // Every id's newest connection is the ready session holding it; the rest are closed.
          expect(new Set(readyIds)).toEqual(new Set(newest.keys()));
          for (const [id, p] of newest) expect(registry.ready().find((s) => s.id === id)!.transport).toBe(p.coordinator);
        }
      }),
      { numRuns: 1_000, seed: 14 },
    );
    recordFigure('S14', `${sequences} sequences (${conflicts} other-key rejoins refused 4409, ${replacements} same-key replaced), max live sessions per id ${maxLive}`);
  }, 60_000);
});

describe('quarantine', () => {
  const gateError = () => new OrchestratorError(ErrorCode.TENSOR_NON_FINITE, 'tensor "x": non-finite value NaN at index 0');

  it('S11: three gate rejections close the worker with 4006 and its id is refused on rejoin', async () => {
    const registry = makeRegistry();
    const events: string[] = [];
    registry.subscribe((e) => events.push(e.type));
    const { pair, assignedId } = await join(registry);
    const session = registry.ready()[0];
    expect(registry.strike(session, gateError()).isQuarantined).toBe(false);
    expect(registry.strike(session, gateError()).isQuarantined).toBe(false);
    expect(registry.strike(session, gateError())).toMatchObject({ strikes: 3, isQuarantined: true, code: ErrorCode.TENSOR_NON_FINITE });
    const closed = await pair.worker.closed;
    expect(closed.code).toBe(CloseCode.QUARANTINED);
    expect(closed.reason).toContain('quarantined');
    expect(events).toContain('quarantined');
    expect(registry.ready()).toHaveLength(0);

    const rejoin = makeTransportPair();
    const frames: Message[] = [];
    rejoin.worker.onMessage((msg) => {
      frames.push(msg);
    });
    fakeWorker(rejoin.worker, assignedId);
    await registry.admit(rejoin.coordinator);
    expect((await rejoin.worker.closed).code).toBe(CloseCode.QUARANTINED);
    expect(frames.map((f) => f.kind)).toEqual([MsgKind.ERROR]);
    expect(frames[0]).toMatchObject({ code: ErrorCode.WORKER_QUARANTINED });
    expect(registry.ready()).toHaveLength(0);
    // A fresh id is a fresh worker (without authentication the registry cannot tell the peer apart).
    expect((await join(registry)).assignedId).not.toBe(assignedId);
  });

  it('errors the worker reported itself, timeouts and lost links are not strikes; quarantine_strikes 0 never quarantines', async () => {
    const { isGateRejection } = await import('../../../coordinator/quarantine.js');
    const { RemoteError, TimeoutError, WorkerLostError } = await import('../../../shared/errors.js');
    expect(isGateRejection(gateError())).toBe(true);
    expect(isGateRejection(new OrchestratorError(ErrorCode.TENSOR_SHAPE, 'shape'))).toBe(true);
    expect(isGateRejection(new RemoteError(ErrorCode.TENSOR_NON_FINITE, 'worker said so', false))).toBe(false);
    expect(isGateRejection(new TimeoutError('slow'))).toBe(false);
    expect(isGateRejection(new WorkerLostError('gone'))).toBe(false);

    const registry = makeRegistry(0);
    await join(registry);
    const session = registry.ready()[0];
    for (let i = 0; i < 10; i++) expect(registry.strike(session, gateError()).isQuarantined).toBe(false);
    expect(session.state).toBe(WorkerState.READY);
  });
});
