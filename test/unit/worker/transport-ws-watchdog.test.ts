/**
 * The worker's ping watchdog (worker/transport-ws.ts): it declares the link dead after `pingTimeoutMs` of
 * silence, but a timer that fires late because a step blocked the event loop first reads the pings queued
 * meanwhile; `extendPingTimeout` (from the coordinator's heartbeat settings in `welcome`) only ever raises it.
 * Real sockets on 127.0.0.1.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startWsServer, type WsServer } from '../../../coordinator/transport-ws.js';
import { ErrorCode } from '../../../shared/errors.js';
import { CloseCode } from '../../../shared/protocol/close-codes.js';
import type { Message } from '../../../shared/protocol/messages.js';
import type { Transport } from '../../../shared/transport.js';
import { blockEventLoop } from '../../../worker/fault-injection.js';
import { connectWs, extendPingTimeout } from '../../../worker/transport-ws.js';
import { sampleMessages } from '../../fixtures/frames/samples.js';

const servers: WsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function echoServer(pingIntervalMs: number): Promise<WsServer> {
  const server = await startWsServer({ port: 0, pingIntervalMs, pongTimeoutMs: 60_000, onConnection: (conn) => conn.onMessage((msg) => conn.send(msg)) });
  servers.push(server);
  return server;
}

function nextMessage(t: Transport): Promise<Message> {
  return new Promise((resolve) => {
    const off = t.onMessage((m) => {
      off();
      resolve(m);
    });
  });
}

describe('worker ping watchdog', () => {
  it('S3: a loop blocked past pingTimeoutMs does not cut a link whose pings are queued unread', async () => {
    const server = await echoServer(100);
    const client = await connectWs(server.url, { pingTimeoutMs: 300 });
    // Longer than the watchdog: its timer is overdue when the loop resumes, with the server's pings in the socket.
    blockEventLoop(1_000);
    const echoed = nextMessage(client).then((msg) => `echoed ${msg.kind}`);
    const closed = client.closed.then((event) => `closed ${event.code}: ${event.reason}`);
    await client.send(sampleMessages().stop).catch(() => undefined);
    expect(await Promise.race([echoed, closed])).toBe('echoed stop');
    expect(client.isOpen).toBe(true);
    client.close();
  });

  it('S3: extendPingTimeout raises the patience and never lowers it; silence past it closes 4002', async () => {
    const server = await echoServer(60_000);
    const lowered = await connectWs(server.url, { pingTimeoutMs: 200 });
    extendPingTimeout(lowered, 50);
    const loweredEvent = await lowered.closed;
    expect(loweredEvent).toMatchObject({ code: CloseCode.HEARTBEAT_TIMEOUT, error: { code: ErrorCode.TIMEOUT } });
    expect(loweredEvent.reason).toMatch(/within 200 ms/);

    const raised = await connectWs(server.url, { pingTimeoutMs: 200 });
    const started = performance.now();
    extendPingTimeout(raised, 600);
    const raisedEvent = await raised.closed;
    expect(performance.now() - started).toBeGreaterThanOrEqual(580);
    expect(raisedEvent).toMatchObject({ code: CloseCode.HEARTBEAT_TIMEOUT });
    expect(raisedEvent.reason).toMatch(/within 600 ms/);
  });
});
