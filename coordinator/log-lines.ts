/**
 * The human lines of a run (Hugging Face Trainer style), one per `metrics.jsonl` record that people read:
 * `step 60/63  epoch 0.95  loss 0.2712  lr 4.76e-4  grad_norm 1.034  30.1 samples/s` per logging step,
 * `epoch 1: eval_loss 0.2569  eval_accuracy 0.9033` per evaluation, and the clients' evaluation of a round.
 * Pure: the pretty reporter prints them, the JSON reporter uses them as each line's `msg`.
 */
import type { MetricsRecord } from './metrics.js';

/** What a line needs beyond its record. */
export interface LineContext {
  /** Total optimizer steps of the run (from its `run_start` record); 0 when unknown. */
  readonly totalSteps: number;
}

/** The human line of `record`, or undefined for records that have none (joins, rounds: the run logs those itself). */
export function formatRecordLine(record: MetricsRecord, context: LineContext): string | undefined {
  const r = record as Record<string, number>;
  if (record.event === 'train') {
    return `step ${r.step}/${context.totalSteps}  epoch ${r.epoch.toFixed(2)}  loss ${r.loss.toFixed(4)}  lr ${r.learning_rate.toExponential(2)}  grad_norm ${r.grad_norm.toFixed(3)}  ${r.samples_per_s.toFixed(1)} samples/s`;
  }
  if (record.event === 'eval') {
    const when =
      r.round !== undefined
        ? r.round === 0
          ? 'before training'
          : `round ${r.round}`
        : r.step === 0
          ? 'before training'
          : Number.isInteger(r.epoch)
            ? `epoch ${r.epoch}`
            : `step ${r.step}`;
    return `${when}: eval_loss ${r.eval_loss.toFixed(4)}  eval_accuracy ${r.eval_accuracy.toFixed(4)}`;
  }
  if (record.event === 'federated_eval' && r.eval_loss !== undefined) {
    return `round ${r.round} on clients: eval_loss ${r.eval_loss.toFixed(4)}  worst client ${r.eval_worst_loss?.toFixed(4)}`;
  }
  return undefined;
}
