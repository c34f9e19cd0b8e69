import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startWsServer, type ServerConnection, type WsServer, type WsServerOptions } from '../../../coordinator/transport-ws.js';
import { encodeMessage } from '../../../shared/codec.js';
import { ErrorCode } from '../../../shared/errors.js';
import { CloseCode } from '../../../shared/protocol/close-codes.js';
import type { ErrorFrame, Message } from '../../../shared/protocol/messages.js';
import { SUBPROTOCOL } from '../../../shared/protocol/messages.js';
import { parseMessage } from '../../../shared/protocol/parse.js';
import type { Transport, TransportCloseEvent } from '../../../shared/transport.js';
import { connectWs } from '../../../worker/transport-ws.js';
import { sampleList, sampleMessages } from '../../fixtures/frames/samples.js';

const servers: WsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A server whose connections echo every message back, with a queue of accepted connections. */
async function echoServer(extra: Partial<WsServerOptions> = {}) {
  const connections: ServerConnection[] = [];
  const waiters: ((c: ServerConnection) => void)[] = [];
  const server = await startWsServer({
    port: 0,
    ...extra,
    onConnection: (conn) => {
      conn.onMessage((msg) => conn.send(msg));
      const waiter = waiters.shift();
      if (waiter) waiter(conn);
      else connections.push(conn);
    },
  });
  servers.push(server);
  const nextConnection = (): Promise<ServerConnection> =>
    connections.length > 0 ? Promise.resolve(connections.shift()!) : new Promise((resolve) => waiters.push(resolve));
  return { server, nextConnection };
}

function nextMessage(t: Transport): Promise<Message> {
  return new Promise((resolve) => {
    const off = t.onMessage((m) => {
      off();
      resolve(m);
    });
  });
}

/** A raw `ws` client, for frames the real client would never send. */
function rawClient(url: string, options: { protocols?: string[]; autoPong?: boolean } = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, options.protocols ?? [SUBPROTOCOL], { autoPong: options.autoPong ?? true });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** What a raw client sees before its connection closes: the frames and the close code. */
function rawOutcome(ws: WebSocket): Promise<{ frames: Uint8Array[]; code: number; reason: string }> {
  const frames: Uint8Array[] = [];
  ws.on('message', (data) => frames.push(new Uint8Array(data as Buffer)));
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ frames, code, reason: reason.toString() })));
}

/** The status, refusal-code header and body of a refused upgrade. */
function refusedUpgrade(url: string, protocols: string[]): Promise<{ status: number; code: string | undefined; body: string }> {
  const ws = new WebSocket(url, protocols);
  return new Promise((resolve, reject) => {
    ws.once('open', () => reject(new Error('upgrade was accepted')));
    ws.once('error', () => {});
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, code: res.headers['x-swarmtune-error-code'] as string | undefined, body });
        req.destroy();
      });
    });
  });
}

