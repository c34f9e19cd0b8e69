/**
 * The coordinator's garbage-collection setting (coordinator/gc-settings.ts) takes effect on this Node: a child
 * process that fills its old generation starts incremental marking with V8's default, and none once the
 * setting is applied (its full GCs are then atomic). Real processes, V8's own trace.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { applyCoordinatorGcSettings, KEEP_INCREMENTAL_MARKING_ENV } from '../../../coordinator/gc-settings.js';
import { TSX_IMPORT_URL } from '../../../shared/tsx-loader.js';

const dir = mkdtempSync(join(tmpdir(), 'swarmtune-gc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const GC_MODULE = fileURLToPath(new URL('../../../coordinator/gc-settings.ts', import.meta.url));
const child = join(dir, 'fill-old-generation.mjs');
writeFileSync(
  child,
  `const { applyCoordinatorGcSettings } = await import(${JSON.stringify(GC_MODULE)});
const off = process.env.APPLY === '1' ? applyCoordinatorGcSettings() : false;
const keep = [];
for (let i = 0; i < 600_000; i++) keep.push({ a: i, b: [i, i + 1], c: 's' + i });
for (let i = 0; i < 200; i++) keep.push(new ArrayBuffer(64 * 1024));
console.log(JSON.stringify({ off, kept: keep.length }));
`,
);

function run(apply: boolean, env: NodeJS.ProcessEnv = {}): { starts: number; fullGcs: number; result: { off: boolean; kept: number } } {
  const out = spawnSync(process.execPath, ['--trace-incremental-marking', '--trace-gc', '--import', TSX_IMPORT_URL, child], {
    env: { ...process.env, [KEEP_INCREMENTAL_MARKING_ENV]: '', ...env, APPLY: apply ? '1' : '0' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(out.status, out.stderr).toBe(0);
  const lines = out.stdout.split('\n');
  return {
    starts: lines.filter((l) => l.includes('[IncrementalMarking] Start (')).length,
    fullGcs: lines.filter((l) => l.includes('Mark-Compact')).length,
    result: JSON.parse(lines.filter((l) => l.startsWith('{')).at(-1)!),
  };
}

describe('coordinator GC setting', () => {
  it('turns incremental marking off: a filling old generation starts marking by default, never with the setting', () => {
    const byDefault = run(false);
    expect(byDefault.result).toEqual({ off: false, kept: 600_200 });
    expect(byDefault.starts).toBeGreaterThan(0);
    const applied = run(true);
    expect(applied.result).toEqual({ off: true, kept: 600_200 });
    expect(applied.starts).toBe(0);
    // The old generation is still collected, in atomic full GCs.
    expect(applied.fullGcs).toBeGreaterThan(0);
  });

  it(`keeps V8's default when ${KEEP_INCREMENTAL_MARKING_ENV}=1`, () => {
    expect(applyCoordinatorGcSettings({ [KEEP_INCREMENTAL_MARKING_ENV]: '1' })).toBe(false);
    const kept = run(true, { [KEEP_INCREMENTAL_MARKING_ENV]: '1' });
    expect(kept.result.off).toBe(false);
    expect(kept.starts).toBeGreaterThan(0);
  });
});
