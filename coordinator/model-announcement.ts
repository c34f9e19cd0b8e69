/**
 * What the coordinator tells workers about the base model (`welcome.model`), and serving its bytes: a GGUF file is
 * one blob; a Hugging Face directory is one blob per file the loader reads, listed with names, sizes and hashes so
 * that a worker without the directory fetches it file by file (worker/hf-dir-fetch.ts).
 */
import { join } from 'node:path';
import { ErrorCode, InputFileError } from '../shared/errors.js';
import { hfDirDigest, isSafeModelFileName, listHfDirFiles } from '../shared/model/hf-dir-files.js';
import { isHfModelDir } from '../shared/model/load-hf.js';
import type { ModelRef } from '../shared/protocol/messages.js';
import type { BlobServer } from './blob-server.js';

/**
 * Serves the model at `path` (already loaded, with digest `sha256`) through `blobs` and returns its announcement.
 * An HF directory's files are hashed once more here (streamed), and their digest must equal the loaded one. A
 * directory holding a file name that cannot be shipped (see `isSafeModelFileName`) is announced without `files`:
 * workers then need their own copy, as before directories were shipped.
 * @throws InputFileError E_MODEL_FILE when the directory changed on disk since it was loaded
 */
export async function announceModel(path: string, sha256: string, blobs: BlobServer, log: (line: string) => void): Promise<ModelRef> {
  if (!isHfModelDir(path)) {
    await blobs.serveBlob(sha256, path);
    return { path, sha256, format: 'gguf' };
  }
  const files = await listHfDirFiles(path);
  const unsafe = files.find((f) => !isSafeModelFileName(f.name));
  if (unsafe) {
    log(`model directory ${path}: the file name ${JSON.stringify(unsafe.name)} cannot be shipped; workers need their own copy (--model DIR)`);
    return { path, sha256, format: 'hf' };
  }
  const digest = hfDirDigest(files);
  if (digest !== sha256) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `model directory ${path}: its files hash to ${digest}, but ${sha256} was loaded: a file changed on disk meanwhile`);
  }
  for (const file of files) await blobs.serveBlob(file.sha256, join(path, file.name));
  const totalBytes = files.reduce((sum, f) => sum + f.sizeBytes, 0);
  log(`model directory ${path}: serving ${files.length} files (${totalBytes} bytes) to workers that lack it`);
  return { path, sha256, format: 'hf', files };
}
