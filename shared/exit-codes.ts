import { ErrorCode, OrchestratorError } from './errors.js';

/**
 * Process exit codes of the `swarmtune` commands, allocated by range so a script can tell a mistake in its own
 * input (2-9) from a failure of the run (10-19) or of the connection (20-29).
 */
export const ExitCode = {
  OK: 0,
  /** A bug or an error swarmtune did not anticipate. */
  UNEXPECTED: 1,
  /** Bad command line or configuration. */
  USAGE: 2,
  /** A model or dataset file is missing or unreadable. */
  INPUT_FILE: 3,
  /** Too few workers joined, or all were lost. */
  NO_WORKERS: 10,
  /** The run failed while training. */
  RUN_FAILED: 11,
  /** The connection to the coordinator failed, or it refused this worker (protocol version, model mismatch). */
  CONNECTION: 20,
  /** Stopped by SIGINT/SIGTERM (128 + 2, as shells report). */
  INTERRUPTED: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** The exit code that describes an error. */
export function exitCodeFor(err: unknown): ExitCode {
  if (!(err instanceof OrchestratorError)) return ExitCode.UNEXPECTED;
  switch (err.code) {
    case ErrorCode.CONFIG_INVALID:
    case ErrorCode.CONFIG_UNKNOWN_KEY:
    case ErrorCode.CONFIG_FILE:
      return ExitCode.USAGE;
    case ErrorCode.MODEL_FILE:
    case ErrorCode.DATASET:
      return ExitCode.INPUT_FILE;
    case ErrorCode.NO_WORKERS:
    case ErrorCode.WORKER_LOST:
      return ExitCode.NO_WORKERS;
    case ErrorCode.PROTOCOL_VERSION:
    case ErrorCode.MODEL_MISMATCH:
    case ErrorCode.CONNECT_FAILED:
    case ErrorCode.AUTH_FAILED:
    case ErrorCode.TLS_FAILED:
      return ExitCode.CONNECTION;
    default:
      return ExitCode.RUN_FAILED;
  }
}

/** One line for a terminal: `swarmtune: E_CONFIG_UNKNOWN_KEY: unknown config key "peft.rank" ...`. */
export function describeError(err: unknown): string {
  if (err instanceof OrchestratorError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}
