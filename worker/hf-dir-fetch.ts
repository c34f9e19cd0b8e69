/**
 * A Hugging Face model directory the coordinator ships (welcome `model.files`), assembled in the worker's cache:
 * each file is fetched as a content-addressed blob (`<cache>/blobs/<sha256>`: ranged, resumable, verified), then
 * the directory is built aside from hard links to those blobs (copies where links fail) and renamed into place as
 * `<cache>/hf/<directory digest>/`, so that a half-fetched directory is never seen under its final name. A cached
 * directory is checked file by file before use; one that fails is deleted and assembled again.
 */
import { copyFile, link, mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256OfFile } from '../shared/blobs/blob-store.js';
import { ErrorCode, InputFileError, OrchestratorError, ProtocolError } from '../shared/errors.js';
import { HF_DIR_MAX_FILES, hfDirDigest, isSafeModelFileName } from '../shared/model/hf-dir-files.js';
import type { ModelFileRef, ModelRef } from '../shared/protocol/messages.js';

/** Where a shipped directory with digest `sha256` lives in the cache folder `cacheDir`. */
export function hfCachePathOf(cacheDir: string, sha256: string): string {
  return join(cacheDir, 'hf', sha256);
}

/**
 * The announced file list of an HF model, checked: at most {@link HF_DIR_MAX_FILES} plain, distinct file names
 * (no path, no `..`), config.json among them, and a list whose digest is the announced directory digest.
 * @throws ProtocolError E_PROTOCOL_MALFORMED naming the bad entry; OrchestratorError E_MODEL_MISMATCH when the
 *   list's digest differs from `ref.sha256`
 */
export function checkedHfFiles(ref: ModelRef & { readonly files: readonly ModelFileRef[] }): readonly ModelFileRef[] {
  const where = `the coordinator's file list of the HF model ${ref.path}`;
  if (ref.files.length === 0 || ref.files.length > HF_DIR_MAX_FILES) {
    throw new ProtocolError(ErrorCode.PROTOCOL_MALFORMED, `${where} holds ${ref.files.length} files, expected 1..${HF_DIR_MAX_FILES}`);
  }
  const seen = new Set<string>();
  for (const file of ref.files) {
    if (!isSafeModelFileName(file.name)) {
      throw new ProtocolError(ErrorCode.PROTOCOL_MALFORMED, `${where} names ${JSON.stringify(file.name.slice(0, 300))}, not a plain file name (letters, digits, ._+-; no path, no "..")`);
    }
    if (seen.has(file.name)) throw new ProtocolError(ErrorCode.PROTOCOL_MALFORMED, `${where} lists ${file.name} twice`);
    seen.add(file.name);
  }
  if (!seen.has('config.json')) throw new ProtocolError(ErrorCode.PROTOCOL_MALFORMED, `${where} has no config.json`);
  const digest = hfDirDigest(ref.files);
  if (digest !== ref.sha256) {
    throw new OrchestratorError(ErrorCode.MODEL_MISMATCH, `${where} hashes to the directory digest ${digest}, but the run's model is ${ref.sha256}`);
  }
  return ref.files;
}

/**
 * Why the directory `dir` does not hold `files` byte for byte (the first difference: a missing file, another size,
 * another SHA-256), or undefined when it does. Files of `dir` not in the list are not looked at.
 */
export async function hfDirMismatch(dir: string, files: readonly ModelFileRef[]): Promise<string | undefined> {
  for (const file of files) {
    const path = join(dir, file.name);
    const size = await stat(path).then((s) => (s.isFile() ? s.size : undefined), () => undefined);
    if (size === undefined) return `${file.name} is missing`;
    if (size !== file.sizeBytes) return `${file.name} has ${size} bytes, the run's has ${file.sizeBytes}`;
    const actual = await sha256OfFile(path);
    if (actual !== file.sha256) return `${file.name} has sha256 ${actual}, the run's has ${file.sha256}`;
  }
  return undefined;
}

