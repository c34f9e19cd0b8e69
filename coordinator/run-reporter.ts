/**
 * What the `run`, `coordinator` and `simulate` commands print on stderr while a run goes on, in the format of
 * `--log-format` (coordinator/log-format.ts): Trainer-style lines and progress bars (`pretty`), or pino JSON lines
 * (`json`). stdout keeps the one JSON result line at the end either way.
 */
import type { MetricsRecord } from './metrics.js';
import type { WorkerFigures } from './prometheus-training.js';
import { formatRecordLine } from './log-lines.js';
import { createJsonLogger, logRecord } from './log-json.js';
import { ProgressBars, type BarRunShape, type BarStream } from './progress-bars.js';
import type { ResolvedLogFormat } from './log-format.js';

/** Where a progress line comes from. */
export type LineSource = 'coordinator' | 'worker';

/** The reporter of one run. */
export interface RunReporter {
  /** A progress line of the run or of a local worker. */
  line(text: string, source?: LineSource): void;
  /** A `metrics.jsonl` record as it is written. */
  record(record: MetricsRecord): void;
  /** The resolved configuration (secrets already redacted). */
  config(config: unknown): void;
  /** Every worker's figures, read as the bars redraw (pretty on a terminal; ignored otherwise). */
  watchWorkers(figures: () => WorkerFigures[]): void;
  /** Stops the bars' redrawing; call once the run ends, however it ends. */
  close(): void;
}

/** Options of {@link createRunReporter}. */
export interface RunReporterOptions {
  readonly format: ResolvedLogFormat;
  /** @default process.stderr */
  readonly stream?: BarStream;
  /** Sizes the per-worker bars. */
  readonly shape: BarRunShape;
}

/** A reporter in `format`: bars only when the stream is a terminal. */
export function createRunReporter(options: RunReporterOptions): RunReporter {
  const stream = options.stream ?? process.stderr;
  let totalSteps = 0;
  const trackTotal = (record: MetricsRecord) => {
    if (record.event === 'run_start' && typeof record.total_steps === 'number') totalSteps = record.total_steps;
  };
  if (options.format === 'json') {
    const logger = createJsonLogger(options.stream);
    return {
      line: (text, source = 'coordinator') => logger.info({ source }, text),
      record(record) {
        trackTotal(record);
        logRecord(logger, record, { totalSteps });
      },
      config: (config) => logger.info({ config }, 'resolved configuration'),
      watchWorkers: () => undefined,
      close: () => logger.flush(),
    };
  }
  const bars = stream.isTTY === true ? new ProgressBars(stream, options.shape) : undefined;
  const print = (text: string) => (bars ? bars.line(text) : stream.write(`${text}\n`));
  return {
    line: (text) => print(text),
    record(record) {
      trackTotal(record);
      const text = formatRecordLine(record, { totalSteps });
      if (text !== undefined) print(text);
      bars?.onRecord(record);
    },
    config: (config) => print(`resolved configuration:\n${JSON.stringify(config, null, 2)}`),
    watchWorkers: (figures) => bars?.watchWorkers(figures),
    close: () => bars?.stop(),
  };
}
