/**
 * Assembling a shipped HF directory in the worker's cache (worker/hf-dir-fetch.ts) with a stand-in fetcher that
 * copies blobs from a local directory: the announced list is checked, the directory appears only whole, a cached
 * copy is verified file by file, and a fetch cut on one file leaves nothing under the final name.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256OfFile } from '../../../shared/blobs/blob-store.js';
import { ErrorCode, InputFileError, OrchestratorError } from '../../../shared/errors.js';
import { hfDirDigest, listHfDirFiles } from '../../../shared/model/hf-dir-files.js';
import type { ModelFileRef, ModelRef } from '../../../shared/protocol/messages.js';
import { checkedHfFiles, hfCachePathOf, obtainHfDir, type ObtainHfDirOptions } from '../../../worker/hf-dir-fetch.js';

const SOURCE = fileURLToPath(new URL('../../fixtures/hf-llama/model/', import.meta.url));

let files: ModelFileRef[];
let digest: string;
let ref: ModelRef & { files: readonly ModelFileRef[] };

beforeAll(async () => {
  files = await listHfDirFiles(SOURCE);
  digest = hfDirDigest(files);
  ref = { path: '/nowhere/model', sha256: digest, format: 'hf', files };
});

/** A fetcher that "downloads" each file by copying it from SOURCE into `<cache>/blobs/<sha256>`, recording names. */
function copier(cacheDir: string, fetched: string[], failOn?: string): ObtainHfDirOptions['fetchFile'] {
  return async (file) => {
    if (file.name === failOn) throw new OrchestratorError(ErrorCode.CONNECTION_CLOSED, `cut while fetching ${file.name}`);
    fetched.push(file.name);
    mkdirSync(join(cacheDir, 'blobs'), { recursive: true });
    const path = join(cacheDir, 'blobs', file.sha256);
    // As the blob store does: a blob whose bytes no longer hash to its name is fetched again.
    if (!existsSync(path) || (await sha256OfFile(path)) !== file.sha256) copyFileSync(join(SOURCE, file.name), path);
    return { path, fetchedBytes: file.sizeBytes, resumedFromBytes: 0 };
  };
}

describe('checkedHfFiles', () => {
  it('accepts the announced list whose digest is the directory digest', () => {
    expect(checkedHfFiles(ref)).toBe(files);
  });

  it('refuses unsafe or repeated names, a list without config.json, and a list that does not hash to the digest', () => {
    for (const name of ['../evil', '/etc/passwd', 'sub/dir.json', '..', '.hidden']) {
      const bad = { ...ref, files: [...files, { name, sha256: 'ab'.repeat(32), sizeBytes: 1 }] };
      expect(() => checkedHfFiles(bad), name).toThrow(expect.objectContaining({ code: ErrorCode.PROTOCOL_MALFORMED, message: expect.stringContaining('not a plain file name') }));
    }
    expect(() => checkedHfFiles({ ...ref, files: [...files, files[0]] })).toThrow(/lists config\.json twice/);
    expect(() => checkedHfFiles({ ...ref, files: files.slice(1) })).toThrow(/has no config\.json/);
    expect(() => checkedHfFiles({ ...ref, files: [] })).toThrow(/holds 0 files/);
    const swapped = files.map((f) => (f.name === 'tokenizer.json' ? { ...f, sha256: 'cd'.repeat(32) } : f));
    expect(() => checkedHfFiles({ ...ref, files: swapped })).toThrow(expect.objectContaining({ code: ErrorCode.MODEL_MISMATCH }));
  });
});