/** Options of {@link obtainHfDir}. */
export interface ObtainHfDirOptions {
  /** The worker's cache folder (`--cache-dir`). */
  readonly cacheDir: string;
  /**
   * Fetches one file as a blob (worker/blob-fetch.ts `fetchBlob`), verified, returning its path and how many bytes
   * travelled; a cut transfer keeps its partial for the next call.
   */
  readonly fetchFile: (file: ModelFileRef) => Promise<{ readonly path: string; readonly fetchedBytes: number; readonly resumedFromBytes: number }>;
  readonly log: (line: string) => void;
}

/** Where a shipped directory came from. */
export interface ObtainedHfDir {
  readonly path: string;
  /** `cache`: complete and verified in the cache; `fetched`: (some of) its files travelled now. */
  readonly source: 'cache' | 'fetched';
  /** Bytes received in this call, over every file. */
  readonly fetchedBytes: number;
}

/**
 * The cached copy of the HF directory `sha256` made of `files` (as {@link checkedHfFiles} returns them): used when
 * it verifies, else fetched file by file (blobs already complete in the cache do not travel again) and renamed into
 * place whole.
 * @throws InputFileError E_BLOB_INTEGRITY naming the file whose bytes are not the announced ones; whatever
 *   `fetchFile` throws (a cut connection: the partial file is kept and a later call resumes it)
 */
export async function obtainHfDir(sha256: string, files: readonly ModelFileRef[], options: ObtainHfDirOptions): Promise<ObtainedHfDir> {
  const { cacheDir, log } = options;
  const finalPath = hfCachePathOf(cacheDir, sha256);
  if (await isDirectory(finalPath)) {
    const why = await hfDirMismatch(finalPath, files);
    if (why === undefined) return { path: finalPath, source: 'cache', fetchedBytes: 0 };
    log(`cached model directory ${finalPath}: ${why}; deleting it and fetching it again`);
    await rm(finalPath, { recursive: true, force: true });
  }

  const totalBytes = files.reduce((sum, f) => sum + f.sizeBytes, 0);
  log(`fetching the model directory ${sha256} from the coordinator: ${files.length} files, ${totalBytes} bytes`);
  const blobPaths: string[] = [];
  let fetchedBytes = 0;
  for (const file of files) {
    const fetched = await fetchNamed(file, sha256, options.fetchFile);
    const size = (await stat(fetched.path)).size;
    if (size !== file.sizeBytes) {
      throw new InputFileError(ErrorCode.BLOB_INTEGRITY, `model file ${file.name} of the HF directory ${sha256}: ${size} bytes, announced as ${file.sizeBytes}`);
    }
    if (fetched.resumedFromBytes > 0) log(`model file ${file.name}: resumed from byte ${fetched.resumedFromBytes}`);
    fetchedBytes += fetched.fetchedBytes;
    blobPaths.push(fetched.path);
  }

  const root = join(cacheDir, 'hf');
  await mkdir(root, { recursive: true });
  const staging = await mkdtemp(join(root, `.${sha256}.partial-`));
  try {
    for (const [i, file] of files.entries()) await linkOrCopy(blobPaths[i], join(staging, file.name));
    try {
      await rename(staging, finalPath);
    } catch (err) {
      // Another worker sharing this cache assembled it first: use theirs once it verifies.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      const why = await hfDirMismatch(finalPath, files);
      if (why !== undefined) throw new InputFileError(ErrorCode.BLOB_INTEGRITY, `model directory ${finalPath}, assembled by another process: ${why}`, { cause: err });
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  log(`model directory ${sha256}: ${files.length} files verified → ${finalPath}`);
  return { path: finalPath, source: 'fetched', fetchedBytes };
}

/** `fetchFile`, with an integrity failure restated to name the file and the directory. */
async function fetchNamed(file: ModelFileRef, dirSha256: string, fetchFile: ObtainHfDirOptions['fetchFile']): ReturnType<ObtainHfDirOptions['fetchFile']> {
  try {
    return await fetchFile(file);
  } catch (err) {
    if (err instanceof InputFileError && err.code === ErrorCode.BLOB_INTEGRITY) {
      throw new InputFileError(ErrorCode.BLOB_INTEGRITY, `model file ${file.name} of the HF directory ${dirSha256} was refused: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

/** A hard link to the blob (no second copy on disk); a copy where the file system refuses links. */
async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch {
    await copyFile(from, to);
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
