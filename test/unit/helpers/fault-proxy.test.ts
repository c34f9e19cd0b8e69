/**
 * The fault-injection proxy itself, over real TCP sockets on 127.0.0.1: pass-through with byte counts, per-chunk
 * delay (order kept), a cut after N bytes in either direction, a blackhole that forwards nothing and closes
 * nothing (half-open), healing back to pass-through, and close().
 */
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy, type ProxyLink } from '../../helpers/fault-proxy.js';

/** A target server that hands over each accepted socket and keeps what it reads. */
interface Target {
  readonly server: Server;
  readonly port: number;
  accepted(): Promise<{ socket: Socket; received: () => Buffer }>;
}

async function startTarget(): Promise<Target> {
  const queue: { socket: Socket; received: () => Buffer }[] = [];
  const waiting: ((v: { socket: Socket; received: () => Buffer }) => void)[] = [];
  const server = createServer((socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    const entry = { socket, received: () => Buffer.concat(chunks) };
    const w = waiting.shift();
    if (w) w(entry);
    else queue.push(entry);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    accepted: () => (queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((resolve) => waiting.push(resolve))),
  };
}

/** Resolves once `received()` holds at least `n` bytes (checked on each of `socket`'s data events). */
function untilReceived(socket: Socket, received: () => Buffer, n: number): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (received().length < n) return;
      socket.off('data', check);
      resolve();
    };
    socket.on('data', check);
    // The target's own data listener ran first for chunks already read.
    setImmediate(check);
  });
}

/** Reads from `socket` until `n` bytes have arrived in all. */
function readBytes(socket: Socket, sink: Buffer[], n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const all = Buffer.concat(sink);
      if (all.length < n) return false;
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve(all);
      return true;
    };
    const onData = (): void => void check();
    const onClose = (): void => {
      if (!check()) reject(new Error(`socket closed after ${Buffer.concat(sink).length} of ${n} bytes`));
    };
    if (check()) return;
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

let target: Target;
let proxy: FaultProxy;
const clients: Socket[] = [];

beforeEach(async () => {
  target = await startTarget();
  proxy = await startFaultProxy({ targetPort: target.port });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await proxy.close();
  await new Promise<void>((resolve) => target.server.close(() => resolve()));
});

/** Connects a client through the proxy; `sink` collects what it reads. */
async function dial(): Promise<{ client: Socket; sink: Buffer[]; link: ProxyLink; far: Socket; farReceived: () => Buffer }> {
  const index = proxy.links.length;
  const client = connect(proxy.port, '127.0.0.1');
  clients.push(client);
  client.on('error', () => undefined);
  const sink: Buffer[] = [];
  client.on('data', (c: Buffer) => sink.push(c));
  await once(client, 'connect');
  const link = await proxy.link(index);
  const { socket: far, received: farReceived } = await target.accepted();
  return { client, sink, link, far, farReceived };
}

describe('fault proxy', () => {
  it('passes bytes through both ways and counts them', async () => {
    const { client, sink, link, far, farReceived } = await dial();
    client.write('hello coordinator');
    far.write(Buffer.alloc(100_000, 7));
    await readBytes(client, sink, 100_000);
    await untilReceived(far, farReceived, 17);
    expect(farReceived().toString()).toBe('hello coordinator');
    expect(link.bytes.up).toEqual({ received: 17, forwarded: 17 });
    expect(link.bytes.down).toEqual({ received: 100_000, forwarded: 100_000 });
    expect(link.mode).toBe('pass');
  });

  it('delays every chunk by the set time and keeps their order', async () => {
    const { client, sink, link, far } = await dial();
    const delayMs = 120;
    link.delay(delayMs);
    const sentAt = performance.now();
    far.write('a');
    far.write('b');
    far.write('c');
    const got = await readBytes(client, sink, 3);
    const elapsedMs = performance.now() - sentAt;
    expect(got.toString()).toBe('abc');
    expect(elapsedMs).toBeGreaterThanOrEqual(delayMs - 2);
    link.passThrough();
    const before = performance.now();
    far.write('d');
    await readBytes(client, sink, 4);
    expect(performance.now() - before).toBeLessThan(delayMs);
  });

  it('cuts after exactly N bytes upstream: the target gets N bytes then the end, the client is closed', async () => {
    const { client, link, far, farReceived } = await dial();
    link.cutAfter('up', 1000);
    const farEnded = once(far, 'end');
    const clientClosed = once(client, 'close');
    client.write(Buffer.alloc(700, 1));
    client.write(Buffer.alloc(700, 2));
    await farEnded;
    await clientClosed;
    expect(farReceived().length).toBe(1000);
    expect(link.bytes.up.forwarded).toBe(1000);
    expect(link.mode).toBe('cut');
    await link.closed;
  });

  it('cuts after exactly N bytes downstream, counted from the moment it is armed', async () => {
    const { client, sink, link, far } = await dial();
    far.write(Buffer.alloc(50, 9));
    await readBytes(client, sink, 50);
    link.cutAfter('down', 30);
    const ended = once(client, 'end');
    far.write(Buffer.alloc(64_000, 3));
    await ended;
    expect(Buffer.concat(sink).length).toBe(80);
    expect(link.bytes.down.forwarded).toBe(80);
    await link.closed;
  });

  it('blackholes both ways without closing either side, even when the target goes away', async () => {
    const { client, sink, link, far, farReceived } = await dial();
    client.write('ping');
    await untilReceived(far, farReceived, 4);
    link.blackhole();
    expect(link.mode).toBe('blackhole');
    client.write('lost-up');
    far.write('lost-down!');
    await link.whenReceived('up', 11);
    await link.whenReceived('down', 10);
    expect(link.bytes.up.forwarded).toBe(4);
    expect(link.bytes.down.forwarded).toBe(0);
    expect(Buffer.concat(sink).length).toBe(0);

    // The far side closes: a half-open partition means the client hears nothing of it.
    let clientSawEnd = false;
    client.once('end', () => (clientSawEnd = true));
    far.destroy();
    await link.targetClosed;
    client.write('still-there');
    await link.whenReceived('up', 22);
    expect(clientSawEnd).toBe(false);
    expect(client.destroyed).toBe(false);
    expect(farReceived().toString()).toBe('ping');
  });

  it('heals a blackhole back to pass-through', async () => {
    const { client, sink, link, far } = await dial();
    link.blackhole();
    far.write('dropped');
    await link.whenReceived('down', 7);
    link.passThrough();
    far.write('kept');
    const got = await readBytes(client, sink, 4);
    expect(got.toString()).toBe('kept');
  });

  it('refuses a negative or fractional cut', async () => {
    const { link } = await dial();
    expect(() => link.cutAfter('up', -1)).toThrow(RangeError);
    expect(() => link.cutAfter('down', 1.5)).toThrow(/byte count/);
    expect(() => link.delay(-5)).toThrow(RangeError);
  });

  it('close() ends every link and stops listening', async () => {
    const { client } = await dial();
    const closed = once(client, 'close');
    await proxy.close();
    await closed;
    const refused = connect(proxy.port, '127.0.0.1');
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');
  });
});
