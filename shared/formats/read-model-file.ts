import { readFile } from 'node:fs/promises';
import { ErrorCode, InputFileError } from '../errors.js';

/**
 * Reads a whole model file, turning a missing or unreadable file into an error that names the format and the path.
 * @param format how the file is named in the message (`GGUF file`, `safetensors`).
 * @throws InputFileError E_MODEL_FILE
 */
export async function readModelFile(path: string, format: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' ? 'file not found' : `cannot read (${code ?? String(err)})`;
    throw new InputFileError(ErrorCode.MODEL_FILE, `${format} ${path}: ${what}`, { cause: err });
  }
}
