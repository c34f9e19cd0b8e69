/**
 * The layering of DESIGN.md §1 and §6, checked on the import statements of every source file: coordinator/ and
 * worker/ import only shared/ (never each other), shared/ never imports ws or a TF.js backend package, and
 * worker/backend.ts is the only importer of a backend package.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2]);
}

const BACKEND_PACKAGES = /^@tensorflow\/tfjs-(backend-wasm|backend-webgl|backend-webgpu|node|node-gpu)(\/|$)/;

describe('architecture', () => {
  it('finds the source files it checks', () => {
    expect(sourceFiles('coordinator').length).toBeGreaterThan(5);
    expect(sourceFiles('worker').length).toBeGreaterThan(3);
    expect(sourceFiles('shared').length).toBeGreaterThan(20);
  });

  it('coordinator/ never imports worker/, and worker/ never imports coordinator/', () => {
    const offenders = [
      ...sourceFiles('coordinator').flatMap((f) => importsOf(f).filter((s) => s.includes('/worker/')).map((s) => `${f} → ${s}`)),
      ...sourceFiles('worker').flatMap((f) => importsOf(f).filter((s) => s.includes('/coordinator/')).map((s) => `${f} → ${s}`)),
    ];
    expect(offenders).toEqual([]);
  });

  it('shared/ imports neither ws nor a TF.js backend package, nor coordinator/ or worker/', () => {
    const offenders = sourceFiles('shared').flatMap((f) =>
      importsOf(f)
        .filter((s) => s === 'ws' || BACKEND_PACKAGES.test(s) || /\/(coordinator|worker)\//.test(s))
        .map((s) => `${f} → ${s}`),
    );
    expect(offenders).toEqual([]);
  });

  it('worker/backend.ts is the only importer of a backend package', () => {
    const importers = ['coordinator', 'worker', 'shared', 'scripts']
      .flatMap(sourceFiles)
      .filter((f) => importsOf(f).some((s) => BACKEND_PACKAGES.test(s)))
      .map((f) => relative('.', f));
    expect(importers).toEqual([join('worker', 'backend.ts')]);
  });
});
