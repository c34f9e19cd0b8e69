/**
 * Checkpoints of a run (DESIGN §7, RELIABILITY S13): when to save, what a save writes, and which checkpoint a
 * resumed run continues from. The files and their atomicity are checkpoint-store.ts; the state format is
 * checkpoint-state.ts.
 */
import { readdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { RunConfig } from '../shared/config.js';
import { OUTPUT_DIR_TIMESTAMP, resolveOutputDir } from '../shared/config.js';
import { ErrorCode, InputFileError } from '../shared/errors.js';
import type { TensorSpec } from '../shared/tensors.js';
import { listCheckpoints, pruneCheckpoints, verifyCheckpoint, writeCheckpointAtomically } from './checkpoint-store.js';
import {
  readCheckpointState,
  STATE_BIN_FILE,
  STATE_JSON_FILE,
  trainingConfigDifferences,
  writeCheckpointState,
  type CheckpointState,
  type CheckpointStateInput,
} from './checkpoint-state.js';

/** Files every resumable checkpoint holds (besides `checkpoint.sha256`). */
export const REQUIRED_CHECKPOINT_FILES: readonly string[] = ['adapter_model.safetensors', 'adapter_config.json', STATE_JSON_FILE, STATE_BIN_FILE];

/** A checkpoint chosen to resume from, verified and read. */
export interface ResumePoint {
  /** The run folder the resumed run writes into. */
  readonly outputDir: string;
  readonly checkpointDir: string;
  readonly state: CheckpointState;
}

/** What one save writes: `writeAdapter` (and `writeExtra`, e.g. exact-LoRA residuals) fill the folder, then the state. */
export interface CheckpointSave {
  readonly runDir: string;
  /** The `<n>` of `checkpoint-<n>`: optimizer steps applied, or federated rounds done. */
  readonly number: number;
  readonly writeAdapter: (dir: string) => Promise<void>;
  readonly writeExtra?: (dir: string) => Promise<void>;
  readonly state: CheckpointStateInput;
  /** `save_total_limit`. */
  readonly totalLimit: number | null;
  /** A checkpoint folder never pruned (the best one, with `load_best_model_at_end`). @default none */
  readonly keepAlso?: string;
}

/**
 * Writes `checkpoint-<number>/` atomically with its checksums, then prunes beyond `totalLimit`.
 * @returns the checkpoint folder
 */
export async function saveCheckpoint(save: CheckpointSave): Promise<string> {
  const dir = join(save.runDir, `checkpoint-${save.number}`);
  await writeCheckpointAtomically(
    dir,
    async (tmp) => {
      await save.writeAdapter(tmp);
      await save.writeExtra?.(tmp);
      await writeCheckpointState(tmp, save.state);
    },
    REQUIRED_CHECKPOINT_FILES,
  );
  await pruneCheckpoints(save.runDir, save.totalLimit, save.keepAlso === undefined ? dir : [dir, save.keepAlso]);
  return dir;
}

/** Whether a data-parallel run saves after optimizer step `step` (1-based count) mid-epoch (`save_strategy: steps`). */
export function isStepSave(config: Pick<RunConfig, 'save_strategy' | 'save_steps'>, step: number, totalSteps: number): boolean {
  return config.save_strategy === 'steps' && (step % config.save_steps === 0 || step === totalSteps);
}

/** Whether a federated run saves after `round` (every round with `epoch`, every `save_steps` rounds and the last with `steps`). */
export function isRoundSave(config: Pick<RunConfig, 'save_strategy' | 'save_steps'>, round: number, numRounds: number): boolean {
  if (config.save_strategy === 'epoch') return true;
  return config.save_strategy === 'steps' && (round % config.save_steps === 0 || round === numRounds);
}

/**
 * The checkpoint a run resumes from (`resume_from_checkpoint`), or undefined when it starts afresh. `true` looks in
 * `output_dir` (with `<timestamp>` in it: the newest run folder beside it that holds a checkpoint); a path is a
 * checkpoint folder (used as given: it must verify) or a run folder. Within a run folder the newest checkpoint whose
 * checksums verify wins; each one skipped is reported through `warn`.
 * @throws InputFileError E_CHECKPOINT_NOT_FOUND when no checkpoint verifies; E_CHECKPOINT_CORRUPT when a named
 *   checkpoint folder fails its checksums or its state cannot be read
 */
export async function findResumePoint(config: RunConfig, now: Date, warn: (line: string) => void): Promise<ResumePoint | undefined> {
  const wanted = config.resume_from_checkpoint;
  if (wanted === null || wanted === false) return undefined;
  const hasTimestamp = config.output_dir.includes(OUTPUT_DIR_TIMESTAMP);
  if (typeof wanted === 'string') {
    const path = resolve(wanted);
    if (/^checkpoint-\d+$/.test(basename(path))) {
      const verdict = await verifyCheckpoint(path, REQUIRED_CHECKPOINT_FILES);
      if (!verdict.ok) throw new InputFileError(ErrorCode.CHECKPOINT_CORRUPT, `resume_from_checkpoint ${path}: ${verdict.reason}`);
      const outputDir = hasTimestamp ? dirname(path) : resolve(resolveOutputDir(config.output_dir, now));
      return { outputDir, checkpointDir: path, state: await readCheckpointState(path) };
    }
    const found = await newestVerified(path, warn);
    if (!found) throw notFound(`in ${path}`);
    return { outputDir: hasTimestamp ? path : resolve(resolveOutputDir(config.output_dir, now)), ...found };
  }
  if (!hasTimestamp) {
    const runDir = resolve(config.output_dir);
    const found = await newestVerified(runDir, warn);
    if (!found) throw notFound(`in output_dir ${runDir}`);
    return { outputDir: runDir, ...found };
  }
  // `runs/<timestamp>`: run folders are named by start time, so the newest sorts last.
  const [prefix] = config.output_dir.split(OUTPUT_DIR_TIMESTAMP);
  const parent = resolve(prefix.endsWith('/') || prefix === '' ? prefix || '.' : dirname(prefix));
  const namePrefix = prefix.endsWith('/') ? '' : basename(prefix);
  const runDirs = (await readdir(parent).catch(() => [] as string[])).filter((name) => name.startsWith(namePrefix)).sort().reverse();
  for (const name of runDirs) {
    const found = await newestVerified(join(parent, name), warn);
    if (found) return { outputDir: join(parent, name), ...found };
  }
  throw notFound(`in any run folder under ${parent} (output_dir ${config.output_dir}); name one with resume_from_checkpoint=PATH`);
}

/**
 * Refuses a checkpoint written by another run setup.
 * @throws InputFileError E_CHECKPOINT_MISMATCH naming what differs (mode, model, data, trainable tensors, config keys)
 */
export function checkResumable(
  point: ResumePoint,
  current: { config: RunConfig; modelSha256: string; trainSha256: string; manifest: readonly TensorSpec[] },
): void {
  const { state } = point;
  const problems: string[] = [];
  if (state.progress.mode !== current.config.mode) problems.push(`mode (checkpoint ${state.progress.mode}, now ${current.config.mode})`);
  if (state.modelSha256 !== current.modelSha256) problems.push(`model sha256 (checkpoint ${state.modelSha256.slice(0, 12)}…, now ${current.modelSha256.slice(0, 12)}…)`);
  if (state.trainSha256 !== current.trainSha256) problems.push('training data (its digest differs)');
  const manifest = manifestLines(current.manifest);
  if (JSON.stringify(state.manifest) !== JSON.stringify(manifest)) problems.push('trainable tensors (names or shapes)');
  problems.push(...trainingConfigDifferences(state.config, current.config));
  if (problems.length > 0) {
    throw new InputFileError(ErrorCode.CHECKPOINT_MISMATCH, `checkpoint ${point.checkpointDir} was written by a different run setup: ${problems.join('; ')}`);
  }
}

/** The manifest as recorded in a checkpoint: `name:shape`. */
export function manifestLines(manifest: readonly TensorSpec[]): string[] {
  return manifest.map((spec) => `${spec.name}:${spec.shape.join('x')}`);
}

async function newestVerified(runDir: string, warn: (line: string) => void): Promise<Omit<ResumePoint, 'outputDir'> | undefined> {
  for (const entry of await listCheckpoints(runDir)) {
    const verdict = await verifyCheckpoint(entry.dir, REQUIRED_CHECKPOINT_FILES);
    if (!verdict.ok) {
      warn(`skipping ${entry.dir}: ${verdict.reason}`);
      continue;
    }
    try {
      return { checkpointDir: entry.dir, state: await readCheckpointState(entry.dir) };
    } catch (err) {
      warn(`skipping ${entry.dir}: ${(err as Error).message}`);
    }
  }
  return undefined;
}

function notFound(where: string): InputFileError {
  return new InputFileError(ErrorCode.CHECKPOINT_NOT_FOUND, `resume_from_checkpoint: no complete checkpoint ${where}`);
}
