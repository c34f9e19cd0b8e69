/**
 * Strikes against workers whose results fail the value gate (`validateTensors`: non-finite values, wrong shape,
 * dtype or name; a non-finite loss; a miscounted batch). After `strikesToQuarantine` strikes a worker id is
 * quarantined for the rest of the run: the registry closes its session (close 4006) and refuses a rejoin under it.
 * Failures that say nothing about the worker's honesty (timeouts, lost connections, errors the worker reported
 * itself) are not strikes.
 */
import { ErrorCode, RemoteError, errorCodeOf } from '../shared/errors.js';

/** Error codes that mean "the worker sent a result the gate refused". */
const GATE_CODES: ReadonlySet<string> = new Set([
  ErrorCode.TENSOR_NON_FINITE,
  ErrorCode.TENSOR_SHAPE,
  ErrorCode.TENSOR_DTYPE,
  ErrorCode.TENSOR_NAME,
  ErrorCode.TENSOR_RANGE,
  ErrorCode.PROTOCOL_UNEXPECTED,
]);

/**
 * Whether `err` is a rejection of a worker's result at the coordinator's gate (and so a strike). An error the worker
 * sent about itself ({@link RemoteError}) is not, whatever its code.
 */
export function isGateRejection(err: unknown): boolean {
  return !(err instanceof RemoteError) && GATE_CODES.has(errorCodeOf(err));
}

/** A worker's strike record. */
export interface StrikeRecord {
  readonly workerId: string;
  /** Strikes so far (including this one). */
  readonly strikes: number;
  /** Whether this strike quarantined the worker. */
  readonly isQuarantined: boolean;
  /** Error code of the rejection. */
  readonly code: string;
}

/** Counts strikes per worker id and remembers quarantined ids for the run. */
export class Quarantine {
  private readonly strikes = new Map<string, number>();
  private readonly quarantined = new Set<string>();

  /**
   * @param strikesToQuarantine strikes after which a worker is quarantined; 0 = never. @default 3
   */
  constructor(readonly strikesToQuarantine = 3) {}

  /** Counts one gate rejection against `workerId`; says whether the worker is now quarantined. */
  strike(workerId: string, err: unknown): StrikeRecord {
    const strikes = (this.strikes.get(workerId) ?? 0) + 1;
    this.strikes.set(workerId, strikes);
    const isQuarantined = this.strikesToQuarantine > 0 && strikes >= this.strikesToQuarantine;
    if (isQuarantined) this.quarantined.add(workerId);
    return { workerId, strikes, isQuarantined, code: errorCodeOf(err) };
  }

  /** Whether `workerId` was quarantined during this run. */
  isQuarantined(workerId: string): boolean {
    return this.quarantined.has(workerId);
  }

  /** Strikes counted against `workerId` so far. */
  strikesOf(workerId: string): number {
    return this.strikes.get(workerId) ?? 0;
  }
}
