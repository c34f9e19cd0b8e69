/**
 * Error classes and the table of stable error codes.
 *
 * Every error swarmtune raises on purpose is an {@link OrchestratorError} with a stable `code` from
 * {@link ErrorCode}. Tests assert the code, never the message text. Codes are never renamed or reused.
 */

/** Stable machine-readable error codes. Add new ones at the end of their group; never reuse one. */
export const ErrorCode = {
  // protocol and wire
  PROTOCOL_MALFORMED: 'E_PROTOCOL_MALFORMED',
  PROTOCOL_VERSION: 'E_PROTOCOL_VERSION',
  PROTOCOL_UNKNOWN_KIND: 'E_PROTOCOL_UNKNOWN_KIND',
  PROTOCOL_UNEXPECTED: 'E_PROTOCOL_UNEXPECTED',
  CODEC: 'E_CODEC',
  /** A frame holds a `__proto__`, `constructor` or `prototype` key (at any depth). */
  PROTOCOL_FORBIDDEN_KEY: 'E_PROTOCOL_FORBIDDEN_KEY',
  /** A connection could not be opened: refused, handshake rejected, retries exhausted. */
  CONNECT_FAILED: 'E_CONNECT_FAILED',
  /** A send on a connection that is closed or closing. */
  CONNECTION_CLOSED: 'E_CONNECTION_CLOSED',
  /** A chunk of a chunked transfer failed its CRC-32 check. */
  CHUNK_CHECKSUM: 'E_CHUNK_CHECKSUM',
  /** A chunked transfer would exceed the receiver's cap on concurrent transfers or reassembly bytes. */
  TRANSFER_LIMIT: 'E_TRANSFER_LIMIT',
  /** The peer stopped reading: sends stayed over the high-water mark past the stall timeout or queue cap. */
  SEND_STALLED: 'E_SEND_STALLED',
  /** A blob (base model, data shard) was asked for that the coordinator did not announce, or is not there. */
  BLOB_UNKNOWN: 'E_BLOB_UNKNOWN',
  /** A blob byte range outside the blob, too long, or answered with other bytes than asked for. */
  BLOB_RANGE: 'E_BLOB_RANGE',
  /** A blob's bytes fail their check: a range's CRC-32, or the whole file's SHA-256. */
  BLOB_INTEGRITY: 'E_BLOB_INTEGRITY',
  /** A worker's credentials were refused in the HTTP upgrade (missing, wrong, replayed, skewed): HTTP 401. */
  AUTH_FAILED: 'E_AUTH_FAILED',
  /** The TLS handshake failed: the coordinator's certificate is not trusted (wrong CA), expired, or for another host. */
  TLS_FAILED: 'E_TLS_FAILED',
  // tensors and shapes
  TENSOR_SHAPE: 'E_TENSOR_SHAPE',
  TENSOR_DTYPE: 'E_TENSOR_DTYPE',
  TENSOR_NAME: 'E_TENSOR_NAME',
  TENSOR_NON_FINITE: 'E_TENSOR_NON_FINITE',
  /** A value (token id, label, index) outside the range its tensor allows. */
  TENSOR_RANGE: 'E_TENSOR_RANGE',
  // configuration and input files
  CONFIG_UNKNOWN_KEY: 'E_CONFIG_UNKNOWN_KEY',
  CONFIG_INVALID: 'E_CONFIG_INVALID',
  MODEL_FILE: 'E_MODEL_FILE',
  DATASET: 'E_DATASET',
  /** A configuration file is missing, unreadable, not YAML/JSON, or not a mapping. */
  CONFIG_FILE: 'E_CONFIG_FILE',
  /** A client's locally computed shard plan differs from the coordinator's (other data, seed or split). */
  SHARD_PLAN_MISMATCH: 'E_SHARD_PLAN_MISMATCH',
  /** `resume_from_checkpoint` found no checkpoint whose checksums verify (missing, partial or corrupt ones are skipped). */
  CHECKPOINT_NOT_FOUND: 'E_CHECKPOINT_NOT_FOUND',
  /** A checkpoint's files fail their sha256 check or its state file cannot be read. */
  CHECKPOINT_CORRUPT: 'E_CHECKPOINT_CORRUPT',
  /** A checkpoint belongs to another run: other model, data, trainable tensors, mode or training configuration. */
  CHECKPOINT_MISMATCH: 'E_CHECKPOINT_MISMATCH',
  // run-time
  TIMEOUT: 'E_TIMEOUT',
  WORKER_LOST: 'E_WORKER_LOST',
  MODEL_MISMATCH: 'E_MODEL_MISMATCH',
  /** A client that loads the dataset itself got a different training set from the coordinator's. */
  DATA_MISMATCH: 'E_DATA_MISMATCH',
  NO_WORKERS: 'E_NO_WORKERS',
  /** A parameter update is relative to a version the worker does not hold: the sender must resync in full. */
  PARAMS_VERSION: 'E_PARAMS_VERSION',
  INTERNAL: 'E_INTERNAL',
  /** Federated aggregation over no updates, or over updates whose weights (examples, tokens) sum to zero. */
  AGGREGATION_ZERO_WEIGHT: 'E_AGGREGATION_ZERO_WEIGHT',
  /** A worker whose results were rejected at the gate too often: closed, and refused if it rejoins under its id. */
  WORKER_QUARANTINED: 'E_WORKER_QUARANTINED',
  /** A connection claimed the id of a live worker but authenticated with another key (S14): refused, 4409. */
  WORKER_ID_CONFLICT: 'E_WORKER_ID_CONFLICT',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base class of every deliberate swarmtune error. */
export class OrchestratorError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = 'OrchestratorError';
  }
}

