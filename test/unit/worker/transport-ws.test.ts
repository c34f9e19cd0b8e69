import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { startWsServer, type WsServer } from '../../../coordinator/transport-ws.js';
import { encodeMessage } from '../../../shared/codec.js';
import { ErrorCode, ProtocolError } from '../../../shared/errors.js';
import { makeErrorFrame } from '../../../shared/protocol/build.js';
import { CloseCode, isReconnectable } from '../../../shared/protocol/close-codes.js';
import type { Message } from '../../../shared/protocol/messages.js';
import { SUBPROTOCOL } from '../../../shared/protocol/messages.js';
import { parseMessage } from '../../../shared/protocol/parse.js';
import { describeClose } from '../../../shared/transport.js';
import { backoffDelayMs, connectWithRetry, connectWs, type RetryInfo } from '../../../worker/transport-ws.js';
import { sampleMessages } from '../../fixtures/frames/samples.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function coordinator(options: { pingIntervalMs?: number; pongTimeoutMs?: number; port?: number } = {}): Promise<WsServer> {
  const server = await startWsServer({ port: 0, ...options, onConnection: (conn) => conn.onMessage((m) => conn.send(m)) });
  cleanups.push(() => server.close());
  return server;
}

/** A port that nothing listens on (bound then released). */
async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** A bare `ws` server standing in for a coordinator of another version. */
async function fakeCoordinator() {
  const received: Uint8Array[] = [];
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => SUBPROTOCOL });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  const closes: Promise<number>[] = [];
  wss.on('connection', (ws) => {
    closes.push(new Promise((resolve) => ws.once('close', (code) => resolve(code))));
    ws.on('message', (data) => {
      const bytes = new Uint8Array(data as Buffer);
      received.push(bytes);
    });
    ws.send(encodeMessage({ ...sampleMessages().welcome, v: 2 } as unknown as Message));
  });
  cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
  return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, received, closes };
}

