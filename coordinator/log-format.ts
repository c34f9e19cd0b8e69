/**
 * How the coordinator CLI reports a run on stderr (`--log-format`): `pretty` (human lines in the Hugging Face
 * Trainer's style, with progress bars when stderr is a terminal), `json` (one pino JSON object per line: one per
 * step or round with its figures, readable with `| npx pino-pretty`), or `auto` (`pretty` on a terminal, else `json`).
 */
import { ConfigError, ErrorCode } from '../shared/errors.js';

/** The values of `--log-format`. */
export const LogFormat = { AUTO: 'auto', PRETTY: 'pretty', JSON: 'json' } as const;
export type LogFormat = (typeof LogFormat)[keyof typeof LogFormat];

/** A resolved format: `auto` decided. */
export type ResolvedLogFormat = Exclude<LogFormat, 'auto'>;

/**
 * Resolves `--log-format` (undefined = `auto`) against whether stderr is a terminal.
 * @throws ConfigError E_CONFIG_INVALID for a value that is not auto, pretty or json
 */
export function resolveLogFormat(value: string | undefined, isTTY: boolean): ResolvedLogFormat {
  const format = value ?? LogFormat.AUTO;
  if (format === LogFormat.PRETTY || format === LogFormat.JSON) return format;
  if (format === LogFormat.AUTO) return isTTY ? LogFormat.PRETTY : LogFormat.JSON;
  throw new ConfigError(ErrorCode.CONFIG_INVALID, `--log-format must be auto, pretty or json, got ${JSON.stringify(value)}`);
}
