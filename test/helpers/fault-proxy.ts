/**
 * A small TCP fault-injection proxy for tests: it sits between a worker and the coordinator on 127.0.0.1 and,
 * per connection and switchable at any time, passes bytes through, delays each chunk, cuts the connection after
 * N more bytes in one direction, or blackholes the link (stops forwarding both ways and never closes either side:
 * the half-open partition of RELIABILITY.md S3, no FIN, no RST). It counts the bytes of every link.
 *
 * Directions: `up` is client → target (worker → coordinator), `down` is target → client.
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

/** A direction of travel through the proxy. */
export type ProxyDirection = 'up' | 'down';

/** What a link does with the bytes it receives, as reported by {@link ProxyLink.mode}. */
export type ProxyMode = 'pass' | 'delay' | 'blackhole' | 'cut';

/** Byte counts of one direction of a link. */
export interface DirectionBytes {
  /** Bytes the proxy read from the sending side. */
  readonly received: number;
  /** Bytes the proxy wrote to the receiving side (less than `received` under a blackhole or a cut). */
  readonly forwarded: number;
}

/** One proxied connection (a client socket and its socket to the target). */
export interface ProxyLink {
  /** 0 for the first connection the proxy accepted, then 1, 2, ... */
  readonly index: number;
  /** Current behaviour. */
  readonly mode: ProxyMode;
  /** Byte counts so far, per direction. */
  readonly bytes: Readonly<Record<ProxyDirection, DirectionBytes>>;
  /** Resolves once both sockets of the link are closed. */
  readonly closed: Promise<void>;
  /** Resolves once the socket to the client is closed. */
  readonly clientClosed: Promise<void>;
  /** Resolves once the socket to the target is closed. */
  readonly targetClosed: Promise<void>;
  /** Resolves once the proxy has read at least `totalBytes` bytes in `direction` since the link opened. */
  whenReceived(direction: ProxyDirection, totalBytes: number): Promise<void>;
  /** Forwards every chunk as it comes (the default). Pending delayed chunks still go out in order. */
  passThrough(): void;
  /** Holds each chunk, in both directions, `delayMs` ms before forwarding it (order kept). */
  delay(delayMs: number): void;
  /**
   * Forwards `bytes` more bytes in `direction` (counted from now; a chunk is split at the boundary), then
   * closes both sockets (FIN after the partial data). The other direction keeps flowing until then.
   * @throws RangeError when `bytes` is negative or not an integer
   */
  cutAfter(direction: ProxyDirection, bytes: number): void;
  /** Stops forwarding in both directions without closing anything; pending delayed chunks are dropped. */
  blackhole(): void;
  /**
   * Stops forwarding in `direction` only (its bytes, FIN and close are swallowed; pending delayed chunks of that
   * direction dropped); the other direction keeps flowing: a one-sided partition (RELIABILITY.md S4).
   */
  blackholeOneWay(direction: ProxyDirection): void;
  /** Destroys both sockets now (FIN; RST where `reset` is true). Idempotent. */
  destroy(reset?: boolean): void;
}

/** A listening proxy. */
export interface FaultProxy {
  /** Port the proxy listens on (127.0.0.1). */
  readonly port: number;
  /** `ws://127.0.0.1:<port>`, for WebSocket clients. */
  readonly url: string;
  /** Every link accepted so far, closed ones included, in accept order. */
  readonly links: readonly ProxyLink[];
  /** Resolves with link number `index` once it has been accepted. */
  link(index: number): Promise<ProxyLink>;
  /** Destroys every link and stops listening. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** Port of the target on `targetHost`. */
  readonly targetPort: number;
  /** @default '127.0.0.1' */
  readonly targetHost?: string;
}

interface Pending {
  readonly timer: NodeJS.Timeout;
}

/**
 * Starts a proxy on 127.0.0.1 (port 0) towards `targetHost:targetPort`.
 * @throws Error (from `listen`) when no port can be bound
 */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const targetHost = options.targetHost ?? '127.0.0.1';
  const links: ProxyLink[] = [];
  const sockets = new Set<Socket>();
  const waiters = new Map<number, ((link: ProxyLink) => void)[]>();

  const server: Server = createServer((client) => {
    const link = createLink(links.length, client, connect(options.targetPort, targetHost), sockets);
    links.push(link);
    for (const resolve of waiters.get(link.index) ?? []) resolve(link);
    waiters.delete(link.index);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;

  return {
    port,
    url: `ws://127.0.0.1:${port}`,
    links,
    link: (index) =>
      links[index] ? Promise.resolve(links[index]) : new Promise((resolve) => waiters.set(index, [...(waiters.get(index) ?? []), resolve])),
    close: () => {
      closing ??= (async () => {
        const closedServer = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const link of links) link.destroy();
        for (const socket of sockets) socket.destroy();
        await Promise.all(links.map((l) => l.closed));
        await closedServer;
      })();
      return closing;
    },
  };
}

