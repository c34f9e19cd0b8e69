/**
 * A coordinator run with N workers in the test's own process, each over a real WebSocket on loopback (the product
 * starts workers as processes; tests may construct both sides in one process).
 */
import type { MetricsRecord } from '../../coordinator/metrics.js';
import { runCoordinator, type RunHooks, type RunResult } from '../../coordinator/run.js';
import type { RunConfig } from '../../shared/config.js';
import type { BackendReport } from '../../worker/backend.js';
import { connectWithRetry } from '../../worker/transport-ws.js';
import { runWorkerSession, type WorkerOutcome } from '../../worker/worker-runtime.js';

/**
 * Runs `config` with `numWorkers` in-process workers; resolves with the run's result and each worker's outcome.
 * `hooks` adds the coordinator's log and metrics hooks (its `onListening` is this helper's).
 */
export async function runWithInProcessWorkers(
  config: RunConfig,
  numWorkers: number,
  backend: BackendReport,
  hooks: Omit<RunHooks, 'onListening'> = {},
): Promise<{ result: RunResult; outcomes: WorkerOutcome[] }> {
  const sessions: Promise<WorkerOutcome>[] = [];
  const result = await runCoordinator(config, {
    log: () => undefined,
    ...hooks,
    onListening: (url) => {
      for (let i = 0; i < numWorkers; i++) {
        sessions.push(connectWithRetry(url).then((transport) => runWorkerSession({ transport, backend, log: () => undefined })));
      }
    },
  });
  return { result, outcomes: await Promise.all(sessions) };
}

/** {@link runWithInProcessWorkers}, keeping the run's `train` metrics records and the coordinator's log lines. */
export async function runRecordingSteps(config: RunConfig, numWorkers: number, backend: BackendReport): Promise<{ result: RunResult; records: MetricsRecord[]; logs: string[] }> {
  const records: MetricsRecord[] = [];
  const logs: string[] = [];
  const { result } = await runWithInProcessWorkers(config, numWorkers, backend, {
    log: (line) => logs.push(line),
    onMetrics: (record) => record.event === 'train' && records.push(record),
  });
  return { result, records, logs };
}
