import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * One line of `metrics.jsonl`: a training log (`train`: a data-parallel logging window; `round`: a federated
 * round), an evaluation (`eval` centralized, `federated_eval` on clients), or a run event, with HF Trainer field names.
 */
export interface MetricsRecord {
  readonly event: 'train' | 'round' | 'eval' | 'federated_eval' | 'worker_joined' | 'worker_lost' | 'worker_quarantined' | 'auth_rejected' | 'slice_failed' | 'run_start' | 'run_end';
  readonly step?: number;
  readonly epoch?: number;
  readonly round?: number;
  readonly [field: string]: unknown;
}

/**
 * Appends metrics records to a JSONL file (one object per line, flushed on each write so a killed run keeps
 * everything logged so far) and hands each record to an optional listener (the console reporter).
 */
export class MetricsLog {
  private readonly listeners: ((record: MetricsRecord & { time: string }) => void)[] = [];

  constructor(
    readonly path: string,
    private readonly listener?: (record: MetricsRecord & { time: string }) => void,
  ) {
    mkdirSync(dirname(path), { recursive: true });
  }

  /** Writes one record, stamped with the wall-clock time. */
  write(record: MetricsRecord): void {
    const stamped = { time: new Date().toISOString(), ...record };
    appendFileSync(this.path, `${JSON.stringify(stamped)}\n`);
    this.listener?.(stamped);
    for (const listener of this.listeners) listener(stamped);
  }

  /** Adds a listener of every record written from now on (the dashboard); returns the function that removes it. */
  addListener(listener: (record: MetricsRecord & { time: string }) => void): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }
}
