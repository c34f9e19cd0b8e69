/**
 * The worker's garbage-collection setting (worker/gc-settings.ts) takes effect on this Node: in a child process
 * that applies it and then forces full GCs, V8's own trace shows each new old-generation limit set at
 * (1 + percent/100) times what survived. Real processes, V8's own trace; a bad value is refused by name.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_WORKER_HEAP_GROWING_PERCENT, HEAP_GROWING_PERCENT_ENV, applyWorkerGcSettings, workerHeapGrowingPercent } from '../../../worker/gc-settings.js';
import { ConfigError } from '../../../shared/errors.js';
import { TSX_IMPORT_URL } from '../../../shared/tsx-loader.js';

const dir = mkdtempSync(join(tmpdir(), 'swarmtune-worker-gc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const GC_MODULE = fileURLToPath(new URL('../../../worker/gc-settings.ts', import.meta.url));
const child = join(dir, 'grow-old-generation.mjs');
writeFileSync(
  child,
  `const { applyWorkerGcSettings } = await import(${JSON.stringify(GC_MODULE)});
const percent = applyWorkerGcSettings();
const keep = [];
for (let round = 0; round < 3; round++) {
  for (let i = 0; i < 100_000; i++) keep.push({ a: i, b: [i, i + 1], c: 's' + i });
  globalThis.gc();
}
console.log(JSON.stringify({ percent, kept: keep.length }));
`,
);

/** Runs the child with `env`; returns what it applied and the growing factor of every old-generation limit V8 set. */
function run(env: NodeJS.ProcessEnv): { percent: number; factors: number[] } {
  const out = spawnSync(process.execPath, ['--expose-gc', '--trace-gc-verbose', '--import', TSX_IMPORT_URL, child], {
    env: { ...process.env, [HEAP_GROWING_PERCENT_ENV]: '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(out.status, out.stderr).toBe(0);
  const lines = out.stdout.split('\n');
  // "[HeapController] Limit: old size: 45842 KB, new limit: 91684 KB (2.0)": V8's limit for the old generation.
  const factors = lines.flatMap((l) => {
    const m = /\[HeapController\] Limit: old size: \d+ KB, new limit: \d+ KB \((\d+\.\d)\)/.exec(l);
    return m ? [Number(m[1])] : [];
  });
  const result = JSON.parse(lines.filter((l) => l.startsWith('{')).at(-1)!) as { percent: number; kept: number };
  expect(result.kept).toBe(300_000);
  return { percent: result.percent, factors };
}

describe('worker GC setting', () => {
  it('sets every old-generation limit at twice what survived, by default', () => {
    const applied = run({});
    expect(applied.percent).toBe(DEFAULT_WORKER_HEAP_GROWING_PERCENT);
    expect(applied.factors.length).toBeGreaterThanOrEqual(3);
    expect(new Set(applied.factors)).toEqual(new Set([2.0]));
  });

  it(`takes another percent from ${HEAP_GROWING_PERCENT_ENV}, and 0 keeps V8's own factor`, () => {
    const wider = run({ [HEAP_GROWING_PERCENT_ENV]: '150' });
    expect(wider.percent).toBe(150);
    expect(new Set(wider.factors)).toEqual(new Set([2.5]));
    const own = run({ [HEAP_GROWING_PERCENT_ENV]: '0' });
    expect(own.percent).toBe(0);
    expect(own.factors.length).toBeGreaterThanOrEqual(3);
    // V8's own factor for this small, fast-growing heap is its maximum, 4: not the 2 the setting would impose.
    expect(own.factors.every((f) => f === 2.0)).toBe(false);
  });

  it('refuses a value that is not an integer from 0 to 300, naming the variable, before changing anything', () => {
    for (const bad of ['-1', '301', '1.5', 'fast']) {
      expect(() => workerHeapGrowingPercent({ [HEAP_GROWING_PERCENT_ENV]: bad })).toThrow(ConfigError);
      expect(() => applyWorkerGcSettings({ [HEAP_GROWING_PERCENT_ENV]: bad })).toThrow(new RegExp(`${HEAP_GROWING_PERCENT_ENV} must be an integer from 0 .* to 300, got "${bad.replace('.', '\\.')}"`));
    }
    expect(workerHeapGrowingPercent({})).toBe(DEFAULT_WORKER_HEAP_GROWING_PERCENT);
  });
});
