/**
 * The signed-request scheme both sides of an authenticated run agree on (RELIABILITY S15).
 *
 * A worker proves it holds a run secret in the HTTP upgrade, before any frame is exchanged, in one of two ways:
 * - **bearer**: `Authorization: Bearer <token>`;
 * - **hmac**: four headers, {@link AUTH_HEADERS}: a key id, a timestamp (Unix milliseconds), a random nonce, and
 *   `hex(HMAC-SHA256(secret, METHOD "\n" PATH "\n" TIMESTAMP "\n" NONCE))`. The secret itself never travels; the
 *   coordinator refuses a timestamp more than {@link MAX_CLOCK_SKEW_MS} away from its clock and a nonce it has
 *   already accepted within that window (replay).
 *
 * The canonical string joins its parts with "\n": the method and the timestamp hold none, and a nonce is base64url,
 * so no two requests share a canonical string.
 */
import { createHmac, randomBytes } from 'node:crypto';

/** Header names of the hmac scheme (lower case, as Node presents incoming headers). */
export const AUTH_HEADERS = {
  KEY_ID: 'x-swarmtune-key-id',
  TIMESTAMP: 'x-swarmtune-timestamp',
  NONCE: 'x-swarmtune-nonce',
  SIGNATURE: 'x-swarmtune-signature',
} as const;

/**
 * Environment variables a worker reads its credentials from when no flag gives them. The coordinator reads the
 * first two as the config keys `auth_token` / `auth_token_file` (the same meaning on both sides).
 */
export const AUTH_ENV = {
  TOKEN: 'SWARMTUNE_AUTH_TOKEN',
  TOKEN_FILE: 'SWARMTUNE_AUTH_TOKEN_FILE',
  KEY_ID: 'SWARMTUNE_AUTH_KEY_ID',
} as const;

/** Response header of a refused upgrade that names why authentication failed (an {@link AuthFailureReason}). */
export const AUTH_REASON_HEADER = 'x-swarmtune-auth-reason';

/** Largest accepted distance between a signed request's timestamp and the coordinator's clock. @default 60 s */
export const MAX_CLOCK_SKEW_MS = 60_000;

/** Random bytes in a nonce (base64url-encoded: 22 characters). */
export const NONCE_BYTES = 16;

/** Shortest accepted token or HMAC secret, in characters: a guessable secret is refused at start-up. */
export const MIN_SECRET_LENGTH = 16;

/** Why an upgrade was refused; travels in {@link AUTH_REASON_HEADER}. */
export const AuthFailureReason = {
  /** No credentials at all. */
  MISSING: 'missing',
  /** Credentials present but not in the expected form (bad scheme, non-numeric timestamp, non-hex signature). */
  MALFORMED: 'malformed',
  /** A bearer token that is not the run's. */
  BAD_TOKEN: 'bad_token',
  /** An hmac signature that does not match the request under the named key. */
  BAD_SIGNATURE: 'bad_signature',
  /** An hmac key id the coordinator does not hold. */
  UNKNOWN_KEY: 'unknown_key',
  /** An hmac timestamp more than the allowed skew from the coordinator's clock. */
  TIMESTAMP_SKEW: 'timestamp_skew',
  /** An hmac nonce already accepted within its window. */
  REPLAYED_NONCE: 'replayed_nonce',
  /** Too many nonces live at once to remember another (a flood of valid requests). */
  NONCE_CACHE_FULL: 'nonce_cache_full',
} as const;
export type AuthFailureReason = (typeof AuthFailureReason)[keyof typeof AuthFailureReason];

const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;
const TIMESTAMP_PATTERN = /^\d{1,16}$/;
const SIGNATURE_PATTERN = /^[0-9a-f]{64}$/;

/** Whether a header value has the form of a nonce (base64url, 16 to 128 characters). */
export function isWellFormedNonce(value: string): boolean {
  return NONCE_PATTERN.test(value);
}

/** Whether a header value has the form of a timestamp (decimal Unix milliseconds). */
export function isWellFormedTimestamp(value: string): boolean {
  return TIMESTAMP_PATTERN.test(value);
}

/** Whether a header value has the form of a signature (64 lower-case hex digits). */
export function isWellFormedSignature(value: string): boolean {
  return SIGNATURE_PATTERN.test(value);
}

/** The string an hmac request signs. */
export function canonicalRequest(method: string, path: string, timestamp: string, nonce: string): string {
  return `${method.toUpperCase()}\n${path}\n${timestamp}\n${nonce}`;
}

/** `HMAC-SHA256(secret, canonicalRequest(...))`, 32 bytes. */
export function requestSignature(secret: string | Uint8Array, method: string, path: string, timestamp: string, nonce: string): Buffer {
  return createHmac('sha256', secret).update(canonicalRequest(method, path, timestamp, nonce)).digest();
}

/** A fresh random nonce, base64url. */
export function newNonce(): string {
  return randomBytes(NONCE_BYTES).toString('base64url');
}

/**
 * The four hmac headers for a `method` request to `path`, signed now with a fresh nonce.
 * @param nowMs the clock to sign with (tests move it to provoke skew). @default Date.now()
 */
export function signedRequestHeaders(keyId: string, secret: string | Uint8Array, method: string, path: string, nowMs: number = Date.now(), nonce: string = newNonce()): Record<string, string> {
  const timestamp = String(Math.round(nowMs));
  return {
    [AUTH_HEADERS.KEY_ID]: keyId,
    [AUTH_HEADERS.TIMESTAMP]: timestamp,
    [AUTH_HEADERS.NONCE]: nonce,
    [AUTH_HEADERS.SIGNATURE]: requestSignature(secret, method, path, timestamp, nonce).toString('hex'),
  };
}
