/**
 * The data federated aggregation works on: client updates (deltas from the global weights the client started
 * from), their weights, and aggregated results in float64, as the coordinator keeps float64 master weights
 * (coordinator/trainable-state.ts).
 */

/** Float64 tensors by name: aggregated deltas, global weights, server-optimizer moments. */
export type NamedTensors64 = Map<string, Float64Array>;

/**
 * One client's contribution to a round, as the round engine hands it to a strategy: the DELTA `local − global`
 * of every trainable tensor it trained (float32, row-major, manifest shapes), and its counts.
 */
export interface ClientUpdate {
  /** Stable client id (virtual client or worker); names the client in errors and metrics. */
  readonly clientId: string;
  /** `local − global` per tensor name. */
  readonly deltas: ReadonlyMap<string, Float32Array>;
  /** Training examples the client used this round (each counted once per local epoch). */
  readonly numExamples: number;
  /** Loss-bearing tokens the client used this round. */
  readonly numTokens: number;
  /** Client-side training metrics (e.g. `train_loss`), averaged by the strategy with the same weights. */
  readonly metrics?: Readonly<Record<string, number>>;
}

/** A client update reduced to what a pure aggregation function needs: deltas and one non-negative weight. */
export interface WeightedUpdate {
  readonly clientId: string;
  readonly deltas: ReadonlyMap<string, Float32Array>;
  /** Non-negative aggregation weight (examples or tokens); unweighted rules ignore it. */
  readonly weight: number;
}

/** A client that was asked to train or evaluate and did not deliver: lost, timed out, errored. Data, not an exception. */
export interface ClientFailure {
  readonly clientId: string;
  /** Stable error code (`E_*`) or a short reason such as `timeout`. */
  readonly code: string;
  readonly message?: string;
}

/** One client's federated evaluation of the global model. */
export interface EvaluateResult {
  readonly clientId: string;
  /** Evaluation examples. */
  readonly numExamples: number;
  /** Mean loss over the client's examples, in nats. */
  readonly loss: number;
  /** Fraction correct in [0, 1], when the task has one. */
  readonly accuracy?: number;
}

/** Metrics of a round, flat and JSON-able, for metrics.jsonl. */
export type RoundMetrics = Record<string, number | string | boolean>;
