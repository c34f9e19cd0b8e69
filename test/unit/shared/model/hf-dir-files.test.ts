/**
 * The file list of an HF model directory (what the coordinator announces and serves) and the directory digest
 * recomputed from it: it must equal the digest the loaders compute, for single-file, sharded and BERT directories.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { sha256OfFile } from '../../../../shared/blobs/blob-store.js';
import { hfDirDigest, isSafeModelFileName, listHfDirFiles } from '../../../../shared/model/hf-dir-files.js';
import { loadBaseModel } from '../../../../shared/model/load-model.js';
import { writeRandomHfDir } from '../../../helpers/random-hf-dir.js';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/', import.meta.url));

describe('listHfDirFiles / hfDirDigest', () => {
  it('lists a sharded directory: config, index, shards in order, tokenizer files; the digest is the loader\'s', async () => {
    const dir = join(FIXTURES, 'hf-llama', 'model');
    const files = await listHfDirFiles(dir);
    expect(files.map((f) => f.name)).toEqual([
      'config.json',
      'model.safetensors.index.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    for (const f of files) expect(f.sha256, f.name).toBe(await sha256OfFile(join(dir, f.name)));
    expect(files.find((f) => f.name === 'config.json')?.sizeBytes).toBe(489);
    expect(hfDirDigest(files)).toBe((await loadBaseModel(dir)).sha256);
    // The index does not count in the digest (the loaders hash only what they read tensors and tokens from).
    expect(hfDirDigest(files.filter((f) => !f.name.endsWith('.index.json')))).toBe(hfDirDigest(files));
  });

  it('lists a single-file directory and leaves out files the loader does not read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmtune-hfdir-'));
    await writeRandomHfDir(dir, { seed: 3, dim: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, hiddenDim: 32, vocabSize: 400 });
    writeFileSync(join(dir, 'README.md'), 'a model card\n');
    const files = await listHfDirFiles(dir);
    expect(files.map((f) => f.name)).toEqual(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    expect(hfDirDigest(files)).toBe((await loadBaseModel(dir)).sha256);
  });

  it('gives the BERT loader\'s digest too', async () => {
    const dir = join(FIXTURES, 'hf-bert');
    const files = await listHfDirFiles(dir);
    expect(files.map((f) => f.name)).toEqual(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    expect(hfDirDigest(files)).toBe((await loadBaseModel(dir)).sha256);
  });

  it('refuses a directory without weights with E_MODEL_FILE', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmtune-hfdir-'));
    writeFileSync(join(dir, 'config.json'), '{}');
    await expect(listHfDirFiles(dir)).rejects.toMatchObject({ code: 'E_MODEL_FILE', message: expect.stringMatching(/model\.safetensors cannot be read/) });
  });
});

describe('isSafeModelFileName', () => {
  it('accepts HF file names and refuses paths, traversals, hidden and odd names', () => {
    for (const ok of ['config.json', 'model-00001-of-00002.safetensors', 'tokenizer_config.json', 'spiece+v2.model']) expect(isSafeModelFileName(ok), ok).toBe(true);
    for (const bad of ['', '.', '..', '../x', 'a/b', '/abs', 'C:x', 'a\\b', '.hidden', 'a..b', 'x\u0000', 'sp ace', 'ü', 'x'.repeat(256)]) {
      expect(isSafeModelFileName(bad), JSON.stringify(bad)).toBe(false);
    }
  });
});