describe('backoffDelayMs', () => {
  it('doubles from initialDelayMs up to maxDelayMs, jittered in the upper half', () => {
    const opts = { initialDelayMs: 100, maxDelayMs: 1000 };
    expect([0, 1, 2, 3, 4, 5].map((r) => backoffDelayMs(r, opts, () => 1))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect([0, 1, 2, 3, 4].map((r) => backoffDelayMs(r, opts, () => 0))).toEqual([50, 100, 200, 400, 500]);
    const d = backoffDelayMs(2, opts, () => 0.5);
    expect(d).toBe(300);
  });
});

describe('connectWs', () => {
  it('connects with sub-protocol swarmtune.v1 and exchanges frames', async () => {
    const server = await coordinator();
    const t = await connectWs(server.url);
    expect(t.peer).toBe(server.url);
    expect(t.isOpen).toBe(true);
    const echoed = new Promise<Message>((resolve) => t.onMessage(resolve));
    await t.send(sampleMessages().hello);
    expect(await echoed).toEqual(sampleMessages().hello);
    t.close();
    expect((await t.closed).code).toBe(1000);
    await expect(t.send(sampleMessages().hello)).rejects.toMatchObject({ code: ErrorCode.CONNECTION_CLOSED });
  });

  it("surfaces the coordinator's error frame with its close (version mismatch)", async () => {
    const server = await coordinator();
    const t = await connectWs(server.url);
    await t.send({ ...sampleMessages().hello, v: 2 } as unknown as Message);
    const event = await t.closed;
    expect(event).toMatchObject({
      code: CloseCode.VERSION_MISMATCH,
      initiatedLocally: false,
      error: { code: ErrorCode.PROTOCOL_VERSION, message: 'protocol version mismatch: coordinator speaks v1, worker sent v2' },
    });
    expect(isReconnectable(event.code)).toBe(false);
    expect(describeClose(event)).toMatch(/4001 by peer: E_PROTOCOL_VERSION protocol version mismatch/);
  });

  it('refuses frames from a coordinator of another version: error frame back, close 4001', async () => {
    const fake = await fakeCoordinator();
    const t = await connectWs(fake.url);
    const event = await t.closed;
    expect(event).toMatchObject({
      code: CloseCode.VERSION_MISMATCH,
      initiatedLocally: true,
      error: { code: ErrorCode.PROTOCOL_VERSION, message: 'protocol version mismatch: worker speaks v1, coordinator sent v2' },
    });
    expect(await fake.closes[0]).toBe(CloseCode.VERSION_MISMATCH);
    expect(parseMessage(fake.received[0])).toMatchObject({ kind: 'error', code: ErrorCode.PROTOCOL_VERSION, replyTo: 'msg-welcome-0001' });
  });

  it('reports an error frame sent just before a close by a peer', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => SUBPROTOCOL });
    await new Promise<void>((resolve) => wss.once('listening', resolve));
    cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
    wss.on('connection', (ws) => {
      ws.send(encodeMessage(makeErrorFrame(new ProtocolError(ErrorCode.MODEL_MISMATCH, 'model sha256 differs'))));
      ws.close(CloseCode.POLICY, 'model mismatch');
    });
    const t = await connectWs(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
    expect(await t.closed).toMatchObject({ code: 1008, reason: 'model mismatch', error: { code: ErrorCode.MODEL_MISMATCH, message: 'model sha256 differs' } });
  });

  it('treats a coordinator that stops pinging as a dead link (4002)', async () => {
    const server = await coordinator({ pingIntervalMs: 60_000 });
    const started = Date.now();
    const t = await connectWs(server.url, { pingTimeoutMs: 200 });
    const event = await t.closed;
    expect(event).toMatchObject({ code: CloseCode.HEARTBEAT_TIMEOUT, initiatedLocally: true, error: { code: ErrorCode.TIMEOUT } });
    expect(event.reason).toMatch(/no ping from the coordinator/);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(isReconnectable(event.code)).toBe(true);
  });

  it('stays up through a silence longer than its patience while the coordinator pings', async () => {
    const server = await coordinator({ pingIntervalMs: 100, pongTimeoutMs: 1000 });
    const t = await connectWs(server.url, { pingTimeoutMs: 1000 });
    // No frames at all for 2.5 x the patience: only the pings can keep the link alive. (A wait to prove that
    // nothing happens, not a synchronisation.)
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(t.isOpen).toBe(true);
    const echoed = new Promise<Message>((resolve) => t.onMessage(resolve));
    await t.send(sampleMessages().stop);
    expect((await echoed).kind).toBe('stop');
    t.close();
  });

  it('reads the reason of a refused upgrade and does not retry it', async () => {
    const http: Server = createHttpServer();
    http.on('upgrade', (_req, socket) => {
      const body = 'protocol version mismatch: v9 only';
      socket.end(
        `HTTP/1.1 400 Bad Request\r\nConnection: close\r\nx-swarmtune-error-code: E_PROTOCOL_VERSION\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => http.close(() => resolve())));
    const retries: RetryInfo[] = [];
    const attempt = connectWs(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`, {
      reconnect: { initialDelayMs: 1, maxAttempts: 5 },
      onRetry: (r) => retries.push(r),
    });
    await expect(attempt).rejects.toBeInstanceOf(ProtocolError);
    await expect(attempt).rejects.toMatchObject({ code: ErrorCode.PROTOCOL_VERSION, message: expect.stringMatching(/HTTP 400.*protocol version mismatch/) });
    expect(retries).toHaveLength(0);
  });

  it('fails with E_CONNECT_FAILED when nothing listens', async () => {
    const port = await freePort();
    await expect(connectWs(`ws://127.0.0.1:${port}`)).rejects.toMatchObject({
      code: ErrorCode.CONNECT_FAILED,
      message: expect.stringMatching(/ECONNREFUSED/),
    });
    await expect(connectWs('not a url')).rejects.toMatchObject({ code: ErrorCode.CONNECT_FAILED });
  });
});

describe('connectWithRetry', () => {
  it('waits for a coordinator that starts after the worker', async () => {
    const port = await freePort();
    const retries: RetryInfo[] = [];
    let starting: Promise<WsServer> | undefined;
    const t = await connectWithRetry(`ws://127.0.0.1:${port}`, {
      reconnect: { initialDelayMs: 10, maxDelayMs: 50, maxAttempts: 50 },
      onRetry: (info) => {
        retries.push(info);
        starting ??= coordinator({ port });
      },
    });
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(retries[0]).toMatchObject({ attempt: 1, error: { code: ErrorCode.CONNECT_FAILED } });
    const echoed = new Promise<Message>((resolve) => t.onMessage(resolve));
    await t.send(sampleMessages().hello);
    expect((await echoed).kind).toBe('hello');
    t.close();
  });

  it('gives up after maxAttempts, naming the count', async () => {
    const port = await freePort();
    const retries: RetryInfo[] = [];
    const attempt = connectWithRetry(`ws://127.0.0.1:${port}`, {
      reconnect: { initialDelayMs: 1, maxDelayMs: 2, maxAttempts: 3 },
      onRetry: (r) => retries.push(r),
    });
    await expect(attempt).rejects.toMatchObject({ code: ErrorCode.CONNECT_FAILED, message: expect.stringMatching(/after 3 attempts/) });
    expect(retries.map((r) => r.attempt)).toEqual([1, 2]);
  });

  it('stops when its signal aborts', async () => {
    const port = await freePort();
    const controller = new AbortController();
    const attempt = connectWithRetry(`ws://127.0.0.1:${port}`, {
      reconnect: { initialDelayMs: 60_000, maxAttempts: 5 },
      signal: controller.signal,
      onRetry: () => controller.abort(),
    });
    await expect(attempt).rejects.toMatchObject({ code: ErrorCode.CONNECT_FAILED, message: expect.stringMatching(/cancelled/) });
  });
});