function createLink(index: number, client: Socket, target: Socket, sockets: Set<Socket>): ProxyLink {
  let mode: ProxyMode = 'pass';
  let delayMs = 0;
  let isDestroyed = false;
  const counts = { up: { received: 0, forwarded: 0 }, down: { received: 0, forwarded: 0 } };
  const cutBudget: Record<ProxyDirection, number | undefined> = { up: undefined, down: undefined };
  // Chunks held by a delay, per direction; `lastDueAt` keeps their order when the delay changes.
  const pending: Record<ProxyDirection, Set<Pending>> = { up: new Set(), down: new Set() };
  const lastDueAt: Record<ProxyDirection, number> = { up: 0, down: 0 };
  const isPaused: Record<ProxyDirection, boolean> = { up: false, down: false };
  const isDropped: Record<ProxyDirection, boolean> = { up: false, down: false };
  const ends: Record<ProxyDirection, { from: Socket; to: Socket }> = { up: { from: client, to: target }, down: { from: target, to: client } };

  for (const s of [client, target]) {
    sockets.add(s);
    // Resets and refused connections are part of the faults under test, never an uncaught error.
    s.on('error', () => s.destroy());
    s.once('close', () => sockets.delete(s));
  }
  const [clientClosed, targetClosed] = [client, target].map((s) => new Promise<void>((resolve) => s.once('close', () => resolve())));
  const closed = Promise.all([clientClosed, targetClosed]).then(() => undefined);
  const receiveWaiters = new Set<{ dir: ProxyDirection; totalBytes: number; resolve: () => void }>();

  const destroy = (reset = false): void => {
    if (isDestroyed) return;
    isDestroyed = true;
    for (const dir of ['up', 'down'] as const) for (const p of pending[dir]) clearTimeout(p.timer);
    for (const s of [client, target]) {
      if (reset && typeof s.resetAndDestroy === 'function' && !s.connecting) s.resetAndDestroy();
      else s.destroy();
    }
  };

  /** Writes `chunk` to the receiving side, honouring a cut budget. */
  const write = (dir: ProxyDirection, chunk: Buffer): void => {
    if (isDestroyed || mode === 'blackhole' || isDropped[dir]) return;
    const { from, to } = ends[dir];
    const budget = cutBudget[dir];
    if (budget !== undefined && chunk.length >= budget) {
      const head = chunk.subarray(0, budget);
      counts[dir].forwarded += head.length;
      mode = 'cut';
      isDestroyed = true;
      for (const d of ['up', 'down'] as const) for (const p of pending[d]) clearTimeout(p.timer);
      // The partial data reaches the receiver, then both sides see the connection end.
      to.end(head, () => to.destroy());
      from.destroy();
      return;
    }
    if (budget !== undefined) cutBudget[dir] = budget - chunk.length;
    counts[dir].forwarded += chunk.length;
    if (!to.write(chunk) && !isPaused[dir]) {
      isPaused[dir] = true;
      from.pause();
      to.once('drain', () => {
        isPaused[dir] = false;
        from.resume();
      });
    }
  };

  const onData = (dir: ProxyDirection) => (chunk: Buffer) => {
    counts[dir].received += chunk.length;
    for (const w of receiveWaiters) {
      if (w.dir === dir && counts[dir].received >= w.totalBytes) {
        receiveWaiters.delete(w);
        w.resolve();
      }
    }
    if (mode === 'blackhole' || isDestroyed || isDropped[dir]) return;
    const now = performance.now();
    const dueAt = Math.max(now + delayMs, lastDueAt[dir]);
    if (dueAt <= now && pending[dir].size === 0) {
      write(dir, chunk);
      return;
    }
    lastDueAt[dir] = dueAt;
    const entry: Pending = {
      timer: setTimeout(() => {
        pending[dir].delete(entry);
        write(dir, chunk);
      }, Math.max(0, dueAt - now)),
    };
    pending[dir].add(entry);
  };

  client.pause();
  target.once('connect', () => client.resume());
  client.on('data', onData('up'));
  target.on('data', onData('down'));
  // A FIN or a close on one side travels to the other once the chunks held for that direction are out,
  // unless the link is blackholed (then nothing travels) or already cut/destroyed (that path closes both).
  const afterPending = (dir: ProxyDirection, action: () => void): void => {
    const waitMs = pending[dir].size === 0 ? 0 : Math.max(0, lastDueAt[dir] - performance.now()) + 1;
    if (waitMs === 0) action();
    else setTimeout(action, waitMs);
  };
  for (const dir of ['up', 'down'] as const) {
    const { from, to } = ends[dir];
    from.on('end', () => {
      if (mode !== 'blackhole' && !isDestroyed && !isDropped[dir]) afterPending(dir, () => to.end());
    });
    from.on('close', () => {
      if (mode !== 'blackhole' && !isDestroyed && !isDropped[dir]) afterPending(dir, () => to.destroy());
    });
  }

  return {
    index,
    get mode() {
      return mode;
    },
    bytes: counts,
    closed,
    clientClosed,
    targetClosed,
    whenReceived: (dir, totalBytes) =>
      counts[dir].received >= totalBytes ? Promise.resolve() : new Promise<void>((resolve) => receiveWaiters.add({ dir, totalBytes, resolve })),
    passThrough: () => {
      if (mode === 'cut') return;
      mode = 'pass';
      delayMs = 0;
    },
    delay: (ms) => {
      if (!(ms >= 0)) throw new RangeError(`fault proxy link ${index}: delay must be >= 0 ms, got ${ms}`);
      if (mode === 'cut') return;
      mode = 'delay';
      delayMs = ms;
    },
    cutAfter: (dir, bytes) => {
      if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`fault proxy link ${index}: cutAfter needs a byte count >= 0, got ${bytes}`);
      cutBudget[dir] = bytes;
      if (bytes === 0) write(dir, Buffer.alloc(0));
    },
    blackhole: () => {
      if (mode === 'cut') return;
      mode = 'blackhole';
      for (const dir of ['up', 'down'] as const) {
        for (const p of pending[dir]) clearTimeout(p.timer);
        pending[dir].clear();
      }
    },
    blackholeOneWay: (dir) => {
      if (mode === 'cut') return;
      isDropped[dir] = true;
      for (const p of pending[dir]) clearTimeout(p.timer);
      pending[dir].clear();
    },
    destroy,
  };
}