/** Thrown when bytes from a peer are not a valid swarmtune frame (bad msgpack, missing field, wrong version or kind). */
export class ProtocolError extends OrchestratorError {
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'ProtocolError';
  }
}

/** Thrown when a tensor cannot be encoded or decoded (byte length, alignment, unknown codec). */
export class CodecError extends OrchestratorError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.CODEC, message, options);
    this.name = 'CodecError';
  }
}

/** Thrown when a tensor's name, shape, dtype or values do not match what the adapter manifest expects. */
export class ShapeError extends OrchestratorError {
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'ShapeError';
  }
}

/** Thrown at start-up for an unknown, ill-typed or conflicting configuration key. */
export class ConfigError extends OrchestratorError {
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'ConfigError';
  }
}

/** Thrown for a missing, truncated or corrupt model or dataset file. */
export class InputFileError extends OrchestratorError {
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'InputFileError';
  }
}

/** Thrown when a wait passes its deadline. */
export class TimeoutError extends OrchestratorError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.TIMEOUT, message, options);
    this.name = 'TimeoutError';
  }
}

/** Raised (as data, usually) when a worker disconnects or stops answering. */
export class WorkerLostError extends OrchestratorError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.WORKER_LOST, message, options);
    this.name = 'WorkerLostError';
  }
}

/** Thrown by federated aggregation when its inputs cannot be aggregated (no weight, mismatched or non-finite tensors use ShapeError). */
export class AggregationError extends OrchestratorError {
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'AggregationError';
  }
}

/** Exhaustiveness check for discriminated unions. */
export function assertNever(value: never, what = 'value'): never {
  throw new OrchestratorError(ErrorCode.INTERNAL, `unexpected ${what}: ${JSON.stringify(value)}`);
}

/** The stable code of any error, `E_INTERNAL` for errors that are not ours. */
export function errorCodeOf(err: unknown): ErrorCode {
  return err instanceof OrchestratorError ? err.code : ErrorCode.INTERNAL;
}

/** A failure a peer reported in an `error` frame; `code` is the peer's, `remoteCode` keeps it verbatim. */
export class RemoteError extends OrchestratorError {
  readonly remoteCode: string;
  readonly retryable: boolean;
  constructor(remoteCode: string, message: string, retryable: boolean) {
    const known = (Object.values(ErrorCode) as string[]).includes(remoteCode);
    super(known ? (remoteCode as ErrorCode) : ErrorCode.INTERNAL, message);
    this.remoteCode = remoteCode;
    this.retryable = retryable;
    this.name = 'RemoteError';
  }
}
