/**
 * Turns the security keys of a {@link RunConfig} into what the server needs: the {@link AuthSettings} (reading
 * `auth_token_file` and `auth_keys_file`) and the TLS certificate and key (reading `tls_cert` / `tls_key`); and
 * the credentials the local workers of `swarmtune run` get (through their environment, never their argv, which
 * any user of the machine can read with `ps`).
 */
import { readFileSync } from 'node:fs';
import { AUTH_ENV, MIN_SECRET_LENGTH } from '../shared/auth-signing.js';
import type { RunConfig } from '../shared/config.js';
import { ConfigError, ErrorCode } from '../shared/errors.js';
import type { AuthSettings } from './auth.js';

/** PEM certificate and key for an https server. */
export interface TlsFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
}

function readConfigFile(key: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(ErrorCode.CONFIG_FILE, `cannot read ${key} ${path}: ${(err as Error).message}`, { cause: err });
  }
}

function checkSecret(what: string, secret: string): string {
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `${what} is ${secret.length} characters; at least ${MIN_SECRET_LENGTH} are required (e.g. \`openssl rand -hex 32\`)`);
  }
  return secret;
}

/**
 * The authentication settings of `config`.
 * @throws ConfigError E_CONFIG_FILE when a token or keys file cannot be read; E_CONFIG_INVALID when the keys file
 *   is not a JSON object of non-empty key ids to strings, or a secret is shorter than MIN_SECRET_LENGTH.
 */
export function authSettingsOf(config: RunConfig): AuthSettings {
  if (config.auth === 'none') return { mode: 'none' };
  if (config.auth === 'token') {
    const token = config.auth_token ?? readConfigFile('auth_token_file', config.auth_token_file!).toString('utf8').trim();
    return { mode: 'token', token: checkSecret(config.auth_token !== null ? 'auth_token' : `the token in ${config.auth_token_file}`, token) };
  }
  const path = config.auth_keys_file!;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readConfigFile('auth_keys_file', path).toString('utf8'));
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `auth_keys_file ${path} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `auth_keys_file ${path} must hold a JSON object of key id to secret`);
  }
  const keys = new Map<string, string>();
  for (const [keyId, secret] of Object.entries(parsed)) {
    if (keyId === '' || typeof secret !== 'string') throw new ConfigError(ErrorCode.CONFIG_INVALID, `auth_keys_file ${path}: key ${JSON.stringify(keyId)} must map to a string secret`);
    keys.set(keyId, checkSecret(`the secret of key ${JSON.stringify(keyId)} in ${path}`, secret));
  }
  if (keys.size === 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, `auth_keys_file ${path} holds no keys`);
  return { mode: 'hmac', keys };
}

/** The certificate and key of `config`, or undefined for a plain `ws://` server. @throws ConfigError E_CONFIG_FILE when unreadable. */
export function tlsFilesOf(config: RunConfig): TlsFiles | undefined {
  if (config.tls_cert === null || config.tls_key === null) return undefined;
  return { cert: readConfigFile('tls_cert', config.tls_cert), key: readConfigFile('tls_key', config.tls_key) };
}

/**
 * What a local worker of `swarmtune run` needs to pass `settings`: environment variables (the token, or the first
 * key's id and secret) and, with TLS, `--ca <tls_cert>` so that it trusts the coordinator's own (self-signed or
 * CA-issued) certificate chain.
 */
export function localWorkerAccess(settings: AuthSettings, config: RunConfig): { readonly env: Record<string, string>; readonly args: string[] } {
  const args = config.tls_cert !== null ? ['--ca', config.tls_cert] : [];
  if (settings.mode === 'token') return { env: { [AUTH_ENV.TOKEN]: settings.token }, args };
  if (settings.mode === 'hmac') {
    const [keyId, secret] = [...settings.keys][0];
    return { env: { [AUTH_ENV.TOKEN]: secret, [AUTH_ENV.KEY_ID]: keyId }, args };
  }
  return { env: {}, args };
}
