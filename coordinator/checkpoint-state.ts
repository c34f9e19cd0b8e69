/**
 * The trainer state inside a checkpoint: everything a run needs to continue bit for bit, as two files.
 *
 * `swarmtune_state.json` holds the structure (format, versions, resolved config, progress, scalars) in which every
 * typed array is replaced by `{"$tensor": i, "dtype": "float64", "length": n}`; `swarmtune_state.bin` holds those
 * arrays' bytes, little-endian, in order. Float64 master weights and optimizer moments are stored exactly (JSON
 * would round-trip them too, at three times the size). No random generator of a run has mutable state: data order
 * is `batchIndices(seed, epoch)`, dropout `dropoutSeed(seed, step, slice)`, LoRA init `seed`, client sampling
 * `mixSeeds(seed, round)`, local training `mixSeeds(seed, round, client)`; so the seed and the position are the RNG
 * state, and both are recorded.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunConfig } from '../shared/config.js';
import { redactSecrets } from '../shared/config/redact.js';
import { ErrorCode, InputFileError } from '../shared/errors.js';
import { PROTOCOL_VERSION } from '../shared/protocol/messages.js';
import { PACKAGE_VERSION } from '../shared/version.js';

/** File names of the trainer state inside a checkpoint folder. */
export const STATE_JSON_FILE = 'swarmtune_state.json';
export const STATE_BIN_FILE = 'swarmtune_state.bin';
/** Value of `format` in the state file, and its version (bumped on incompatible changes). */
export const CHECKPOINT_FORMAT = 'swarmtune-checkpoint';
export const CHECKPOINT_FORMAT_VERSION = 1;

/** Where a data-parallel run stands: the next step starts at batch `batchInEpoch` of epoch `epoch` (0-based). */
export interface DataParallelProgress {
  readonly mode: 'data-parallel';
  /** Optimizer steps applied. */
  readonly step: number;
  readonly epoch: number;
  /** Batches of `epoch` already trained; equal to the batches per epoch when the epoch's evaluation is still due. */
  readonly batchInEpoch: number;
  readonly totalSteps: number;
}

/** Where a federated run stands: rounds 1..`round` are done. */
export interface FederatedProgress {
  readonly mode: 'federated';
  readonly round: number;
}

/** What a checkpoint's state file records. `trainer` is the mode's own state (typed arrays allowed anywhere in it). */
export interface CheckpointState {
  readonly format: typeof CHECKPOINT_FORMAT;
  readonly formatVersion: number;
  readonly swarmtuneVersion: string;
  readonly protocolVersion: number;
  readonly createdAt: string;
  readonly runId: string;
  /** The resolved configuration of the run that wrote it. */
  readonly config: RunConfig;
  readonly modelSha256: string;
  readonly trainSha256: string;
  /** Trainable tensors, `name:shape`, in manifest order. */
  readonly manifest: readonly string[];
  readonly progress: DataParallelProgress | FederatedProgress;
  /** Seeds behind every random choice (see the module comment): the seed and the progress are the RNG state. */
  readonly rng: { readonly seed: number };
  readonly trainer: unknown;
}

/** The fields of {@link CheckpointState} a caller provides; versions and time are filled in. */
export type CheckpointStateInput = Omit<CheckpointState, 'format' | 'formatVersion' | 'swarmtuneVersion' | 'protocolVersion' | 'createdAt'>;

/** Writes the state files into `dir` (a checkpoint's temporary folder). */
export async function writeCheckpointState(dir: string, input: CheckpointStateInput): Promise<void> {
  const state: CheckpointState = {
    format: CHECKPOINT_FORMAT,
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    swarmtuneVersion: PACKAGE_VERSION,
    protocolVersion: PROTOCOL_VERSION,
    createdAt: new Date().toISOString(),
    ...input,
    // Secrets never reach the disk: a resumed run takes them from its own configuration again.
    config: redactSecrets(input.config),
  };
  const { json, bin } = encodeWithTensors(state);
  await writeFile(join(dir, STATE_JSON_FILE), json);
  await writeFile(join(dir, STATE_BIN_FILE), bin);
}

/**
 * Reads the state files of a checkpoint folder (whose checksums the caller verified).
 * @throws InputFileError E_CHECKPOINT_CORRUPT when a file is unreadable, not of this format, or its tensors overrun the data
 */
export async function readCheckpointState(dir: string): Promise<CheckpointState> {
  const fail = (why: string, cause?: unknown): never => {
    throw new InputFileError(ErrorCode.CHECKPOINT_CORRUPT, `checkpoint ${dir}: ${why}`, { cause });
  };
  let json: string;
  let bin: Buffer;
  try {
    json = await readFile(join(dir, STATE_JSON_FILE), 'utf8');
    bin = await readFile(join(dir, STATE_BIN_FILE));
  } catch (err) {
    return fail(`cannot read ${STATE_JSON_FILE} / ${STATE_BIN_FILE}: ${(err as Error).message}`, err);
  }
  let state: CheckpointState;
  try {
    state = decodeWithTensors(json, bin) as CheckpointState;
  } catch (err) {
    return fail((err as Error).message, err);
  }
  if (state.format !== CHECKPOINT_FORMAT) return fail(`format is ${JSON.stringify(state.format)}, expected "${CHECKPOINT_FORMAT}"`);
  if (state.formatVersion !== CHECKPOINT_FORMAT_VERSION) {
    return fail(`format version ${state.formatVersion} (written by swarmtune ${state.swarmtuneVersion}); this is swarmtune ${PACKAGE_VERSION}, which reads version ${CHECKPOINT_FORMAT_VERSION}`);
  }
  return state;
}

