/**
 * Authentication in the HTTP upgrade (RELIABILITY S15), over real loopback sockets: every kind of bad credential
 * is answered with HTTP 401 and its reason, and the refused peer receives not one byte beyond that response, while
 * the server's connection handler (which here sends a frame at once) never runs. Good credentials open the socket.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createAuthenticator, type Authenticator, type AuthSettings } from '../../../coordinator/auth.js';
import { startWsServer, type WsServer } from '../../../coordinator/transport-ws.js';
import { AUTH_HEADERS, AUTH_REASON_HEADER, AuthFailureReason, MAX_CLOCK_SKEW_MS, signedRequestHeaders } from '../../../shared/auth-signing.js';
import { ErrorCode, OrchestratorError } from '../../../shared/errors.js';
import { makeErrorFrame } from '../../../shared/protocol/build.js';
import { SUBPROTOCOL } from '../../../shared/protocol/messages.js';
import { authHeaders } from '../../../worker/auth-credentials.js';
import { connectWs } from '../../../worker/transport-ws.js';

const TOKEN = 'a-run-token-of-32-characters-xyz';
const KEYS = new Map([
  ['worker-a', 'secret-of-worker-a-0123456789'],
  ['worker-b', 'secret-of-worker-b-9876543210'],
]);

/** What a raw client read from the server: the HTTP head, and every byte after it. */
interface RawReply {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** Bytes after the head beyond the declared Content-Length (frames, for a 101). */
  readonly bytesAfterResponse: number;
  readonly totalBytes: number;
}

/** Sends one upgrade request by hand and reads until the server closes (or, after a 101, until a frame arrives). */
function rawUpgrade(port: number, headers: Record<string, string>, stopAtResponse = false): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const parse = (): RawReply | undefined => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return undefined;
      const [statusLine, ...lines] = all.subarray(0, end).toString('latin1').split('\r\n');
      const head: Record<string, string> = {};
      for (const line of lines) head[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
      const length = Number(head['content-length'] ?? 0);
      const rest = all.subarray(end + 4);
      return {
        status: Number(statusLine.split(' ')[1]),
        headers: head,
        body: rest.subarray(0, length).toString('utf8'),
        bytesAfterResponse: rest.length - length,
        totalBytes: all.length,
      };
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const reply = parse();
      if (stopAtResponse && reply && reply.status !== 101 && Buffer.byteLength(reply.body) === Number(reply.headers['content-length'])) {
        socket.destroy();
        resolve(reply);
      }
      if (reply?.status === 101 && reply.bytesAfterResponse > 0) {
        socket.destroy();
        resolve(reply);
      }
    });
    socket.on('close', () => {
      const reply = parse();
      if (reply) resolve(reply);
      else reject(new Error(`no HTTP response (${Buffer.concat(chunks).length} bytes)`));
    });
    socket.on('error', () => undefined);
    const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
    socket.write(
      'GET / HTTP/1.1\r\n' +
        `Host: 127.0.0.1:${port}\r\n` +
        'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n' +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
        `Sec-WebSocket-Protocol: ${SUBPROTOCOL}\r\n` +
        `${extra}\r\n`,
    );
  });
}

let server: WsServer | undefined;
let connections = 0;

/** A server whose connection handler sends an error frame at once: any accepted peer receives bytes. */
async function serve(settings: AuthSettings, now?: () => number): Promise<{ server: WsServer; auth: Authenticator }> {
  connections = 0;
  const auth = createAuthenticator(settings, { now });
  server = await startWsServer({
    port: 0,
    authenticator: auth,
    onConnection: (conn) => {
      connections += 1;
      void conn.send(makeErrorFrame(new OrchestratorError(ErrorCode.INTERNAL, 'a frame only an authenticated peer may see'))).catch(() => undefined);
    },
  });
  return { server, auth };
}

afterEach(async () => {
  await server?.close();
  server = undefined;
});

function expectRefused(reply: RawReply, reason: AuthFailureReason): void {
  expect(reply.status).toBe(401);
  expect(reply.headers['x-swarmtune-error-code']).toBe(ErrorCode.AUTH_FAILED);
  expect(reply.headers[AUTH_REASON_HEADER]).toBe(reason);
  expect(reply.body).toContain(`authentication failed (${reason})`);
  // Nothing of the run: not one byte after the 401's body.
  expect(reply.bytesAfterResponse).toBe(0);
}

