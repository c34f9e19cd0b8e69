/**
 * Federated evaluation: the example-weighted loss and accuracy over the clients that reported, per-client
 * metrics, and the worst-client gap (how far the worst client falls below the weighted mean).
 */
import { AggregationError, ErrorCode } from '../../shared/errors.js';
import type { ClientFailure, EvaluateResult, RoundMetrics } from './types.js';

/** Aggregated federated evaluation of one round. */
export interface EvaluateSummary {
  /** Example-weighted mean loss, nats. */
  readonly loss: number;
  /** Example-weighted mean accuracy; undefined when no client reported one. */
  readonly accuracy?: number;
  readonly numExamples: number;
  /** Per client, in input order. */
  readonly perClient: readonly EvaluateResult[];
  /** Highest client loss and its gap above the mean loss. */
  readonly worstLoss: number;
  readonly lossGap: number;
  /** Lowest client accuracy and the mean's gap above it (when accuracies are reported). */
  readonly worstAccuracy?: number;
  readonly accuracyGap?: number;
  readonly numFailures: number;
  /** Flat metrics for metrics.jsonl: `eval_loss`, `eval_accuracy`, `eval_worst_*`, `eval_*_gap`, counts. */
  readonly metrics: RoundMetrics;
}

/**
 * Aggregate client evaluations, weighted by their example counts (Flower's `weighted_loss_avg`).
 * @throws AggregationError E_AGGREGATION_ZERO_WEIGHT when no result has examples.
 */
export function aggregateEvaluations(results: readonly EvaluateResult[], failures: readonly ClientFailure[]): EvaluateSummary {
  const counted = results.filter((r) => r.numExamples > 0);
  const numExamples = counted.reduce((s, r) => s + r.numExamples, 0);
  if (numExamples <= 0) {
    throw new AggregationError(ErrorCode.AGGREGATION_ZERO_WEIGHT, `aggregateEvaluations: ${results.length} result(s) with no evaluation examples`);
  }
  const loss = counted.reduce((s, r) => s + r.numExamples * r.loss, 0) / numExamples;
  const worstLoss = Math.max(...counted.map((r) => r.loss));
  const withAcc = counted.filter((r) => r.accuracy !== undefined);
  const accExamples = withAcc.reduce((s, r) => s + r.numExamples, 0);
  const accuracy = withAcc.length ? withAcc.reduce((s, r) => s + r.numExamples * r.accuracy!, 0) / accExamples : undefined;
  const worstAccuracy = withAcc.length ? Math.min(...withAcc.map((r) => r.accuracy!)) : undefined;
  const metrics: RoundMetrics = {
    eval_loss: loss,
    eval_worst_loss: worstLoss,
    eval_loss_gap: worstLoss - loss,
    eval_num_examples: numExamples,
    eval_num_clients: counted.length,
    eval_num_failures: failures.length,
  };
  if (accuracy !== undefined && worstAccuracy !== undefined) {
    metrics.eval_accuracy = accuracy;
    metrics.eval_worst_accuracy = worstAccuracy;
    metrics.eval_accuracy_gap = accuracy - worstAccuracy;
  }
  return {
    loss,
    accuracy,
    numExamples,
    perClient: results,
    worstLoss,
    lossGap: worstLoss - loss,
    worstAccuracy,
    accuracyGap: accuracy !== undefined && worstAccuracy !== undefined ? accuracy - worstAccuracy : undefined,
    numFailures: failures.length,
    metrics,
  };
}