describe('startWsServer', () => {
  it('listens on 127.0.0.1 with a free port and round-trips every kind', async () => {
    const { server } = await echoServer();
    expect(server.url).toBe(`ws://127.0.0.1:${server.port}`);
    expect(server.port).toBeGreaterThan(0);
    const client = await connectWs(server.url);
    for (const msg of sampleList()) {
      const echoed = nextMessage(client);
      await client.send(msg);
      expect(await echoed).toEqual(msg);
    }
    client.close();
  });

  it('hands over the remote address and closes cleanly both ways', async () => {
    const { server, nextConnection } = await echoServer();
    const client = await connectWs(server.url);
    const conn = await nextConnection();
    expect(conn.remoteAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    client.close(CloseCode.NORMAL, 'done');
    const [serverSide, clientSide] = await Promise.all([conn.closed, client.closed]);
    expect(serverSide).toMatchObject({ code: 1000, reason: 'done', initiatedLocally: false });
    expect(clientSide).toMatchObject({ code: 1000, initiatedLocally: true });
  });

  it('answers garbage with an error frame and 1007 while an honest connection keeps working', async () => {
    const { server, nextConnection } = await echoServer();
    const honest = await connectWs(server.url);
    await nextConnection();
    const bad = await rawClient(server.url);
    const badServerSide = await nextConnection();
    const outcome = rawOutcome(bad);
    bad.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    const { frames, code } = await outcome;
    expect(code).toBe(CloseCode.INVALID_DATA);
    expect(frames).toHaveLength(1);
    const reply = parseMessage(frames[0]) as ErrorFrame;
    expect(reply).toMatchObject({ kind: 'error', code: ErrorCode.PROTOCOL_MALFORMED, retryable: false });
    expect(reply.message).toMatch(/malformed frame/);
    expect(await badServerSide.closed).toMatchObject({ code: 1007, initiatedLocally: true, error: { code: ErrorCode.PROTOCOL_MALFORMED } });

    const echoed = nextMessage(honest);
    await honest.send(sampleMessages().hello);
    expect(await echoed).toEqual(sampleMessages().hello);
    honest.close();
  });

  it('closes 1008 on an unknown kind and on a text frame', async () => {
    const { server } = await echoServer();
    const unknown = await rawClient(server.url);
    const unknownOutcome = rawOutcome(unknown);
    unknown.send(encodeMessage({ v: 1, kind: 'train_request', id: 'x1' } as unknown as Message));
    const u = await unknownOutcome;
    expect(u.code).toBe(CloseCode.POLICY);
    expect(parseMessage(u.frames[0])).toMatchObject({ code: ErrorCode.PROTOCOL_UNKNOWN_KIND, replyTo: 'x1' });

    const text = await rawClient(server.url);
    const textOutcome = rawOutcome(text);
    text.send('{"v":1,"kind":"hello"}');
    expect((await textOutcome).code).toBe(CloseCode.POLICY);
  });

  it('answers a frame of another version with an error naming both versions and 4001', async () => {
    const { server } = await echoServer();
    const ws = await rawClient(server.url);
    const outcome = rawOutcome(ws);
    ws.send(encodeMessage({ ...sampleMessages().hello, v: 2 } as unknown as Message));
    const { frames, code } = await outcome;
    expect(code).toBe(CloseCode.VERSION_MISMATCH);
    expect(parseMessage(frames[0])).toMatchObject({
      kind: 'error',
      code: ErrorCode.PROTOCOL_VERSION,
      message: 'protocol version mismatch: coordinator speaks v1, worker sent v2',
      replyTo: 'msg-hello-0001',
    });
  });

  it('refuses a client without the sub-protocol in the upgrade, with a readable reason', async () => {
    const { server } = await echoServer();
    const none = await refusedUpgrade(server.url, []);
    expect(none).toMatchObject({ status: 400, code: ErrorCode.PROTOCOL_MALFORMED });
    expect(none.body).toMatch(/sub-protocol swarmtune\.v1 required; client offered none/);
    const other = await refusedUpgrade(server.url, ['chat']);
    expect(other.body).toMatch(/client offered chat/);
    const newer = await refusedUpgrade(server.url, ['swarmtune.v2']);
    expect(newer).toMatchObject({ status: 400, code: ErrorCode.PROTOCOL_VERSION });
    expect(newer.body).toMatch(/coordinator speaks swarmtune\.v1.*client offered swarmtune\.v2/);
  });

  it('answers plain HTTP with 426', async () => {
    const { server } = await echoServer();
    const status = await new Promise<number>((resolve, reject) => {
      request({ host: '127.0.0.1', port: server.port, path: '/' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    expect(status).toBe(426);
  });

  it('closes 1009 on a frame over maxPayloadBytes and stays up', async () => {
    const { server, nextConnection } = await echoServer({ maxPayloadBytes: 1024 });
    const client = await connectWs(server.url);
    const conn = await nextConnection();
    const huge = { ...sampleMessages().stop, reason: 'x'.repeat(4096) };
    await client.send(huge).catch(() => {});
    expect((await conn.closed).code).toBe(CloseCode.TOO_BIG);
    expect((await client.closed).code).toBe(CloseCode.TOO_BIG);
    const again = await connectWs(server.url);
    const echoed = nextMessage(again);
    await again.send(sampleMessages().stop);
    expect(await echoed).toEqual(sampleMessages().stop);
    again.close();
  });

  it('terminates a client that stops answering pings within about 2 x interval (200/200 ms)', async () => {
    const { server, nextConnection } = await echoServer({ pingIntervalMs: 200, pongTimeoutMs: 200 });
    const healthy = await connectWs(server.url);
    await nextConnection();
    const started = Date.now();
    const mute = await rawClient(server.url, { autoPong: false });
    const muteConn = await nextConnection();
    const event: TransportCloseEvent = await muteConn.closed;
    const elapsedMs = Date.now() - started;
    expect(event).toMatchObject({ code: CloseCode.HEARTBEAT_TIMEOUT, initiatedLocally: true, error: { code: ErrorCode.TIMEOUT } });
    expect(event.reason).toMatch(/no pong/);
    expect(elapsedMs).toBeGreaterThanOrEqual(380);
    expect(elapsedMs).toBeLessThan(1500);
    mute.terminate();

    // The healthy client answered the same pings and is still served.
    expect(healthy.isOpen).toBe(true);
    const echoed = nextMessage(healthy);
    await healthy.send(sampleMessages().stop);
    expect(await echoed).toEqual(sampleMessages().stop);
    healthy.close();
  });

  it('closes a connection whose onConnection throws (1011) and keeps accepting', async () => {
    let calls = 0;
    const server = await startWsServer({
      port: 0,
      onConnection: (conn) => {
        calls++;
        if (calls === 1) throw new Error('registry full');
        conn.onMessage((m) => conn.send(m));
      },
    });
    servers.push(server);
    const first = await connectWs(server.url);
    const closed = await first.closed;
    expect(closed.code).toBe(CloseCode.INTERNAL);
    expect(closed.reason).toMatch(/registry full/);
    const second = await connectWs(server.url);
    const echoed = nextMessage(second);
    await second.send(sampleMessages().stop);
    expect((await echoed).kind).toBe('stop');
    second.close();
  });

  it('close() says goodbye with 1001 and is idempotent', async () => {
    const { server } = await echoServer();
    const client = await connectWs(server.url);
    await Promise.all([server.close(), server.close()]);
    expect(await client.closed).toMatchObject({ code: CloseCode.GOING_AWAY, reason: 'coordinator shutting down', initiatedLocally: false });
    await expect(connectWs(server.url)).rejects.toMatchObject({ code: ErrorCode.CONNECT_FAILED });
  });
});