describe('bearer token in the upgrade', () => {
  it('S15: missing, malformed and wrong tokens get 401 with their reason, zero bytes after it, and are counted', async () => {
    const { server, auth } = await serve({ mode: 'token', token: TOKEN });
    expectRefused(await rawUpgrade(server.port, {}), AuthFailureReason.MISSING);
    expectRefused(await rawUpgrade(server.port, { Authorization: `Basic ${TOKEN}` }), AuthFailureReason.MALFORMED);
    expectRefused(await rawUpgrade(server.port, { Authorization: 'Bearer not-the-token' }), AuthFailureReason.BAD_TOKEN);
    expectRefused(await rawUpgrade(server.port, { Authorization: `Bearer ${TOKEN}x` }), AuthFailureReason.BAD_TOKEN);
    expectRefused(await rawUpgrade(server.port, { Authorization: `Bearer ${TOKEN.slice(0, -1)}` }), AuthFailureReason.BAD_TOKEN);
    expect(connections).toBe(0);
    expect(auth.rejections).toMatchObject({ missing: 1, malformed: 1, bad_token: 3 });
    expect(auth.accepted).toBe(0);
  });

  it('S15: the right token opens the socket and frames flow', async () => {
    const { server, auth } = await serve({ mode: 'token', token: TOKEN });
    const reply = await rawUpgrade(server.port, { Authorization: `Bearer ${TOKEN}` });
    expect(reply.status).toBe(101);
    expect(reply.bytesAfterResponse).toBeGreaterThan(0);
    expect(auth.accepted).toBe(1);
  });

  it('S15: the worker transport sends the token, and a refusal is E_AUTH_FAILED at once (no retries)', async () => {
    const { server } = await serve({ mode: 'token', token: TOKEN });
    const ok = await connectWs(server.url, { credentials: { scheme: 'bearer', token: TOKEN } });
    ok.close();
    let retries = 0;
    const err = await connectWs(server.url, { credentials: { scheme: 'bearer', token: 'wrong-token-wrong-token' }, reconnect: { maxAttempts: 5, initialDelayMs: 1 }, onRetry: () => retries++ }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OrchestratorError);
    expect((err as OrchestratorError).code).toBe(ErrorCode.AUTH_FAILED);
    expect((err as Error).message).toContain('HTTP 401');
    expect((err as Error).message).toContain('bad_token');
    expect(retries).toBe(0);
  });
});

describe('signed requests (hmac) in the upgrade', () => {
  it('S15: bad signature, unknown key, timestamp skew and malformed headers get 401, zero bytes after it', async () => {
    const { server, auth } = await serve({ mode: 'hmac', keys: KEYS });
    const good = (): Record<string, string> => signedRequestHeaders('worker-a', KEYS.get('worker-a')!, 'GET', '/');
    expectRefused(await rawUpgrade(server.port, {}), AuthFailureReason.MISSING);
    // Signed with worker-b's secret but claiming worker-a.
    expectRefused(await rawUpgrade(server.port, signedRequestHeaders('worker-a', KEYS.get('worker-b')!, 'GET', '/')), AuthFailureReason.BAD_SIGNATURE);
    // Signed for another path.
    expectRefused(await rawUpgrade(server.port, signedRequestHeaders('worker-a', KEYS.get('worker-a')!, 'GET', '/other')), AuthFailureReason.BAD_SIGNATURE);
    // One flipped hex digit.
    const flipped = good();
    const sig = flipped[AUTH_HEADERS.SIGNATURE];
    flipped[AUTH_HEADERS.SIGNATURE] = `${sig[0] === '0' ? '1' : '0'}${sig.slice(1)}`;
    expectRefused(await rawUpgrade(server.port, flipped), AuthFailureReason.BAD_SIGNATURE);
    expectRefused(await rawUpgrade(server.port, signedRequestHeaders('worker-z', KEYS.get('worker-a')!, 'GET', '/')), AuthFailureReason.UNKNOWN_KEY);
    const now = Date.now();
    expectRefused(await rawUpgrade(server.port, signedRequestHeaders('worker-a', KEYS.get('worker-a')!, 'GET', '/', now - MAX_CLOCK_SKEW_MS - 5_000)), AuthFailureReason.TIMESTAMP_SKEW);
    expectRefused(await rawUpgrade(server.port, signedRequestHeaders('worker-a', KEYS.get('worker-a')!, 'GET', '/', now + MAX_CLOCK_SKEW_MS + 5_000)), AuthFailureReason.TIMESTAMP_SKEW);
    const partial = good();
    delete partial[AUTH_HEADERS.NONCE];
    expectRefused(await rawUpgrade(server.port, partial), AuthFailureReason.MALFORMED);
    expectRefused(await rawUpgrade(server.port, { ...good(), [AUTH_HEADERS.TIMESTAMP]: 'soon' }), AuthFailureReason.MALFORMED);
    expect(connections).toBe(0);
    expect(auth.rejections).toMatchObject({ missing: 1, bad_signature: 3, unknown_key: 1, timestamp_skew: 2, malformed: 2 });
  });

  it('S15: a replayed request (same nonce) is refused within its window, accepted once only', async () => {
    let clock = Date.now();
    const { server, auth } = await serve({ mode: 'hmac', keys: KEYS }, () => clock);
    const headers = signedRequestHeaders('worker-b', KEYS.get('worker-b')!, 'GET', '/', clock);
    const first = await rawUpgrade(server.port, headers);
    expect(first.status).toBe(101);
    expect(first.bytesAfterResponse).toBeGreaterThan(0);
    expectRefused(await rawUpgrade(server.port, headers), AuthFailureReason.REPLAYED_NONCE);
    clock += MAX_CLOCK_SKEW_MS - 1_000;
    expectRefused(await rawUpgrade(server.port, headers), AuthFailureReason.REPLAYED_NONCE);
    // Once the window has passed, the timestamp alone refuses it.
    clock += 2_000;
    expectRefused(await rawUpgrade(server.port, headers), AuthFailureReason.TIMESTAMP_SKEW);
    expect(auth.accepted).toBe(1);
    expect(connections).toBe(1);
  });

  it('S15: the worker transport signs each attempt afresh and connects; a wrong secret is E_AUTH_FAILED', async () => {
    const { server } = await serve({ mode: 'hmac', keys: KEYS });
    for (let i = 0; i < 3; i++) (await connectWs(server.url, { credentials: { scheme: 'hmac', keyId: 'worker-a', secret: KEYS.get('worker-a')! } })).close();
    const err = await connectWs(server.url, { credentials: { scheme: 'hmac', keyId: 'worker-a', secret: 'not-the-secret-of-a' } }).catch((e: unknown) => e);
    expect((err as OrchestratorError).code).toBe(ErrorCode.AUTH_FAILED);
    expect((err as Error).message).toContain('bad_signature');
  });

  it('S15: signing headers name the path of the URL, query included', () => {
    const headers = authHeaders({ scheme: 'hmac', keyId: 'k', secret: 's'.repeat(16) }, 'ws://h:1/a?b=c', 1_000, );
    const again = signedRequestHeaders('k', 's'.repeat(16), 'GET', '/a?b=c', 1_000, headers[AUTH_HEADERS.NONCE]);
    expect(headers[AUTH_HEADERS.SIGNATURE]).toBe(again[AUTH_HEADERS.SIGNATURE]);
  });
});

