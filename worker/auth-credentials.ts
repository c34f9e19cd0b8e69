/**
 * A worker's credentials and the upgrade headers they produce (RELIABILITY S15). A worker does not know which
 * scheme the coordinator runs; its operator says so: with a key id the secret signs each request (hmac scheme,
 * fresh timestamp and nonce per connection attempt, the secret never sent), without one it is sent as a bearer
 * token (use TLS then, or the token crosses the network in clear).
 */
import { readFileSync } from 'node:fs';
import { AUTH_ENV, signedRequestHeaders } from '../shared/auth-signing.js';
import { ConfigError, ErrorCode } from '../shared/errors.js';

/** What a worker proves itself with. */
export type ClientCredentials =
  | { readonly scheme: 'bearer'; readonly token: string }
  | { readonly scheme: 'hmac'; readonly keyId: string; readonly secret: string };

/** Where credentials may come from; flags first, then the environment ({@link AUTH_ENV}). */
export interface CredentialSources {
  /** `--token` */
  readonly token?: string;
  /** `--token-file` */
  readonly tokenFile?: string;
  /** `--auth-key-id`: sign requests with the token as this key's secret. */
  readonly keyId?: string;
  /** Usually `process.env`. @default {} */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/**
 * The credentials the sources name, or undefined when none do (the worker then connects without any).
 * Precedence: `--token` > `--token-file` > env SWARMTUNE_AUTH_TOKEN > env SWARMTUNE_AUTH_TOKEN_FILE; the key id
 * from `--auth-key-id` > env SWARMTUNE_AUTH_KEY_ID. A token file's content is trimmed.
 * @throws ConfigError E_CONFIG_FILE when the token file cannot be read; E_CONFIG_INVALID for an empty token, or a
 *   key id without a secret.
 */
export function loadClientCredentials(sources: CredentialSources): ClientCredentials | undefined {
  const env = sources.env ?? {};
  const fromFile = (path: string): string => {
    try {
      return readFileSync(path, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(ErrorCode.CONFIG_FILE, `cannot read the token file ${path}: ${(err as Error).message}`, { cause: err });
    }
  };
  const nonEmpty = (value: string | undefined): string | undefined => (value === undefined || value === '' ? undefined : value);
  let secret: string | undefined;
  let origin = '';
  if (sources.token !== undefined) [secret, origin] = [sources.token, '--token'];
  else if (sources.tokenFile !== undefined) [secret, origin] = [fromFile(sources.tokenFile), `--token-file ${sources.tokenFile}`];
  else if (nonEmpty(env[AUTH_ENV.TOKEN]) !== undefined) [secret, origin] = [env[AUTH_ENV.TOKEN], AUTH_ENV.TOKEN];
  else if (nonEmpty(env[AUTH_ENV.TOKEN_FILE]) !== undefined) [secret, origin] = [fromFile(env[AUTH_ENV.TOKEN_FILE]!), AUTH_ENV.TOKEN_FILE];
  const keyId = nonEmpty(sources.keyId) ?? nonEmpty(env[AUTH_ENV.KEY_ID]);
  if (secret === undefined) {
    if (keyId !== undefined) throw new ConfigError(ErrorCode.CONFIG_INVALID, `key id ${JSON.stringify(keyId)} given without a secret: add --token or --token-file`);
    return undefined;
  }
  if (secret === '') throw new ConfigError(ErrorCode.CONFIG_INVALID, `the token from ${origin} is empty`);
  return keyId === undefined ? { scheme: 'bearer', token: secret } : { scheme: 'hmac', keyId, secret };
}

/** The headers of one upgrade request to `url` (a GET); a fresh nonce and timestamp each call. */
export function authHeaders(credentials: ClientCredentials, url: string, nowMs: number = Date.now()): Record<string, string> {
  if (credentials.scheme === 'bearer') return { Authorization: `Bearer ${credentials.token}` };
  const { pathname, search } = new URL(url);
  return signedRequestHeaders(credentials.keyId, credentials.secret, 'GET', `${pathname || '/'}${search}`, nowMs);
}