/** Config keys that may differ between the run that wrote a checkpoint and the run resuming from it. */
const OPERATIONAL_KEYS: ReadonlySet<string> = new Set([
  'output_dir',
  'resume_from_checkpoint',
  'save_strategy',
  'save_steps',
  'save_total_limit',
  'logging_steps',
  'eval_on_start',
  // When to evaluate and which checkpoint is exported at the end do not change the training itself.
  'eval_strategy',
  'eval_steps',
  'load_best_model_at_end',
  'metric_for_best_model',
  'greater_is_better',
  'per_device_eval_batch_size',
  'host',
  'port',
  'backend',
  'step_timeout_ms',
  'join_timeout_ms',
  'heartbeat_interval_ms',
  'heartbeat_timeout_ms',
  'round_timeout',
  'chunk_size_bytes',
  'auth',
  'auth_token',
  'tls_cert',
  'tls_key',
  'tls_ca',
  // Training longer (or shorter) than planned is allowed, as in HF; the learning-rate schedule then follows the new length.
  'num_train_epochs',
  'max_steps',
  'num_rounds',
]);

/**
 * The keys whose values differ between `saved` and `current`, other than operational ones (addresses, timeouts,
 * saving, logging, run length); a resumed run with any of them would not continue the same training.
 */
export function trainingConfigDifferences(saved: RunConfig, current: RunConfig): string[] {
  const keys = new Set([...Object.keys(saved), ...Object.keys(current)]);
  const differing: string[] = [];
  for (const key of [...keys].sort()) {
    if (OPERATIONAL_KEYS.has(key) || key.startsWith('auth') || key.startsWith('tls')) continue;
    const a = JSON.stringify((saved as unknown as Record<string, unknown>)[key]);
    const b = JSON.stringify((current as unknown as Record<string, unknown>)[key]);
    if (a !== b) differing.push(`${key} (checkpoint ${a}, now ${b})`);
  }
  return differing;
}

type TensorRef = { $tensor: number; dtype: 'float64' | 'float32'; length: number };

/** JSON of `value` with typed arrays swapped for references, and the arrays' bytes. */
export function encodeWithTensors(value: unknown): { json: string; bin: Uint8Array } {
  const arrays: (Float64Array | Float32Array)[] = [];
  const json = JSON.stringify(
    value,
    function replacer(this: unknown, _key: string, v: unknown) {
      if (v instanceof Float64Array || v instanceof Float32Array) {
        arrays.push(v);
        return { $tensor: arrays.length - 1, dtype: v instanceof Float64Array ? 'float64' : 'float32', length: v.length } satisfies TensorRef;
      }
      if (v instanceof Map) return Object.fromEntries(v);
      if (typeof v === 'number' && !Number.isFinite(v)) return { $number: String(v) };
      return v;
    },
    1,
  );
  const total = arrays.reduce((n, a) => n + align8(a.byteLength), 0);
  const bin = new Uint8Array(total);
  let offset = 0;
  for (const a of arrays) {
    bin.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), offset);
    offset += align8(a.byteLength);
  }
  return { json: `${json}\n`, bin };
}

/**
 * The inverse of {@link encodeWithTensors}: arrays come back as fresh Float64Array / Float32Array (Maps come back
 * as plain objects).
 * @throws Error when the JSON does not parse or a reference overruns the data
 */
export function decodeWithTensors(json: string, bin: Uint8Array): unknown {
  const refs: TensorRef[] = [];
  const parsed = JSON.parse(json, (_key, v: unknown) => {
    if (v && typeof v === 'object' && '$tensor' in v) refs.push(v as TensorRef);
    return v;
  });
  const offsets: number[] = [];
  let offset = 0;
  for (const ref of [...refs].sort((a, b) => a.$tensor - b.$tensor)) {
    offsets[ref.$tensor] = offset;
    offset += align8(ref.length * (ref.dtype === 'float64' ? 8 : 4));
  }
  if (offset !== bin.byteLength) throw new Error(`${STATE_BIN_FILE} has ${bin.byteLength} bytes, its tensors need ${offset}`);
  const revive = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(revive);
    if (!v || typeof v !== 'object') return v;
    const o = v as Record<string, unknown>;
    if ('$tensor' in o) {
      const ref = o as unknown as TensorRef;
      const at = offsets[ref.$tensor];
      const bytes = bin.slice(at, at + ref.length * (ref.dtype === 'float64' ? 8 : 4));
      return ref.dtype === 'float64' ? new Float64Array(bytes.buffer, bytes.byteOffset, ref.length) : new Float32Array(bytes.buffer, bytes.byteOffset, ref.length);
    }
    if ('$number' in o && Object.keys(o).length === 1) return Number(o.$number);
    return Object.fromEntries(Object.entries(o).map(([k, inner]) => [k, revive(inner)]));
  };
  return revive(parsed);
}

function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}
