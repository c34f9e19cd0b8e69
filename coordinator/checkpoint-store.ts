/**
 * Checkpoint folders on disk: written atomically, verified by sha256, listed newest first, pruned.
 *
 * A checkpoint is a folder `checkpoint-<n>/` (n = optimizer step, or federated round) holding a PEFT adapter
 * (`adapter_model.safetensors`, `adapter_config.json`), the trainer state (`swarmtune_state.json` + `.bin`, see
 * checkpoint-state.ts) and `checkpoint.sha256`, which lists the sha256 of every other file in `sha256sum` format
 * (`sha256sum -c checkpoint.sha256` checks it by hand). It is filled in a hidden temporary folder, every file and the
 * folder fsynced, then renamed into place and the parent fsynced: a crash at any point leaves either the previous
 * set of checkpoints or the new complete one, never a `checkpoint-<n>` that fails its checksums (a hidden
 * `.tmp-checkpoint-*` folder at most, swept by the next save).
 */
import { createHash } from 'node:crypto';
import { open, readFile, readdir, rename, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Name of the checksum list inside a checkpoint folder. */
export const CHECKSUM_FILE = 'checkpoint.sha256';

/** Folder names of checkpoints: `checkpoint-<n>`. */
const CHECKPOINT_NAME = /^checkpoint-(\d+)$/;
/** Temporary and displaced folders of an interrupted save. */
const LEFTOVER_NAME = /^\.(tmp|old)-checkpoint-\d+-/;

/** One `checkpoint-<n>` folder found in a run folder. */
export interface CheckpointEntry {
  readonly dir: string;
  /** The `<n>` of its name: optimizer step (data-parallel) or round (federated). */
  readonly number: number;
}

/** Result of {@link verifyCheckpoint}: ok, or why not (missing list, missing file, checksum mismatch). */
export type CheckpointVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/**
 * Writes the checkpoint folder `dir` atomically: `fill(tmpDir)` writes the files into a temporary sibling, then the
 * checksum list is added, everything fsynced and the folder renamed to `dir` (an existing `dir` is replaced).
 * `required` names files that `fill` must have written.
 * @throws Error when `fill` throws or did not write a required file (the temporary folder is removed)
 */
export async function writeCheckpointAtomically(dir: string, fill: (tmpDir: string) => Promise<void>, required: readonly string[] = []): Promise<void> {
  const parent = dirname(dir);
  const name = basename(dir);
  await mkdir(parent, { recursive: true });
  const tmp = join(parent, `.tmp-${name}-${process.pid}-${Date.now()}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  try {
    await fill(tmp);
    const files = (await readdir(tmp)).filter((f) => f !== CHECKSUM_FILE).sort();
    for (const file of required) if (!files.includes(file)) throw new Error(`checkpoint ${name}: ${file} was not written`);
    const lines: string[] = [];
    for (const file of files) {
      lines.push(`${sha256(await readFile(join(tmp, file)))}  ${file}`);
      await fsyncPath(join(tmp, file));
    }
    await writeFile(join(tmp, CHECKSUM_FILE), `${lines.join('\n')}\n`);
    await fsyncPath(join(tmp, CHECKSUM_FILE));
    await fsyncPath(tmp);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  // Replacing an existing checkpoint (the same step saved again after a resume): move it aside first, since a
  // folder cannot be renamed over a non-empty one.
  let displaced: string | undefined;
  if (await exists(dir)) {
    displaced = join(parent, `.old-${name}-${process.pid}-${Date.now()}`);
    await rename(dir, displaced);
  }
  await rename(tmp, dir);
  await fsyncPath(parent);
  if (displaced) await rm(displaced, { recursive: true, force: true });
}

/**
 * Checks every file listed in `dir`'s `checkpoint.sha256` against its sha256, and that each of `required` is
 * listed. Never throws: an unreadable folder is a verdict.
 */
export async function verifyCheckpoint(dir: string, required: readonly string[] = []): Promise<CheckpointVerdict> {
  let list: string;
  try {
    list = await readFile(join(dir, CHECKSUM_FILE), 'utf8');
  } catch {
    return { ok: false, reason: `no ${CHECKSUM_FILE} (a partial save, or a checkpoint without trainer state)` };
  }
  const listed = new Map<string, string>();
  for (const line of list.split('\n')) {
    if (line.trim() === '') continue;
    const match = /^([0-9a-f]{64}) {2}(\S+)$/.exec(line);
    if (!match) return { ok: false, reason: `${CHECKSUM_FILE} has a malformed line ${JSON.stringify(line.slice(0, 80))}` };
    listed.set(match[2], match[1]);
  }
  for (const file of required) if (!listed.has(file)) return { ok: false, reason: `${CHECKSUM_FILE} does not list ${file}` };
  for (const [file, expected] of listed) {
    let bytes: Buffer;
    try {
      bytes = await readFile(join(dir, file));
    } catch {
      return { ok: false, reason: `${file} is missing` };
    }
    const actual = sha256(bytes);
    if (actual !== expected) return { ok: false, reason: `${file} has sha256 ${actual.slice(0, 12)}…, expected ${expected.slice(0, 12)}… (partial or corrupt)` };
  }
  return { ok: true };
}

/** The `checkpoint-<n>` folders of a run folder, newest (highest n) first; none when the folder does not exist. */
export async function listCheckpoints(runDir: string): Promise<CheckpointEntry[]> {
  let names: string[];
  try {
    names = await readdir(runDir);
  } catch {
    return [];
  }
  const entries: CheckpointEntry[] = [];
  for (const name of names) {
    const match = CHECKPOINT_NAME.exec(name);
    if (match && (await isDirectory(join(runDir, name)))) entries.push({ dir: join(runDir, name), number: Number(match[1]) });
  }
  return entries.sort((a, b) => b.number - a.number);
}

/**
 * Deletes the oldest `checkpoint-<n>` folders beyond the newest `limit` (HF `save_total_limit`) and any folder an
 * interrupted save left behind. `keep` (a folder path) is never deleted.
 * @returns the folders deleted
 */
export async function pruneCheckpoints(runDir: string, limit: number | null, keep?: string | readonly string[]): Promise<string[]> {
  const kept = new Set(typeof keep === 'string' ? [keep] : (keep ?? []));
  const removed: string[] = [];
  for (const name of await readdir(runDir).catch(() => [] as string[])) {
    // Another process's save in flight would have this process's pid in the name only if it were this process.
    if (LEFTOVER_NAME.test(name) && !name.includes(`-${process.pid}-`)) {
      await rm(join(runDir, name), { recursive: true, force: true });
      removed.push(join(runDir, name));
    }
  }
  if (limit === null) return removed;
  const entries = await listCheckpoints(runDir);
  for (const entry of entries.slice(limit)) {
    if (kept.has(entry.dir)) continue;
    await rm(entry.dir, { recursive: true, force: true });
    removed.push(entry.dir);
  }
  return removed;
}

/** Lower-case hex sha256 of `bytes`. */
export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}