describe('the identity of an accepted credential', () => {
  const requestWith = (headers: Record<string, string>) =>
    ({ method: 'GET', url: '/', headers, socket: { remoteAddress: '127.0.0.1', remotePort: 1 } }) as unknown as Parameters<Authenticator['check']>[0];

  it('S14: names the HMAC key id or a token fingerprint, never the secret; none without authentication', () => {
    const hmac = createAuthenticator({ mode: 'hmac', keys: KEYS });
    expect(hmac.check(requestWith(signedRequestHeaders('worker-a', KEYS.get('worker-a')!, 'GET', '/')))).toMatchObject({ ok: true, identity: 'hmac:worker-a' });
    expect(hmac.check(requestWith(signedRequestHeaders('worker-b', KEYS.get('worker-b')!, 'GET', '/')))).toMatchObject({ ok: true, identity: 'hmac:worker-b' });
    const token = 't'.repeat(40);
    const verdict = createAuthenticator({ mode: 'token', token }).check(requestWith({ authorization: `Bearer ${token}` }));
    expect(verdict.ok && verdict.identity).toMatch(/^token:[0-9a-f]{16}$/);
    expect(JSON.stringify(verdict)).not.toContain(token);
    expect(createAuthenticator({ mode: 'none' }).check(requestWith({}))).toEqual({ ok: true });
  });
});

describe('cost of a refusal', () => {
  it('S15: 500 refused upgrades over loopback: p99 of the check within 5 ms, of connect-to-401 within 250 ms', async () => {
    const { server } = await serve({ mode: 'hmac', keys: KEYS });
    const roundTrips: number[] = [];
    for (let i = 0; i < 500; i++) {
      const headers = signedRequestHeaders('worker-a', KEYS.get('worker-b')!, 'GET', '/');
      const t0 = performance.now();
      const reply = await rawUpgrade(server.port, headers, true);
      roundTrips.push(performance.now() - t0);
      expect(reply.status).toBe(401);
    }
    // The check alone, on the same kind of request, in this process.
    const auth = createAuthenticator({ mode: 'hmac', keys: KEYS });
    const checks: number[] = [];
    // 2,000 timed after 100 untimed (JIT warm-up), so a lone GC pause on a loaded machine does not make the p99.
    for (let i = -100; i < 2_000; i++) {
      const req = { method: 'GET', url: '/', headers: signedRequestHeaders('worker-a', KEYS.get('worker-b')!, 'GET', '/'), socket: { remoteAddress: '127.0.0.1', remotePort: 1 } };
      const t0 = performance.now();
      const verdict = auth.check(req as unknown as Parameters<Authenticator['check']>[0]);
      if (i >= 0) checks.push(performance.now() - t0);
      expect(verdict.ok).toBe(false);
    }
    const p = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.ceil(xs.length * q) - 1];
    console.log(`S15 refusal: connect-to-401 over loopback median ${p(roundTrips, 0.5).toFixed(2)} ms, p99 ${p(roundTrips, 0.99).toFixed(2)} ms; check() median ${(p(checks, 0.5) * 1000).toFixed(1)} us, p99 ${(p(checks, 0.99) * 1000).toFixed(1)} us`);
    expect(p(checks, 0.99)).toBeLessThan(5);
    // Wall time on a loaded 2-core machine includes scheduling noise; this bound only catches a gross regression.
    expect(p(roundTrips, 0.99)).toBeLessThan(250);
  });
});
