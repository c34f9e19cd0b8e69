/**
 * Checks a worker's credentials in the HTTP upgrade, before the WebSocket opens: nothing of the run (no
 * `welcome`, no model byte) reaches a peer that fails here; it gets an HTTP 401 with the reason (RELIABILITY S15).
 *
 * Secrets are compared in constant time: a bearer token through HMACs of both sides under a per-process random key
 * (equal lengths whatever was presented, then `crypto.timingSafeEqual`), a signature with `timingSafeEqual` on the
 * 32-byte digests. A nonce is remembered only once its signature verified, so a peer without a key cannot fill the
 * replay cache; entries expire when their timestamp leaves the skew window (after that the timestamp alone refuses
 * the request).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import {
  AUTH_HEADERS,
  AuthFailureReason,
  MAX_CLOCK_SKEW_MS,
  isWellFormedNonce,
  isWellFormedSignature,
  isWellFormedTimestamp,
  requestSignature,
} from '../shared/auth-signing.js';

/** How the coordinator authenticates workers; `keys` maps a key id to its secret. */
export type AuthSettings =
  | { readonly mode: 'none' }
  | { readonly mode: 'token'; readonly token: string }
  | { readonly mode: 'hmac'; readonly keys: ReadonlyMap<string, string> };

/**
 * The outcome of one check. `identity` names the credential that passed (`hmac:<key id>`, or `token:<first 16 hex
 * of its sha256>`; absent without authentication): the registry refuses a connection that claims a live worker's id
 * under another identity (RELIABILITY S14). It never holds a secret.
 */
export type AuthVerdict =
  | { readonly ok: true; readonly keyId?: string; readonly identity?: string }
  | { readonly ok: false; readonly reason: AuthFailureReason; readonly message: string; readonly challenge: string };

/** Options of {@link createAuthenticator}. */
export interface AuthenticatorOptions {
  /** @default MAX_CLOCK_SKEW_MS (60 s) */
  readonly maxClockSkewMs?: number;
  /** Most nonces remembered at once; past it, new signed requests are refused until old ones expire. @default 100000 */
  readonly maxNonces?: number;
  /** The clock. @default Date.now */
  readonly now?: () => number;
  /** Called on every refusal, after it is counted (logs, metrics). Must not throw. */
  readonly onReject?: (info: { readonly peer: string; readonly reason: AuthFailureReason; readonly message: string }) => void;
}

/** Checks upgrade requests; counts what it refused. */
export interface Authenticator {
  readonly mode: AuthSettings['mode'];
  /** Checks the request's credentials; never throws. */
  check(req: IncomingMessage): AuthVerdict;
  /** Refusals so far, by reason. */
  readonly rejections: Readonly<Record<AuthFailureReason, number>>;
  /** Requests accepted so far. */
  readonly accepted: number;
}

/** @default 100000 */
export const DEFAULT_MAX_NONCES = 100_000;

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}

/**
 * An {@link Authenticator} for `settings`. With mode `none` every request passes.
 */
