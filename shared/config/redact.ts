/**
 * The configuration as it may be printed and saved: secrets (`auth_token`) replaced by null. File paths of secrets
 * (`auth_token_file`, `auth_keys_file`, `tls_key`) stay: they name where the secret is, not what it is. A redacted
 * `run_config.json` of a `token` run recompiles only once the token is supplied again (env SWARMTUNE_AUTH_TOKEN).
 */
import type { RunConfig } from './run-config.js';

/** Keys whose values are secrets. */
export const SECRET_KEYS = ['auth_token'] as const;

/** A copy of `config` with every {@link SECRET_KEYS} value that is set replaced by null. */
export function redactSecrets(config: RunConfig): RunConfig {
  const copy: Record<string, unknown> = { ...config };
  for (const key of SECRET_KEYS) if (copy[key] !== null && copy[key] !== undefined) copy[key] = null;
  return copy as unknown as RunConfig;
}
