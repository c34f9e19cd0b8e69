/**
 * Structured logs (pino): one JSON object per line on stderr. Each `metrics.jsonl` record people act on becomes a
 * line with its figures (`event`, `step`, `loss`, `learning_rate`, `samples_per_s`, ...; `msg` is the human line
 * where there is one), the run's progress lines become `{msg, source}`, the resolved configuration `{config}`.
 * Worker losses, failed slices, quarantines and refused connections are `warn` (level 40), the rest `info` (30).
 * Read them with `swarmtune run 2>&1 | npx pino-pretty`.
 */
import pino from 'pino';
import type { MetricsRecord } from './metrics.js';
import { formatRecordLine, type LineContext } from './log-lines.js';

const WARN_EVENTS: ReadonlySet<string> = new Set(['worker_lost', 'slice_failed', 'worker_quarantined', 'auth_rejected']);

/** A pino logger writing to `stream` (synchronously to stderr by default, so nothing is lost at exit). */
export function createJsonLogger(stream?: NodeJS.WritableStream): pino.Logger {
  return pino(
    { name: 'swarmtune', timestamp: pino.stdTimeFunctions.isoTime },
    stream ?? pino.destination({ dest: 2, sync: true }),
  );
}

/** Writes `record` as one line: its fields (its own `time` aside: pino stamps the line) and the human line as `msg`. */
export function logRecord(logger: pino.Logger, record: MetricsRecord, context: LineContext): void {
  const { time: _time, ...fields } = record as MetricsRecord & { time?: string };
  const subject = typeof record.worker_id === 'string' ? ` ${record.worker_id}` : '';
  const msg = formatRecordLine(record, context) ?? `${record.event.replace(/_/g, ' ')}${subject}`;
  if (WARN_EVENTS.has(record.event)) logger.warn(fields, msg);
  else logger.info(fields, msg);
}
