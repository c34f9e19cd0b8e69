/**
 * Hostile frames at the coordinator's WebSocket server (RELIABILITY.md S6, S7, S9), over real sockets on loopback:
 * an oversized message is closed with 1009 before it is buffered whole, a flood of unfinished fragments with 1008,
 * prototype-pollution keys are refused at the gate; honest connections on the same server keep working.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { encode } from 'msgpackr';
import { startWsServer, type ServerConnection, type WsServer } from '../../coordinator/transport-ws.js';
import { connectWs } from '../../worker/transport-ws.js';
import { SUBPROTOCOL, MsgKind, type Message } from '../../shared/protocol/messages.js';
import { makeMessage } from '../../shared/protocol/build.js';

const MAX_PAYLOAD_BYTES = 1 << 20;
let server: WsServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A server whose connections echo every message back, and a log of what each connection received. */
async function echoServer(): Promise<{ server: WsServer; received: Message[]; connections: ServerConnection[] }> {
  const received: Message[] = [];
  const connections: ServerConnection[] = [];
  const started = await startWsServer({
    port: 0,
    maxPayloadBytes: MAX_PAYLOAD_BYTES,
    onConnection: (connection) => {
      connections.push(connection);
      connection.onMessage((msg) => {
        received.push(msg);
        void connection.send(msg);
      });
    },
  });
  server = started;
  return { server: started, received, connections };
}

function rawClient(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, SUBPROTOCOL, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function closeCodeOf(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

/** An honest round trip through the same server: a stop frame out and back. */
async function honestRoundTrip(url: string): Promise<void> {
  const transport = await connectWs(url);
  const echoed = new Promise<Message>((resolve) => transport.onMessage(resolve));
  await transport.send(makeMessage(MsgKind.STOP, { reason: 'ping' }));
  expect((await echoed).kind).toBe(MsgKind.STOP);
  transport.close(1000, 'done');
}

describe('hostile frames at the coordinator', () => {
  it('S6: an oversized message is closed with 1009 without buffering it whole; honest peers are unaffected', async () => {
    const { server } = await echoServer();
    const rssBefore = process.memoryUsage().rss;
    const attacker = await rawClient(server.url);
    const closed = closeCodeOf(attacker);
    attacker.send(Buffer.alloc(MAX_PAYLOAD_BYTES * 4, 7));
    expect(await closed).toBe(1009);
    // The attacker's own 4 MiB buffer is in this process too; the server must not have buffered it again in full.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(MAX_PAYLOAD_BYTES * 4 + 1.5 * MAX_PAYLOAD_BYTES + 16 * 2 ** 20);
    await honestRoundTrip(server.url);
  });

  it('S7: a flood of one-byte continuation fragments without FIN is closed with 1008 on every attacking socket', async () => {
    const { server } = await echoServer();
    const heapBefore = process.memoryUsage().heapUsed;
    const attackers = await Promise.all(Array.from({ length: 10 }, () => rawClient(server.url)));
    const codes = attackers.map(closeCodeOf);
    for (const ws of attackers) for (let i = 0; i < 16_400; i++) ws.send(Buffer.of(i & 255), { fin: false, binary: true });
    expect(await Promise.all(codes)).toEqual(Array(10).fill(1008));
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 2 ** 20);
    await honestRoundTrip(server.url);
  });

  it('S9: frames with __proto__ / constructor / prototype keys at any depth are refused and pollute nothing', async () => {
    const { server, received } = await echoServer();
    const attacker = await rawClient(server.url);
    const keys = ['__proto__', 'constructor', 'prototype'];
    for (let i = 0; i < 1_000; i++) {
      const key = keys[i % 3];
      const nested: Record<string, unknown> = { polluted: true };
      let frame: Record<string, unknown> = { v: 1, kind: 'stop', id: `x${i}`, reason: 'r' };
      // msgpackr would not write a literal __proto__ own key from an object literal: build it with defineProperty.
      const hostile: Record<string, unknown> = {};
      Object.defineProperty(hostile, key, { value: nested, enumerable: true });
      frame = i % 2 === 0 ? { ...frame, extra: hostile } : Object.assign(Object.create(null), frame, { extra: { deeper: hostile } });
      attacker.send(encode(frame));
    }
    await honestRoundTrip(server.url);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(received.every((msg) => msg.kind === MsgKind.STOP && (msg as { reason: string }).reason === 'ping')).toBe(true);
    attacker.close();
  });
});
