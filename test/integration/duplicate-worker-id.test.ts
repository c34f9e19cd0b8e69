/**
 * S14 over real sockets with HMAC authentication: a connection that claims a live worker's id but signed its upgrade
 * with another key of `auth_keys_file` is refused (error frame E_WORKER_ID_CONFLICT, close 4409) and the live
 * session keeps working; a reconnection under the same key replaces the old session (4007).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createAuthenticator } from '../../coordinator/auth.js';
import { WorkerRegistry } from '../../coordinator/registry.js';
import { startWsServer, type WsServer } from '../../coordinator/transport-ws.js';
import { ErrorCode } from '../../shared/errors.js';
import type { ModelSpec } from '../../shared/model/types.js';
import { makeMessage } from '../../shared/protocol/build.js';
import { CloseCode } from '../../shared/protocol/close-codes.js';
import { MsgKind, type Message } from '../../shared/protocol/messages.js';
import type { Transport } from '../../shared/transport.js';
import type { ClientCredentials } from '../../worker/auth-credentials.js';
import { connectWs } from '../../worker/transport-ws.js';
import { recordFigure } from '../helpers/reliability-figures.js';

const SHA = 'b'.repeat(64);
const KEYS = new Map([
  ['k1', 'secret-one-0123456789abcdef-0123456789'],
  ['k2', 'secret-two-0123456789abcdef-0123456789'],
]);
const credentialsOf = (keyId: string): ClientCredentials => ({ scheme: 'hmac', keyId, secret: KEYS.get(keyId)! });

let server: WsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function startCoordinator(): Promise<{ url: string; registry: WorkerRegistry }> {
  const registry = new WorkerRegistry({
    runId: 'run-s14',
    model: { path: 'model.gguf', sha256: SHA, format: 'gguf' },
    modelSpec: { task: 'classification', numLabels: 2, pooling: 'mean', peft: { method: 'lora', r: 1, loraAlpha: 1, loraDropout: 0, targetModules: ['q'], useRslora: false } } as ModelSpec,
    manifest: [],
    settings: {},
    helloTimeoutMs: 5_000,
    loadTimeoutMs: 5_000,
  });
  server = await startWsServer({
    port: 0,
    authenticator: createAuthenticator({ mode: 'hmac', keys: KEYS }),
    onConnection: (connection) => void registry.admit(connection),
  });
  return { url: server.url, registry };
}

/** A worker that says hello (under `workerId` if given) and answers welcome with ready; resolves with its id or the refusal. */
async function handshake(url: string, keyId: string, workerId?: string): Promise<{ transport: Transport; frames: Message[]; workerId?: string }> {
  const transport = await connectWs(url, { credentials: credentialsOf(keyId) });
  const frames: Message[] = [];
  const outcome = new Promise<string | undefined>((resolve) => {
    transport.onMessage((msg) => {
      frames.push(msg);
      if (msg.kind === MsgKind.WELCOME) {
        resolve(msg.workerId);
        void transport.send(makeMessage(MsgKind.READY, { replyTo: msg.id, modelSha256: SHA, backend: { name: 'cpu' }, loadMs: 0 })).catch(() => undefined);
      }
    });
    transport.onClose(() => resolve(undefined));
  });
  await transport.send(
    makeMessage(MsgKind.HELLO, {
      ...(workerId !== undefined ? { workerId } : {}),
      protocolVersion: 1,
      clientVersion: 'test',
      capabilities: { backend: 'cpu', cores: 1, memoryBytes: 0, hostname: 'test', pid: 0 },
    }),
  );
  return { transport, frames, workerId: await outcome };
}

/** Resolves once `registry` has `count` ready workers. */
async function readyCount(registry: WorkerRegistry, count: number): Promise<void> {
  await registry.waitForReady(count, 5_000);
}

describe('duplicate worker id over real sockets', () => {
  it('S14: another key claiming a live worker id is refused with 4409; the same key replaces the session (4007)', async () => {
    const { url, registry } = await startCoordinator();
    const first = await handshake(url, 'k1');
    expect(first.workerId).toMatch(/^w-/);
    await readyCount(registry, 1);
    const liveSession = registry.ready()[0];

    const started = performance.now();
    const intruder = await handshake(url, 'k2', first.workerId);
    const intruderClosed = await intruder.transport.closed;
    const refusalMs = performance.now() - started;
    expect(intruder.workerId).toBeUndefined();
    expect(intruderClosed.code).toBe(CloseCode.ID_CONFLICT);
    expect(intruder.frames.map((f) => f.kind)).toEqual([MsgKind.ERROR]);
    expect(intruder.frames[0]).toMatchObject({ code: ErrorCode.WORKER_ID_CONFLICT, retryable: false });
    // The live session is untouched: still open, still the one registered, and it still answers the coordinator.
    expect(first.transport.isOpen).toBe(true);
    expect(registry.ready()).toEqual([liveSession]);
    const echoed = new Promise<Message>((resolve) => first.transport.onMessage((msg) => {
        if (msg.kind === MsgKind.STOP) resolve(msg);
      }),
    );
    await liveSession.send({ kind: MsgKind.STOP, reason: 'still here?' });
    expect((await echoed).kind).toBe(MsgKind.STOP);

    const firstClosed = first.transport.closed;
    const again = await handshake(url, 'k1', first.workerId);
    expect(again.workerId).toBe(first.workerId);
    expect((await firstClosed).code).toBe(CloseCode.REPLACED);
    expect(registry.ready().map((s) => s.transport.peer)).toHaveLength(1);
    expect(registry.ready()[0]).not.toBe(liveSession);
    recordFigure('S14', `real sockets (HMAC keys): other key refused 4409 in ${refusalMs.toFixed(0)} ms, live session untouched; same key replaced (4007)`);
    again.transport.close(1000, 'done');
  }, 20_000);
});
