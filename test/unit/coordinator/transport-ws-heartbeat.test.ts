/**
 * Busy-aware heartbeat of the coordinator's WebSocket server (coordinator/transport-ws.ts with the session's busy
 * check from coordinator/worker-session.ts): a worker with a request outstanding may miss pongs (it is computing)
 * and is held open until the request's own timeout; an idle one that misses a pong is cut as before. Real sockets
 * on 127.0.0.1, a raw `ws` client that never pongs, RELIABILITY.md's 200/200 ms test timers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startWsServer, type ServerConnection, type WsServer } from '../../../coordinator/transport-ws.js';
import { WorkerSession } from '../../../coordinator/worker-session.js';
import { ErrorCode, TimeoutError } from '../../../shared/errors.js';
import type { WorkerId } from '../../../shared/ids.js';
import { CloseCode } from '../../../shared/protocol/close-codes.js';
import { MsgKind, SUBPROTOCOL } from '../../../shared/protocol/messages.js';

const PING_INTERVAL_MS = 200;
const PONG_TIMEOUT_MS = 200;
/** Scheduling slack on this shared 2-core machine. */
const SLACK_MS = 1_000;

const servers: WsServer[] = [];
const clients: WebSocket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A server that wraps each connection in a worker session wired to the heartbeat, as the registry does. */
async function sessionServer(): Promise<{ server: WsServer; nextSession: () => Promise<{ session: WorkerSession; conn: ServerConnection }> }> {
  const waiters: ((s: { session: WorkerSession; conn: ServerConnection }) => void)[] = [];
  const server = await startWsServer({
    port: 0,
    pingIntervalMs: PING_INTERVAL_MS,
    pongTimeoutMs: PONG_TIMEOUT_MS,
    onConnection: (conn) => {
      const session = new WorkerSession('w-heartbeat' as WorkerId, conn);
      conn.setBusyCheck(() => session.isBusy());
      waiters.shift()?.({ session, conn });
    },
  });
  servers.push(server);
  return { server, nextSession: () => new Promise((resolve) => waiters.push(resolve)) };
}

/** A client that never answers pings nor requests: a blocked or blackholed worker. */
function muteClient(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, [SUBPROTOCOL], { autoPong: false });
  clients.push(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

describe('busy-aware heartbeat', () => {
  it('S3: an idle worker that misses a pong is cut (4002) within ping interval + pong deadline', async () => {
    const { server, nextSession } = await sessionServer();
    const accepted = nextSession();
    const started = performance.now();
    await muteClient(server.url);
    const { session, conn } = await accepted;
    const event = await conn.closed;
    const elapsedMs = performance.now() - started;
    expect(session.isBusy()).toBe(false);
    expect(event).toMatchObject({ code: CloseCode.HEARTBEAT_TIMEOUT, error: { code: ErrorCode.TIMEOUT } });
    expect(elapsedMs).toBeGreaterThanOrEqual(PING_INTERVAL_MS + PONG_TIMEOUT_MS - 20);
    expect(elapsedMs).toBeLessThan(PING_INTERVAL_MS + PONG_TIMEOUT_MS + SLACK_MS);
  });

  it('S3: a busy worker that misses pongs is held open until its request times out, then cut within the pong deadline', async () => {
    const { server, nextSession } = await sessionServer();
    const accepted = nextSession();
    await muteClient(server.url);
    const { session, conn } = await accepted;
    // Several pong deadlines long: without the busy check the link is cut after about 400 ms.
    const requestTimeoutMs = 6 * (PING_INTERVAL_MS + PONG_TIMEOUT_MS);
    const requested = session.request({ kind: MsgKind.STOP, reason: 'probe' }, MsgKind.READY, requestTimeoutMs);
    expect(session.isBusy()).toBe(true);
    const failure = await requested.then(
      () => new Error('the mute client answered'),
      (err: unknown) => err as Error,
    );
    const timedOutAt = performance.now();
    expect(failure).toBeInstanceOf(TimeoutError);
    expect(conn.isOpen).toBe(true);
    expect(session.isBusy()).toBe(false);

    const event = await conn.closed;
    const afterRequestMs = performance.now() - timedOutAt;
    expect(event).toMatchObject({ code: CloseCode.HEARTBEAT_TIMEOUT, error: { code: ErrorCode.TIMEOUT } });
    expect(event.reason).toMatch(/no pong/);
    expect(afterRequestMs).toBeLessThan(PONG_TIMEOUT_MS + SLACK_MS);
  });
});