export function createAuthenticator(settings: AuthSettings, options: AuthenticatorOptions = {}): Authenticator {
  const maxClockSkewMs = options.maxClockSkewMs ?? MAX_CLOCK_SKEW_MS;
  const maxNonces = options.maxNonces ?? DEFAULT_MAX_NONCES;
  const now = options.now ?? Date.now;
  const rejections = Object.fromEntries(Object.values(AuthFailureReason).map((r) => [r, 0])) as Record<AuthFailureReason, number>;
  let accepted = 0;
  // Nonce (qualified by key id) → the time it stops being acceptable anyway.
  const nonces = new Map<string, number>();
  let nextSweepMs = 0;

  const compareKey = randomBytes(32);
  const digestOf = (value: string): Buffer => createHmac('sha256', compareKey).update(value).digest();
  const tokenDigest = settings.mode === 'token' ? digestOf(settings.token) : undefined;
  const challenge = settings.mode === 'hmac' ? 'SwarmTune-HMAC-SHA256 realm="swarmtune"' : 'Bearer realm="swarmtune"';

  const refuse = (req: IncomingMessage, reason: AuthFailureReason, message: string): AuthVerdict => {
    rejections[reason] += 1;
    const peer = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    try {
      options.onReject?.({ peer, reason, message });
    } catch {
      // A failing observer must not turn a refusal into an acceptance or a crash.
    }
    return { ok: false, reason, message: `authentication failed (${reason}): ${message}`, challenge };
  };
  const tokenIdentity = settings.mode === 'token' ? `token:${createHash('sha256').update(settings.token).digest('hex').slice(0, 16)}` : undefined;
  const pass = (keyId?: string): AuthVerdict => {
    accepted += 1;
    if (keyId !== undefined) return { ok: true, keyId, identity: `hmac:${keyId}` };
    return tokenIdentity === undefined ? { ok: true } : { ok: true, identity: tokenIdentity };
  };

  const sweep = (nowMs: number): void => {
    if (nowMs < nextSweepMs && nonces.size < maxNonces) return;
    for (const [nonce, expiresMs] of nonces) if (expiresMs < nowMs) nonces.delete(nonce);
    nextSweepMs = nowMs + 1_000;
  };

  const checkBearer = (req: IncomingMessage): AuthVerdict => {
    const authorization = header(req, 'authorization');
    if (authorization === undefined) return refuse(req, AuthFailureReason.MISSING, 'no Authorization header; start the worker with --token or --token-file');
    const match = /^Bearer (.+)$/i.exec(authorization.trim());
    if (!match) return refuse(req, AuthFailureReason.MALFORMED, 'the Authorization header is not "Bearer <token>"');
    if (!timingSafeEqual(digestOf(match[1]), tokenDigest!)) return refuse(req, AuthFailureReason.BAD_TOKEN, 'the token is not this run\'s');
    return pass();
  };

  const checkHmac = (req: IncomingMessage, keys: ReadonlyMap<string, string>): AuthVerdict => {
    const keyId = header(req, AUTH_HEADERS.KEY_ID);
    const timestamp = header(req, AUTH_HEADERS.TIMESTAMP);
    const nonce = header(req, AUTH_HEADERS.NONCE);
    const signature = header(req, AUTH_HEADERS.SIGNATURE);
    if (keyId === undefined && timestamp === undefined && nonce === undefined && signature === undefined) {
      return refuse(req, AuthFailureReason.MISSING, 'no signed-request headers; start the worker with --auth-key-id and --token or --token-file');
    }
    if (keyId === undefined || timestamp === undefined || nonce === undefined || signature === undefined) {
      return refuse(req, AuthFailureReason.MALFORMED, `a signed request needs all of ${Object.values(AUTH_HEADERS).join(', ')}`);
    }
    if (!isWellFormedTimestamp(timestamp) || !isWellFormedNonce(nonce) || !isWellFormedSignature(signature)) {
      return refuse(req, AuthFailureReason.MALFORMED, 'timestamp, nonce or signature is not in the expected form');
    }
    const secret = keys.get(keyId);
    if (secret === undefined) return refuse(req, AuthFailureReason.UNKNOWN_KEY, `unknown key id ${JSON.stringify(keyId.slice(0, 64))}`);
    const nowMs = now();
    const skewMs = Number(timestamp) - nowMs;
    if (Math.abs(skewMs) > maxClockSkewMs) {
      return refuse(req, AuthFailureReason.TIMESTAMP_SKEW, `timestamp is ${Math.round(skewMs / 1000)} s from the coordinator's clock (at most ${maxClockSkewMs / 1000} s allowed); check the clocks`);
    }
    const expected = requestSignature(secret, req.method ?? 'GET', req.url ?? '/', timestamp, nonce);
    if (!timingSafeEqual(Buffer.from(signature, 'hex'), expected)) return refuse(req, AuthFailureReason.BAD_SIGNATURE, `the signature does not match key ${JSON.stringify(keyId)}`);
    const nonceKey = `${keyId}\n${nonce}`;
    sweep(nowMs);
    const seenUntil = nonces.get(nonceKey);
    if (seenUntil !== undefined && seenUntil >= nowMs) return refuse(req, AuthFailureReason.REPLAYED_NONCE, 'this nonce was already used (a replayed request)');
    if (nonces.size >= maxNonces) return refuse(req, AuthFailureReason.NONCE_CACHE_FULL, `${maxNonces} signed requests within the last ${2 * maxClockSkewMs / 1000} s; try again later`);
    nonces.set(nonceKey, Number(timestamp) + maxClockSkewMs);
    return pass(keyId);
  };

  return {
    mode: settings.mode,
    check(req) {
      try {
        if (settings.mode === 'none') return pass();
        if (settings.mode === 'token') return checkBearer(req);
        return checkHmac(req, settings.keys);
      } catch (err) {
        return refuse(req, AuthFailureReason.MALFORMED, `credentials could not be checked: ${(err as Error).message}`);
      }
    },
    rejections,
    get accepted() {
      return accepted;
    },
  };
}
