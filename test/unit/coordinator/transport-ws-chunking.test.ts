/**
 * Chunked transfers and backpressure over real loopback WebSockets: the coordinator's server, the worker's
 * client, and raw `ws` clients for what an honest peer would never send (bad checksums, cut transfers).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startWsServer, type ServerConnection, type WsServer, type WsServerOptions } from '../../../coordinator/transport-ws.js';
import { blobToFloat32, decodeFrame, encodeMessage, float32Blob } from '../../../shared/codec.js';
import { ErrorCode } from '../../../shared/errors.js';
import { makeMessage } from '../../../shared/protocol/build.js';
import { encodeChunkFrame } from '../../../shared/protocol/chunking.js';
import { CloseCode } from '../../../shared/protocol/close-codes.js';
import type { Message } from '../../../shared/protocol/messages.js';
import { SUBPROTOCOL } from '../../../shared/protocol/messages.js';
import type { SocketTransport } from '../../../shared/protocol/socket-transport.js';
import type { Transport } from '../../../shared/transport.js';
import { connectWs } from '../../../worker/transport-ws.js';
import { sampleMessages } from '../../fixtures/frames/samples.js';

const CHUNK = 64 * 1024;
const servers: WsServer[] = [];
const clients: WebSocket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function server(extra: Partial<WsServerOptions> = {}, echo = true) {
  const connections: ServerConnection[] = [];
  const waiters: ((c: ServerConnection) => void)[] = [];
  const received: Message[] = [];
  const srv = await startWsServer({
    port: 0,
    chunkSizeBytes: CHUNK,
    maxPayloadBytes: 2 * CHUNK,
    ...extra,
    onConnection: (conn) => {
      conn.onMessage((msg) => {
        received.push(msg);
        if (echo) return conn.send(msg);
      });
      const waiter = waiters.shift();
      if (waiter) waiter(conn);
      else connections.push(conn);
    },
  });
  servers.push(srv);
  const nextConnection = (): Promise<ServerConnection> =>
    connections.length > 0 ? Promise.resolve(connections.shift()!) : new Promise((resolve) => waiters.push(resolve));
  return { srv, nextConnection, received };
}

function nextMessage(t: Transport): Promise<Message> {
  return new Promise((resolve) => {
    const off = t.onMessage((m) => {
      off();
      resolve(m);
    });
  });
}

function rawClient(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, [SUBPROTOCOL]);
  clients.push(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function rawOutcome(ws: WebSocket): Promise<{ frames: unknown[]; code: number }> {
  const frames: unknown[] = [];
  ws.on('message', (data) => frames.push(decodeFrame(new Uint8Array(data as Buffer))));
  return new Promise((resolve) => ws.once('close', (code) => resolve({ frames, code })));
}

function bigGradResult(n: number): Message {
  const values = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
  const stats = { lossSum: 1, numSamples: 1, numLossItems: 1, numTokens: 1, numCorrect: 0 };
  return makeMessage('grad_result', { replyTo: 'r1', step: 3, grads: [float32Blob('w', [n], values)], stats, computeMs: 1 });
}

/** The chunk frames of one message, as the transport would send them. */
function chunkFrames(msg: Message, transferId: number, chunk = CHUNK): Uint8Array[] {
  const bytes = encodeMessage(msg);
  const count = Math.ceil(bytes.byteLength / chunk);
  return Array.from({ length: count }, (_, i) => encodeChunkFrame(transferId, i, count, bytes.byteLength, bytes.subarray(i * chunk, (i + 1) * chunk)));
}

