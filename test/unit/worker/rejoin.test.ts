import { describe, expect, it } from 'vitest';
import { runWithRejoin, type RejoinDeps } from '../../../worker/rejoin.js';
import type { WorkerOutcome } from '../../../worker/worker-runtime.js';
import { CloseCode } from '../../../shared/protocol/close-codes.js';
import { ErrorCode, OrchestratorError } from '../../../shared/errors.js';
import type { Transport } from '../../../shared/transport.js';
import { makeTransportPair } from '../../helpers/transport-pair.js';

const lost = (code: number): WorkerOutcome => ({ kind: 'lost', close: { code, reason: 'test', initiatedLocally: code === CloseCode.HEARTBEAT_TIMEOUT } });

/** A rejoin loop whose sessions end as `outcomes` say, in order; records the ids each session joined under. */
function harness(outcomes: WorkerOutcome[], overrides: Partial<RejoinDeps> = {}) {
  const joinedAs: (string | undefined)[] = [];
  const dials: number[] = [];
  const lines: string[] = [];
  let assigned: string | undefined;
  const controller = new AbortController();
  const deps: RejoinDeps = {
    dial: async (reconnect) => {
      dials.push(reconnect.maxAttempts ?? -1);
      return makeTransportPair().worker;
    },
    session: async (_transport: Transport, workerId) => {
      joinedAs.push(workerId);
      assigned = workerId ?? 'w-assigned';
      const next = outcomes.shift();
      if (!next) throw new Error('no more scripted outcomes');
      return next;
    },
    assignedWorkerId: () => assigned,
    log: (line) => lines.push(line),
    signal: controller.signal,
    random: () => 0,
    ...overrides,
  };
  return { deps, joinedAs, dials, lines, controller };
}

const policy = { maxAttempts: 3, patienceMs: 5_000, initialDelayMs: 1, maxDelayMs: 2 };

describe('runWithRejoin', () => {
  it('S3: after a dropped link (1006) and a heartbeat timeout (4002) it dials again and rejoins under the id the coordinator assigned', async () => {
    const h = harness([lost(CloseCode.ABNORMAL), lost(CloseCode.HEARTBEAT_TIMEOUT), { kind: 'stopped', reason: 'training finished' }]);
    const outcome = await runWithRejoin(makeTransportPair().worker, policy, h.deps);
    expect(outcome).toEqual({ kind: 'stopped', reason: 'training finished', sessions: 3 });
    expect(h.joinedAs).toEqual([undefined, 'w-assigned', 'w-assigned']);
    expect(h.dials).toEqual([3, 3]);
    expect(h.lines.filter((l) => l.startsWith('rejoin attempt 1 of 3'))).toHaveLength(2);
  });

  it('starts from --worker-id when given', async () => {
    const h = harness([lost(CloseCode.ABNORMAL), { kind: 'stopped', reason: 'done' }], { workerId: 'w-given' });
    await runWithRejoin(makeTransportPair().worker, policy, h.deps);
    expect(h.joinedAs).toEqual(['w-given', 'w-given']);
  });

  it('does not rejoin after a quarantine (4006), a replacement (4007) or a normal close (1000)', async () => {
    for (const code of [CloseCode.QUARANTINED, CloseCode.REPLACED, CloseCode.NORMAL, CloseCode.INVALID_DATA]) {
      const h = harness([lost(code)]);
      const outcome = await runWithRejoin(makeTransportPair().worker, policy, h.deps);
      expect(outcome.kind).toBe('lost');
      expect(h.dials).toEqual([]);
    }
  });

  it('does not rejoin with maxAttempts 0', async () => {
    const h = harness([lost(CloseCode.ABNORMAL)]);
    expect((await runWithRejoin(makeTransportPair().worker, { ...policy, maxAttempts: 0 }, h.deps)).kind).toBe('lost');
    expect(h.dials).toEqual([]);
  });

  it('gives up with a lost outcome naming the cause when the dials fail', async () => {
    const h = harness([lost(CloseCode.ABNORMAL)], {
      dial: async () => {
        throw new OrchestratorError(ErrorCode.CONNECT_FAILED, 'cannot connect to ws://x: ECONNREFUSED (gave up after 3 attempts)');
      },
    });
    const outcome = await runWithRejoin(makeTransportPair().worker, policy, h.deps);
    expect(outcome.kind).toBe('lost');
    expect(outcome.kind === 'lost' && outcome.why).toMatch(/rejoin failed: .*gave up after 3 attempts/);
  });

  it('rethrows a refusal (auth) from the dial', async () => {
    const h = harness([lost(CloseCode.ABNORMAL)], {
      dial: async () => {
        throw new OrchestratorError(ErrorCode.AUTH_FAILED, 'coordinator refused the connection (HTTP 401)');
      },
    });
    await expect(runWithRejoin(makeTransportPair().worker, policy, h.deps)).rejects.toMatchObject({ code: ErrorCode.AUTH_FAILED });
  });

  it('ends as aborted when shut down while waiting to dial', async () => {
    const h = harness([lost(CloseCode.ABNORMAL)]);
    const outcome = runWithRejoin(makeTransportPair().worker, { ...policy, initialDelayMs: 60_000, maxDelayMs: 60_000 }, h.deps);
    h.controller.abort();
    expect(await outcome).toEqual({ kind: 'aborted', sessions: 1 });
    expect(h.dials).toEqual([]);
  });

  it('gives up when the patience runs out during the waits', async () => {
    const h = harness([lost(CloseCode.ABNORMAL)]);
    const outcome = await runWithRejoin(makeTransportPair().worker, { maxAttempts: 3, patienceMs: 20, initialDelayMs: 60_000, maxDelayMs: 60_000 }, h.deps);
    expect(outcome.kind).toBe('lost');
    expect(outcome.kind === 'lost' && outcome.why).toMatch(/no rejoin within 20 ms/);
  });
});
