/**
 * Measured figures of reliability scenarios (RELIABILITY.md S1–S20), for `npm run reliability`: a test calls
 * `recordFigure('S18', 'exit 0.41 s after join_timeout')` and, when the report runs the suite, the line lands in
 * the file named by {@link FIGURES_ENV} (JSON lines). Outside the report it does nothing.
 */
import { appendFileSync } from 'node:fs';

/** Environment variable naming the JSON-lines file figures are appended to. */
export const FIGURES_ENV = 'SWARMTUNE_RELIABILITY_FIGURES';

/** Appends `{ scenario, figure }` to the figures file, if the report asked for one. */
export function recordFigure(scenario: string, figure: string): void {
  const path = process.env[FIGURES_ENV];
  if (path) appendFileSync(path, `${JSON.stringify({ scenario, figure })}\n`);
}