describe('chunked transfers over WebSockets', () => {
  it('round-trips a message many times the chunk size, both ways, bit-exact', async () => {
    const { srv } = await server();
    const client = await connectWs(srv.url, { chunkSizeBytes: CHUNK, maxPayloadBytes: 2 * CHUNK });
    const msg = bigGradResult(250_000); // 1 MB of tensor: 16 chunks each way
    const echoed = nextMessage(client);
    await client.send(msg);
    const back = await echoed;
    if (back.kind !== 'grad_result' || msg.kind !== 'grad_result') throw new Error('expected grad_result');
    expect(blobToFloat32(back.grads[0])).toEqual(blobToFloat32(msg.grads[0]));
    expect(back.id).toBe(msg.id);
    // A small frame sent right after a chunked one arrives after it.
    const order: string[] = [];
    const done = new Promise<void>((resolve) =>
      client.onMessage((m) => {
        order.push(m.kind);
        if (order.length === 2) resolve();
      }),
    );
    void client.send(msg);
    void client.send(sampleMessages().stop);
    await done;
    expect(order).toEqual(['grad_result', 'stop']);
    client.close();
  });

  it('reuses a released reassembly buffer for the next transfer, and only a released one', async () => {
    const { srv, received, nextConnection } = await server({}, false);
    const client = await connectWs(srv.url, { chunkSizeBytes: CHUNK, maxPayloadBytes: 2 * CHUNK });
    const conn = (await nextConnection()) as ServerConnection & SocketTransport;
    const arrival = () => new Promise<Message>((resolve) => { const off = conn.onMessage((m) => { off(); resolve(m); }); });
    const bufferOf = (m: Message) => (m.kind === 'grad_result' ? m.grads[0].data.buffer : undefined);
    let next = arrival();
    await client.send(bigGradResult(100_000));
    const first = await next;
    next = arrival();
    await client.send(bigGradResult(100_000));
    const second = await next;
    expect(bufferOf(second)).not.toBe(bufferOf(first));
    conn.release(second);
    next = arrival();
    const third = bigGradResult(90_000);
    await client.send(third);
    const got = await next;
    expect(bufferOf(got)).toBe(bufferOf(second));
    if (got.kind !== 'grad_result' || third.kind !== 'grad_result') throw new Error('expected grad_result');
    expect(blobToFloat32(got.grads[0])).toEqual(blobToFloat32(third.grads[0]));
    expect(received).toHaveLength(3);
    client.close();
  });

  it('interleaves concurrent transfers from one peer and delivers each whole', async () => {
    const { srv, received, nextConnection } = await server({}, false);
    const ws = await rawClient(srv.url);
    const conn = await nextConnection();
    const a = bigGradResult(40_000);
    const b = bigGradResult(30_000);
    const ca = chunkFrames(a, 1);
    const cb = chunkFrames(b, 2);
    const both = new Promise<void>((resolve) => conn.onMessage(() => (received.length === 2 ? resolve() : undefined)));
    for (let i = 0; i < Math.max(ca.length, cb.length); i++) {
      if (ca[i]) ws.send(ca[i]);
      if (cb[i]) ws.send(cb[i]);
    }
    await both;
    expect(received.map((m) => m.id)).toEqual([b.id, a.id]);
  });

  it('answers a chunk with a bad CRC-32 with an error frame and 1007, delivering nothing', async () => {
    const { srv, received } = await server();
    const ws = await rawClient(srv.url);
    const outcome = rawOutcome(ws);
    const frames = chunkFrames(bigGradResult(40_000), 5);
    const bad = Uint8Array.from(frames[1]);
    bad[bad.length - 1] ^= 0xff; // flip a data byte: the header's CRC no longer matches
    ws.send(frames[0]);
    ws.send(bad);
    for (const f of frames.slice(2)) ws.send(f);
    const { frames: replies, code } = await outcome;
    expect(code).toBe(CloseCode.INVALID_DATA);
    expect(replies).toEqual([expect.objectContaining({ kind: 'error', code: ErrorCode.CHUNK_CHECKSUM })]);
    expect(received).toEqual([]);
  });

  it('discards a transfer cut after half its chunks: nothing delivered, its memory released', async () => {
    const { srv, received, nextConnection } = await server();
    const ws = await rawClient(srv.url);
    const conn = (await nextConnection()) as ServerConnection & SocketTransport;
    const frames = chunkFrames(bigGradResult(100_000), 6);
    const half = frames.slice(0, frames.length / 2);
    // A complete small frame after the half proves the halves were read before the cut.
    const marker = nextMessage(conn);
    for (const f of half) ws.send(f);
    ws.send(encodeMessage(sampleMessages().stop));
    await marker;
    expect(conn.reassemblyState.transfers).toBe(1);
    expect(conn.reassemblyState.bytes).toBeGreaterThan(400_000);
    ws.terminate();
    const event = await conn.closed;
    expect(event.initiatedLocally).toBe(false);
    expect(conn.reassemblyState).toEqual({ transfers: 0, bytes: 0 });
    expect(received.map((m) => m.kind)).toEqual(['stop']);
  });

  it('refuses a transfer over the reassembly cap with E_TRANSFER_LIMIT and 1008', async () => {
    const { srv, received } = await server({ reassembly: { maxReassemblyBytes: 200_000, maxConcurrentTransfers: 1 } });
    const ws = await rawClient(srv.url);
    const outcome = rawOutcome(ws);
    ws.send(chunkFrames(bigGradResult(100_000), 1)[0]);
    const { frames, code } = await outcome;
    expect(code).toBe(CloseCode.POLICY);
    expect(frames).toEqual([expect.objectContaining({ kind: 'error', code: ErrorCode.TRANSFER_LIMIT })]);
    expect(received).toEqual([]);

    const ws2 = await rawClient(srv.url);
    const outcome2 = rawOutcome(ws2);
    ws2.send(chunkFrames(bigGradResult(10_000), 1, 16 * 1024)[0]);
    ws2.send(chunkFrames(bigGradResult(10_000), 2, 16 * 1024)[0]);
    expect((await outcome2).code).toBe(CloseCode.POLICY);
  });

  it('S17: drops a peer that stops reading (4005, E_SEND_STALLED) with bounded queued bytes; others go on', async () => {
    const { srv, nextConnection } = await server(
      { highWaterMarkBytes: 256 * 1024, sendStallTimeoutMs: 300, maxQueuedSendBytes: 8 * 1024 * 1024 },
      false,
    );
    const stalled = await rawClient(srv.url);
    const conn = (await nextConnection()) as ServerConnection & SocketTransport;
    (stalled as unknown as { _socket: { pause(): void } })._socket.pause();
    const healthy = await connectWs(srv.url, { chunkSizeBytes: CHUNK, maxPayloadBytes: 2 * CHUNK });
    const healthyConn = await nextConnection();

    const msg = bigGradResult(1_000_000); // 4 MB per send
    let maxQueued = 0;
    const sink = conn as unknown as { sink: { bufferedAmount(): number } };
    const watch = setInterval(() => (maxQueued = Math.max(maxQueued, sink.sink.bufferedAmount())), 5);
    let sent = 0;
    let failure: unknown;
    try {
      for (let i = 0; i < 100; i++) {
        await conn.send(msg);
        sent++;
      }
    } catch (err) {
      failure = err;
    }
    clearInterval(watch);
    expect(failure).toMatchObject({ code: ErrorCode.CONNECTION_CLOSED });
    expect(sent).toBeLessThan(100);
    const event = await conn.closed;
    expect(event.code).toBe(CloseCode.SEND_STALLED);
    expect(event.error?.code).toBe(ErrorCode.SEND_STALLED);
    // Never more than the high-water mark plus one chunk frame queued in the process.
    expect(maxQueued).toBeLessThanOrEqual(256 * 1024 + CHUNK + 1024);

    const echoed = nextMessage(healthy);
    await healthyConn.send(sampleMessages().stop);
    expect((await echoed).kind).toBe('stop');
    healthy.close();
  });
});
