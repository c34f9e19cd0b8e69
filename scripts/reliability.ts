/**
 * `npm run reliability`: the scenario suite of RELIABILITY.md as a report. Runs every test file that names a
 * scenario (a test title starting `S<n>: `) through vitest's JSON reporter, then prints one row per scenario S1–S20:
 * id, pass / FAIL / not covered, and the figure its tests measured (tests record figures with
 * `recordFigure` from test/helpers/reliability-figures.ts). A scenario passes when it has at least one test and all
 * of them pass, and every file naming it ran (a file that failed to load, or gave no result, fails its scenarios);
 * "not covered" counts as failed. Last line: `N passed, M failed`; exit 1 when M > 0.
 *
 * `-- --scenarios S11,S14` limits the run to those scenarios' files (the others are listed as "not run" and
 * counted in neither total).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { FIGURES_ENV } from '../test/helpers/reliability-figures.js';

/** The scenarios of RELIABILITY.md, by id. */
const SCENARIOS: readonly (readonly [string, string])[] = [
  ['S1', 'worker SIGKILLed mid local step'],
  ['S2', 'worker dies while uploading'],
  ['S3', 'half-open partition (blackhole)'],
  ['S4', 'one-sided partition'],
  ['S5', 'slow straggler'],
  ['S6', 'oversized message'],
  ['S7', 'fragment flood'],
  ['S8', 'malformed msgpack (fuzzed)'],
  ['S9', 'prototype-pollution keys'],
  ['S10', 'wrong shape / dtype / name'],
  ['S11', 'NaN updates, quarantine, zero weight'],
  ['S12', 'Byzantine scaled / sign-flipped update'],
  ['S13', 'coordinator killed, --resume'],
  ['S14', 'duplicate worker id'],
  ['S15', 'authentication failure'],
  ['S16', 'protocol version mismatch'],
  ['S17', 'slow consumer (backpressure)'],
  ['S18', 'below quorum'],
  ['S19', 'scale-up mid-run'],
  ['S20', 'resource leak over 50 rounds'],
];

const ROOT = join(import.meta.dirname, '..');
const TITLE_ID = /\b(S\d{1,2}):/g;

/** Test files under test/ that name at least one scenario, with the scenario ids each names. */
function scenarioFiles(): Map<string, Set<string>> {
  const files = new Map<string, Set<string>>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.test.ts')) {
        const ids = new Set([...readFileSync(path, 'utf8').matchAll(/\bit(?:\.\w+)?\(\s*['"`](S\d{1,2}):/g)].map((m) => m[1]));
        if (ids.size > 0) files.set(relative(ROOT, path), ids);
      }
    }
  };
  walk(join(ROOT, 'test'));
  return files;
}

interface AssertionResult {
  readonly title: string;
  readonly fullName?: string;
  readonly status: string;
  readonly duration?: number;
  readonly failureMessages?: string[];
}

const scenariosFlag = process.argv.indexOf('--scenarios');
const only = scenariosFlag >= 0 ? new Set(process.argv[scenariosFlag + 1].split(',').map((s) => s.trim().toUpperCase())) : undefined;
const scenarioFileIds = scenarioFiles();
const files = [...scenarioFileIds].filter(([, ids]) => !only || [...ids].some((id) => only.has(id))).map(([file]) => file);

const work = mkdtempSync(join(tmpdir(), 'swarmtune-reliability-'));
const jsonPath = join(work, 'vitest.json');
const figuresPath = join(work, 'figures.jsonl');
console.error(`running ${files.length} test files: ${files.join(' ')}`);
const started = performance.now();
const run = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--reporter=json', `--outputFile=${jsonPath}`, ...files], {
  cwd: ROOT,
  env: { ...process.env, [FIGURES_ENV]: figuresPath },
  stdio: ['ignore', 'ignore', 'inherit'],
});
console.error(`vitest exited ${run.status ?? run.signal} after ${((performance.now() - started) / 1000).toFixed(0)} s`);

const byScenario = new Map<string, AssertionResult[]>();
const reported = new Set<string>();
if (existsSync(jsonPath)) {
  const report = JSON.parse(readFileSync(jsonPath, 'utf8')) as { testResults: { name: string; status?: string; message?: string; assertionResults: AssertionResult[] }[] };
  for (const file of report.testResults) {
    const path = relative(ROOT, file.name);
    reported.add(path);
    for (const test of file.assertionResults) {
      for (const [, id] of test.title.matchAll(TITLE_ID)) byScenario.set(id, [...(byScenario.get(id) ?? []), test]);
    }
    // A file that failed outside its tests (it did not load, a hook threw) fails every scenario it names: other files
    // passing the same scenario must not hide it.
    if (file.status === 'failed' && file.message) {
      for (const id of scenarioFileIds.get(path) ?? []) byScenario.set(id, [...(byScenario.get(id) ?? []), { title: `${path}: ${file.message.split('\n')[0]}`, status: 'failed' }]);
    }
  }
}
// A scenario file with no result at all (vitest crashed or was killed) fails its scenarios too.
for (const file of files) {
  if (reported.has(file)) continue;
  for (const id of scenarioFileIds.get(file) ?? []) byScenario.set(id, [...(byScenario.get(id) ?? []), { title: `${file}: no result from vitest`, status: 'failed' }]);
}
const figures = new Map<string, string[]>();
if (existsSync(figuresPath)) {
  for (const line of readFileSync(figuresPath, 'utf8').split('\n').filter(Boolean)) {
    const { scenario, figure } = JSON.parse(line) as { scenario: string; figure: string };
    figures.set(scenario, [...(figures.get(scenario) ?? []), figure]);
  }
}

let passed = 0;
let failed = 0;
const idWidth = 4;
const titleWidth = Math.max(...SCENARIOS.map(([, title]) => title.length));
console.log(`${'id'.padEnd(idWidth)}  ${'scenario'.padEnd(titleWidth)}  ${'result'.padEnd(11)}  figure`);
for (const [id, title] of SCENARIOS) {
  const tests = byScenario.get(id) ?? [];
  let result: string;
  let figure: string;
  if (tests.length === 0) {
    result = only && !only.has(id) ? 'not run' : 'not covered';
    figure = '-';
  } else {
    const failures = tests.filter((t) => t.status !== 'passed');
    result = failures.length === 0 ? 'pass' : 'FAIL';
    figure =
      failures.length > 0
        ? `${failures.length}/${tests.length} tests failed: ${failures.map((t) => `${t.title} (${t.status})`).join('; ')}`
        : (figures.get(id)?.join('; ') ?? `${tests.length} test(s) passed`);
  }
  if (result === 'pass') passed++;
  else if (result !== 'not run') failed++;
  console.log(`${id.padEnd(idWidth)}  ${title.padEnd(titleWidth)}  ${result.padEnd(11)}  ${figure}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
