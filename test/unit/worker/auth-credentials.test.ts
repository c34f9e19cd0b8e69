/** Where a worker's credentials come from, and the headers they make (RELIABILITY S15). */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AUTH_HEADERS, isWellFormedNonce, requestSignature } from '../../../shared/auth-signing.js';
import { ErrorCode, OrchestratorError } from '../../../shared/errors.js';
import { authHeaders, loadClientCredentials } from '../../../worker/auth-credentials.js';
import { describeTlsFailure } from '../../../worker/auth-tls.js';

const dir = mkdtempSync(join(tmpdir(), 'swarmtune-creds-'));
const tokenFile = join(dir, 'token');
writeFileSync(tokenFile, '  file-token-0123456789\n');

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as OrchestratorError).code;
  }
  return undefined;
}

describe('loadClientCredentials', () => {
  it('takes --token over --token-file over env token over env token file, and trims files', () => {
    const env = { SWARMTUNE_AUTH_TOKEN: 'env-token', SWARMTUNE_AUTH_TOKEN_FILE: tokenFile };
    expect(loadClientCredentials({ token: 'flag-token', tokenFile, env })).toEqual({ scheme: 'bearer', token: 'flag-token' });
    expect(loadClientCredentials({ tokenFile, env })).toEqual({ scheme: 'bearer', token: 'file-token-0123456789' });
    expect(loadClientCredentials({ env })).toEqual({ scheme: 'bearer', token: 'env-token' });
    expect(loadClientCredentials({ env: { SWARMTUNE_AUTH_TOKEN_FILE: tokenFile } })).toEqual({ scheme: 'bearer', token: 'file-token-0123456789' });
    expect(loadClientCredentials({ env: {} })).toBeUndefined();
  });

  it('signs with the token as the secret when a key id is given (flag or env)', () => {
    expect(loadClientCredentials({ token: 's', keyId: 'k' })).toEqual({ scheme: 'hmac', keyId: 'k', secret: 's' });
    expect(loadClientCredentials({ token: 's', env: { SWARMTUNE_AUTH_KEY_ID: 'k2' } })).toEqual({ scheme: 'hmac', keyId: 'k2', secret: 's' });
  });

  it('refuses an unreadable file, an empty token, and a key id without a secret', () => {
    expect(codeOf(() => loadClientCredentials({ tokenFile: join(dir, 'absent') }))).toBe(ErrorCode.CONFIG_FILE);
    expect(codeOf(() => loadClientCredentials({ token: '' }))).toBe(ErrorCode.CONFIG_INVALID);
    expect(codeOf(() => loadClientCredentials({ keyId: 'k' }))).toBe(ErrorCode.CONFIG_INVALID);
  });
});

describe('authHeaders', () => {
  it('sends a bearer token as Authorization', () => {
    expect(authHeaders({ scheme: 'bearer', token: 't' }, 'ws://h:1')).toEqual({ Authorization: 'Bearer t' });
  });

  it('signs GET, the path, the timestamp and a fresh nonce; never sends the secret', () => {
    const a = authHeaders({ scheme: 'hmac', keyId: 'k', secret: 'the-secret-0123456789' }, 'wss://h:1', 5_000);
    const b = authHeaders({ scheme: 'hmac', keyId: 'k', secret: 'the-secret-0123456789' }, 'wss://h:1', 5_000);
    expect(a[AUTH_HEADERS.NONCE]).not.toBe(b[AUTH_HEADERS.NONCE]);
    expect(isWellFormedNonce(a[AUTH_HEADERS.NONCE])).toBe(true);
    expect(a[AUTH_HEADERS.TIMESTAMP]).toBe('5000');
    expect(a[AUTH_HEADERS.SIGNATURE]).toBe(requestSignature('the-secret-0123456789', 'GET', '/', '5000', a[AUTH_HEADERS.NONCE]).toString('hex'));
    expect(JSON.stringify(a)).not.toContain('the-secret');
  });
});

describe('describeTlsFailure', () => {
  it('turns certificate errors into E_TLS_FAILED naming the remedy, and leaves other errors alone', () => {
    const err = Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    const tls = describeTlsFailure(err, 'wss://h:1');
    expect(tls?.code).toBe(ErrorCode.TLS_FAILED);
    expect(tls?.message).toContain('--ca FILE');
    expect(describeTlsFailure(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }), 'wss://h:1')).toBeUndefined();
  });
});