describe('obtainHfDir', () => {
  it('assembles <cache>/hf/<digest>/ from blobs (hard links), then finds it in the cache', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'swarmtune-cache-'));
    const fetched: string[] = [];
    const logs: string[] = [];
    const got = await obtainHfDir(digest, files, { cacheDir, fetchFile: copier(cacheDir, fetched), log: (l) => logs.push(l) });
    const final = hfCachePathOf(cacheDir, digest);
    expect(got).toEqual({ path: final, source: 'fetched', fetchedBytes: files.reduce((s, f) => s + f.sizeBytes, 0) });
    expect(fetched).toEqual(files.map((f) => f.name));
    expect(readdirSync(final).sort()).toEqual(files.map((f) => f.name).sort());
    for (const f of files) {
      expect(readFileSync(join(final, f.name)).equals(readFileSync(join(SOURCE, f.name))), f.name).toBe(true);
      expect(statSync(join(final, f.name)).ino).toBe(statSync(join(cacheDir, 'blobs', f.sha256)).ino);
    }
    expect(readdirSync(join(cacheDir, 'hf'))).toEqual([digest]);

    fetched.length = 0;
    expect(await obtainHfDir(digest, files, { cacheDir, fetchFile: copier(cacheDir, fetched), log: () => undefined })).toMatchObject({ source: 'cache', fetchedBytes: 0 });
    expect(fetched).toEqual([]);
  });

  it('re-assembles a cached directory whose file was edited or deleted', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'swarmtune-cache-'));
    const fetchFile = copier(cacheDir, []);
    const { path } = await obtainHfDir(digest, files, { cacheDir, fetchFile, log: () => undefined });
    // Edited in place: the linked blob changes with it, and both are fetched again.
    const target = join(path, 'config.json');
    writeFileSync(target, '');
    const logs: string[] = [];
    expect(await obtainHfDir(digest, files, { cacheDir, fetchFile, log: (l) => logs.push(l) })).toMatchObject({ source: 'fetched' });
    expect(logs.some((l) => /config\.json has 0 bytes.*fetching it again/.test(l))).toBe(true);
    expect(readFileSync(target).equals(readFileSync(join(SOURCE, 'config.json')))).toBe(true);

    rmSync(join(path, 'tokenizer.json'));
    logs.length = 0;
    expect(await obtainHfDir(digest, files, { cacheDir, fetchFile, log: (l) => logs.push(l) })).toMatchObject({ source: 'fetched' });
    expect(logs.some((l) => /tokenizer\.json is missing; deleting it and fetching it again/.test(l))).toBe(true);
    expect(readFileSync(join(path, 'tokenizer.json')).equals(readFileSync(join(SOURCE, 'tokenizer.json')))).toBe(true);
  });

  it('leaves no directory under its final name when a file cannot be fetched', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'swarmtune-cache-'));
    const fetched: string[] = [];
    await expect(obtainHfDir(digest, files, { cacheDir, fetchFile: copier(cacheDir, fetched, 'model-00002-of-00002.safetensors'), log: () => undefined })).rejects.toMatchObject({
      code: ErrorCode.CONNECTION_CLOSED,
    });
    expect(fetched).toEqual(['config.json', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors']);
    expect(existsSync(hfCachePathOf(cacheDir, digest))).toBe(false);
    expect(existsSync(join(cacheDir, 'hf'))).toBe(false);
  });

  it('names the file when its bytes are refused', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'swarmtune-cache-'));
    const fetchFile: ObtainHfDirOptions['fetchFile'] = async (file) => {
      if (file.name === 'tokenizer.json') throw new InputFileError(ErrorCode.BLOB_INTEGRITY, 'blob x.partial: 5418 bytes received with sha256 00, expected 11');
      return copier(cacheDir, [])(file);
    };
    await expect(obtainHfDir(digest, files, { cacheDir, fetchFile, log: () => undefined })).rejects.toMatchObject({
      code: ErrorCode.BLOB_INTEGRITY,
      message: expect.stringMatching(new RegExp(`^model file tokenizer\\.json of the HF directory ${digest} was refused: blob x\\.partial`)),
    });
    expect(existsSync(hfCachePathOf(cacheDir, digest))).toBe(false);
  });
});
