/** The security keys of a run config turned into server settings and local-worker access (RELIABILITY S15). */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { authSettingsOf, localWorkerAccess, tlsFilesOf } from '../../../coordinator/auth-settings.js';
import { compileConfig } from '../../../shared/config.js';
import { redactSecrets } from '../../../shared/config/redact.js';
import { ErrorCode, OrchestratorError } from '../../../shared/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'swarmtune-auth-settings-'));
const write = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as OrchestratorError).code;
  }
  return undefined;
}

describe('authSettingsOf', () => {
  it('reads a token from the config or a file (trimmed), and keys from a JSON file', () => {
    expect(authSettingsOf(compileConfig({}))).toEqual({ mode: 'none' });
    expect(authSettingsOf(compileConfig({ auth: 'token', auth_token: 't'.repeat(20) }))).toEqual({ mode: 'token', token: 't'.repeat(20) });
    const tokenFile = write('token', `${'f'.repeat(20)}\n`);
    expect(authSettingsOf(compileConfig({ auth: 'token', auth_token_file: tokenFile }))).toEqual({ mode: 'token', token: 'f'.repeat(20) });
    const keysFile = write('keys.json', JSON.stringify({ a: 'a'.repeat(16), b: 'b'.repeat(16) }));
    const hmac = authSettingsOf(compileConfig({ auth: 'hmac', auth_keys_file: keysFile }));
    expect(hmac.mode === 'hmac' && [...hmac.keys.keys()]).toEqual(['a', 'b']);
  });

  it('refuses a missing file, a short secret, a keys file that is not a JSON object of strings, or holds none', () => {
    expect(codeOf(() => authSettingsOf(compileConfig({ auth: 'token', auth_token_file: join(dir, 'absent') })))).toBe(ErrorCode.CONFIG_FILE);
    expect(codeOf(() => authSettingsOf(compileConfig({ auth: 'token', auth_token_file: write('short', 'abc') })))).toBe(ErrorCode.CONFIG_INVALID);
    for (const text of ['not json', '[1]', '{"a": 3}', '{"a": "short"}', '{}']) {
      expect(codeOf(() => authSettingsOf(compileConfig({ auth: 'hmac', auth_keys_file: write('bad.json', text) })))).toBe(ErrorCode.CONFIG_INVALID);
    }
  });
});

describe('tlsFilesOf and localWorkerAccess', () => {
  it('reads the certificate and key, and gives local workers the credentials by env and the certificate as --ca', () => {
    const cert = write('c.pem', 'CERT');
    const key = write('k.pem', 'KEY');
    const config = compileConfig({ auth: 'token', auth_token: 't'.repeat(20), tls_cert: cert, tls_key: key });
    expect(tlsFilesOf(config)?.cert.toString()).toBe('CERT');
    expect(tlsFilesOf(compileConfig({}))).toBeUndefined();
    expect(codeOf(() => tlsFilesOf(compileConfig({ tls_cert: cert, tls_key: join(dir, 'absent') })))).toBe(ErrorCode.CONFIG_FILE);
    expect(localWorkerAccess(authSettingsOf(config), config)).toEqual({ env: { SWARMTUNE_AUTH_TOKEN: 't'.repeat(20) }, args: ['--ca', cert] });
    const hmac = compileConfig({ auth: 'hmac', auth_keys_file: write('k.json', JSON.stringify({ w: 'w'.repeat(16) })) });
    expect(localWorkerAccess(authSettingsOf(hmac), hmac)).toEqual({ env: { SWARMTUNE_AUTH_TOKEN: 'w'.repeat(16), SWARMTUNE_AUTH_KEY_ID: 'w' }, args: [] });
  });

  it('redactSecrets nulls the token and keeps everything else', () => {
    const config = compileConfig({ auth: 'token', auth_token: 't'.repeat(20) });
    expect(redactSecrets(config)).toEqual({ ...config, auth_token: null });
    expect(config.auth_token).toBe('t'.repeat(20));
  });
});
