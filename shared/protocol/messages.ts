/**
 * The swarmtune wire protocol, version 1: one interface per frame and the {@link Message} union.
 *
 * Every frame is a msgpack map `{ v, kind, id, ... }`; a reply adds `replyTo` (the `id` it answers).
 * Frames are plain data: strings, numbers, booleans, arrays, maps with string keys, and byte strings
 * (tensor data). Within version 1 fields are only ever ADDED, and only as optional fields; a kind is
 * never renamed or reused; a breaking change is `v: 2`. Bytes become a `Message` only through
 * `parseMessage` (./parse.ts).
 */
import type { BatchStats, ModelSpec } from '../model/types.js';
import type { TensorSpec } from '../tensors.js';

/** The protocol version this build speaks, carried as `v` in every frame. */
export const PROTOCOL_VERSION = 1;

/** The WebSocket sub-protocol both sides must agree on in the HTTP upgrade. */
export const SUBPROTOCOL = 'swarmtune.v1';

/** Every frame kind of protocol version 1 (snake_case; requests and results pair as `*_request` / `*_result`). */
export const MsgKind = {
  /** worker → coordinator: first frame after the connection opens. */
  HELLO: 'hello',
  /** coordinator → worker: reply to `hello` with the run, model and trainable manifest. */
  WELCOME: 'welcome',
  /** worker → coordinator: reply to `welcome` once the base model is loaded. */
  READY: 'ready',
  /** coordinator → worker: compute summed gradients for a batch. */
  GRAD_REQUEST: 'grad_request',
  /** worker → coordinator: reply to `grad_request`. */
  GRAD_RESULT: 'grad_result',
  /** coordinator → worker: compute loss statistics for a batch without gradients. */
  EVAL_REQUEST: 'eval_request',
  /** worker → coordinator: reply to `eval_request`. */
  EVAL_RESULT: 'eval_result',
  /** either way: a failure, as data. */
  ERROR: 'error',
  /** coordinator → worker: the run is over; close after this. */
  STOP: 'stop',
  /** worker → coordinator: send a byte range of a blob the run announced (base model, data shard). */
  BLOB_REQUEST: 'blob_request',
  /** coordinator → worker: reply to `blob_request` with the bytes. */
  BLOB_RESULT: 'blob_result',
  /** coordinator → worker (federated): train one client locally from the global parameters for one round. */
  FIT_REQUEST: 'fit_request',
  /** worker → coordinator: reply to `fit_request` with the client's update. */
  FIT_RESULT: 'fit_result',
  /** coordinator → worker (federated evaluation): evaluate the global parameters on one client's data. */
  CLIENT_EVAL_REQUEST: 'client_eval_request',
  /** worker → coordinator: reply to `client_eval_request`. */
  CLIENT_EVAL_RESULT: 'client_eval_result',
} as const;
export type MsgKind = (typeof MsgKind)[keyof typeof MsgKind];

/** All kinds, in table order. */
export const MSG_KINDS: readonly MsgKind[] = Object.values(MsgKind);

/**
 * Tensor encodings of `TensorBlob.data` (layouts in shared/codecs/): `fp32` raw little-endian IEEE 754 / int32;
 * `fp16` / `bf16` 2 bytes per element; `int8` ceil(n/blockSize) float32 scales then n int8 values; `topk`
 * k uint32 indices (strictly increasing) then k float32 values. All but `fp32` apply to float32 tensors only.
 */
export const TENSOR_CODECS = ['fp32', 'fp16', 'bf16', 'int8', 'topk'] as const;
export type TensorCodec = (typeof TENSOR_CODECS)[number];

/** Element types a tensor can have on the wire. */
export const TENSOR_DTYPES = ['float32', 'int32'] as const;
export type TensorDtype = (typeof TENSOR_DTYPES)[number];

/**
 * One named tensor on the wire. `data` holds the elements row-major, little-endian; for the `fp32` codec
 * (the default when `codec` is absent) that is 4 bytes per element. After decoding, `data` is a view into
 * the received frame (no copy): keep it only as long as you need it.
 */
export interface TensorBlob {
  readonly name: string;
  readonly dtype: TensorDtype;
  /** Row-major shape, PyTorch order. `[]` is a scalar. */
  readonly shape: readonly number[];
  readonly data: Uint8Array;
  /** How `data` is encoded. @default 'fp32' */
  readonly codec?: TensorCodec;
  /**
   * Filler a sender may put just before `data` (0-7 bytes) so that `data` starts 8-aligned in the frame and
   * decodes without a copy; carries nothing and the parser drops it.
   */
  readonly pad?: Uint8Array;
  /** `int8` only: elements per float32 scale. @default 64 */
  readonly blockSize?: number;
}

/** Fields every frame carries. */
interface FrameBase {
  readonly v: typeof PROTOCOL_VERSION;
  /** Unique per sender and connection (a nanoid by default); replies quote it as `replyTo`. */
  readonly id: string;
}

/** What a worker reports about itself in `hello`. */
export interface WorkerCapabilities {
  /** Compute backend name (`wasm`, `cpu`, `tensorflow`). */
  readonly backend: string;
  /** Logical CPU cores the worker may use. */
  readonly cores: number;
  /** Memory available to the worker, in bytes. */
  readonly memoryBytes: number;
  readonly hostname: string;
  readonly pid: number;
}

/** worker → coordinator: first frame of a connection. */
export interface Hello extends FrameBase {
  readonly kind: typeof MsgKind.HELLO;
  /** An id the worker proposes (e.g. to rejoin under its old id); the coordinator decides. */
  readonly workerId?: string;
  /** Highest protocol version the worker speaks (equal to `v` in v1). */
  readonly protocolVersion: number;
  readonly capabilities: WorkerCapabilities;
  /** The worker's package version (package.json `version`). */
  readonly clientVersion: string;
}

/** One file of an HF model directory the coordinator serves: a blob named by its SHA-256. */
export interface ModelFileRef {
  /** A plain file name (letters, digits, `._+-`; no path, no `..`: `isSafeModelFileName`). */
  readonly name: string;
  /** Lower-case hex SHA-256 of the file: the `blob_request` id of its bytes. */
  readonly sha256: string;
  readonly sizeBytes: number;
}

/**
 * Where the base model lives; the worker loads it from its own disk (the announced path, `--model`, or its cache,
 * fetching blobs it lacks) and checks the hash.
 */
export interface ModelRef {
  readonly path: string;
  /**
   * Lower-case hex SHA-256 of the model file; of an HF directory, the digest `loadHfModel` computes (the sha256 of
   * the `sha256sum` lines of config.json, the weights files, tokenizer.json and tokenizer_config.json).
   */
  readonly sha256: string;
  /** `gguf`: one file, served as the blob `sha256`; `hf`: a Hugging Face model directory. */
  readonly format: 'gguf' | 'hf';
  /**
   * `hf` only: the directory's files the loader reads, each served as a blob, in digest order. Absent (older
   * coordinators, or names it cannot ship): the directory is not shipped and workers need their own copy.
   * @default undefined
   */
  readonly files?: readonly ModelFileRef[];
}

/** coordinator → worker: reply to `hello`. */
export interface Welcome extends FrameBase {
  readonly kind: typeof MsgKind.WELCOME;
  readonly replyTo: string;
  readonly runId: string;
  /** The id the coordinator assigned (the proposed one, or a new one). */
  readonly workerId: string;
  readonly model: ModelRef;
  readonly modelSpec: ModelSpec;
  /** Trainable tensors, names and shapes, in canonical order. */
  readonly manifest: readonly TensorSpec[];
  /** Free-form run settings (plain JSON-like data) the coordinator hands to workers. */
  readonly settings: Readonly<Record<string, unknown>>;
}

/**
 * What a worker reports about its compute backend: `name` is required; any further plain-data fields the
 * worker adds (simd, threads, fallback reasons...) travel too and the parser keeps them.
 */
export interface BackendReport {
  readonly name: string;
}

/** worker → coordinator: reply to `welcome` once the model is loaded and verified. */
export interface Ready extends FrameBase {
  readonly kind: typeof MsgKind.READY;
  readonly replyTo: string;
  /** SHA-256 of the model file as the worker computed it (lower-case hex). */
  readonly modelSha256: string;
  readonly backend: BackendReport;
  /** Time to load the base model, in milliseconds. */
  readonly loadMs: number;
}

/**
 * A padded batch on the wire: `inputIds` and `attentionMask` are int32 `[batchSize, seqLen]`, `labels` int32
 * `[batchSize]` (classification) or `[batchSize * seqLen]` (causal-lm). See `Batch` in shared/model/types.ts
 * and `wireToBatch` / `batchToWire` in ./batch.ts.
 */
export interface WireBatch {
  readonly batchSize: number;
  readonly seqLen: number;
  readonly inputIds: TensorBlob;
  readonly attentionMask: TensorBlob;
  readonly labels: TensorBlob;
}

/**
 * The parameter part of a request: absolute values, differences, or nothing when the worker already holds
 * `paramsVersion` (see shared/param-sync.ts).
 */
export interface ParamUpdate {
  /** Version of the trainable parameters the request must be computed at. */
  readonly paramsVersion: number;
  /** The version `params`/`paramsDelta` are relative to; absent for a full sync (`params` then holds every tensor). */
  readonly baseVersion?: number;
  /** New values of trainable tensors: all of them for a full sync, else only changed tensors sent losslessly. */
  readonly params?: readonly TensorBlob[];
  /** Differences to add to the worker's copy (changed tensors under a lossy codec); needs `baseVersion`. */
  readonly paramsDelta?: readonly TensorBlob[];
  /**
   * Exact federated LoRA aggregation (FedEx-LoRA): version of the residuals folded into the frozen base; sent with
   * `baseResiduals` whenever the worker's copy is older. Absent in every other run.
   */
  readonly residualVersion?: number;
  /**
   * The cumulative residual of every adapted base weight (named as in GGUF, `blk.0.attn_q.weight`, `[out, in]`):
   * the worker computes with `base + residual` from now on.
   */
  readonly baseResiduals?: readonly TensorBlob[];
}

/** coordinator → worker: compute the summed gradient of the loss over `batch`. */
export interface GradRequest extends FrameBase, ParamUpdate {
  readonly kind: typeof MsgKind.GRAD_REQUEST;
  /** Optimizer step this request belongs to (0-based). */
  readonly step: number;
  readonly batch: WireBatch;
  /** Seed for dropout masks, so that a step is reproducible wherever it runs. */
  readonly dropoutSeed: number;
}

/**
 * Batch statistics on the wire (see `BatchStats`). `lossSum` may be NaN or ±Infinity when training diverged:
 * the receiver decides what to do with it, the parser does not drop the frame.
 */
export type WireStats = BatchStats;

/** worker → coordinator: reply to `grad_request`. */
export interface GradResult extends FrameBase {
  readonly kind: typeof MsgKind.GRAD_RESULT;
  readonly replyTo: string;
  readonly step: number;
  /** Summed (not averaged) gradients, one per manifest tensor. */
  readonly grads: readonly TensorBlob[];
  readonly stats: WireStats;
  /** Worker-side compute time, in milliseconds. */
  readonly computeMs: number;
}

/** coordinator → worker: compute loss statistics (no gradients) for `batch`. */
export interface EvalRequest extends FrameBase, ParamUpdate {
  readonly kind: typeof MsgKind.EVAL_REQUEST;
  readonly step: number;
  readonly batch: WireBatch;
}

/** worker → coordinator: reply to `eval_request`. */
export interface EvalResult extends FrameBase {
  readonly kind: typeof MsgKind.EVAL_RESULT;
  readonly replyTo: string;
  readonly step: number;
  readonly stats: WireStats;
  /** Worker-side compute time, in milliseconds. */
  readonly computeMs: number;
}

/**
 * Either way: a failure, as data. Its layout is frozen across protocol versions, and the parser accepts it
 * whatever its `v`, so that peers of different versions can still tell each other why they disagree.
 */
export interface ErrorFrame {
  readonly v: number;
  readonly kind: typeof MsgKind.ERROR;
  readonly id: string;
  /** A stable `E_*` code (shared/errors.ts ErrorCode; a newer peer may send codes this build does not know). */
  readonly code: string;
  /** Human-readable: what went wrong and where. */
  readonly message: string;
  /** Whether repeating the same request may succeed. */
  readonly retryable: boolean;
  /** The request this error answers, if any. */
  readonly replyTo?: string;
}

/** coordinator → worker: the run is over (or this worker is dismissed). */
export interface Stop extends FrameBase {
  readonly kind: typeof MsgKind.STOP;
  readonly reason: string;
}

/**
 * worker → coordinator: bytes `[offset, offset + length)` of a content-addressed blob (the run's base model, a
 * shipped data shard). The coordinator serves only blobs it announced and answers anything else with an `error`
 * frame (E_BLOB_UNKNOWN, E_BLOB_RANGE).
 */
export interface BlobRequest extends FrameBase {
  readonly kind: typeof MsgKind.BLOB_REQUEST;
  /** Lower-case hex SHA-256 of the whole blob. */
  readonly sha256: string;
  /** First byte wanted. */
  readonly offset: number;
  /** Bytes wanted; the reply may carry fewer only at the end of the blob. */
  readonly length: number;
}

/** coordinator → worker: reply to `blob_request`. */
export interface BlobResult extends FrameBase {
  readonly kind: typeof MsgKind.BLOB_RESULT;
  readonly replyTo: string;
  readonly sha256: string;
  /** Offset of `data[0]` in the blob. */
  readonly offset: number;
  /** Size of the whole blob, in bytes. */
  readonly totalBytes: number;
  /** CRC-32 (zlib polynomial, unsigned) of `data`. */
  readonly crc32: number;
  readonly data: Uint8Array;
}

/**
 * Tokenized examples shipped inside a request (`data_delivery: ship`): the token ids of every example back to
 * back (int32 `[totalTokens]`), each example's length (int32 `[n]`) and, for classification, its class id
 * (int32 `[n]`).
 */
export interface ShippedExamples {
  readonly tokenIds: TensorBlob;
  readonly lengths: TensorBlob;
  readonly labels?: TensorBlob;
}

/**
 * The examples of one client: `indices` into the training (or evaluation) set the worker prepared itself from the
 * run's data settings (`data_delivery: local`: raw data never leaves the client's side), or the tokenized
 * `examples` themselves (`ship`). Exactly one of the two is present.
 */
export interface ClientData {
  readonly indices?: readonly number[];
  readonly examples?: ShippedExamples;
}

/** How a client trains in one federated round (from the round's strategy configuration). */
export interface LocalTrainingConfig {
  /** Passes over the client's examples; ignored when `localSteps` is set. */
  readonly localEpochs: number;
  /** Local optimizer steps instead of epochs (batches drawn cyclically from seeded shuffles). */
  readonly localSteps?: number;
  readonly learningRate: number;
  readonly batchSize: number;
  readonly optimizer: 'sgd' | 'adamw';
  /** SGD momentum (0 = plain SGD). */
  readonly momentum: number;
  readonly weightDecay: number;
  /** FedProx: weight of mu/2·||w − w_global||² added to the local loss (0 = FedAvg). */
  readonly proximalMu: number;
  /** Clip each local step's gradient norm (0 = off). */
  readonly maxGradNorm: number;
  /** Seeds the client's shuffles and dropout for this round. */
  readonly seed: number;
  /** Trainable tensors the client must not change (FFA-LoRA freezes every `lora_A`); they are not returned. */
  readonly frozen?: readonly string[];
}

/** coordinator → worker: train client `clientId` for one round from the global parameters the update brings. */
export interface FitRequest extends FrameBase, ParamUpdate {
  readonly kind: typeof MsgKind.FIT_REQUEST;
  readonly round: number;
  readonly clientId: string;
  readonly data: ClientData;
  readonly config: LocalTrainingConfig;
}

/** worker → coordinator: one client's update for a round: `delta` = client parameters − global parameters. */
export interface FitResult extends FrameBase {
  readonly kind: typeof MsgKind.FIT_RESULT;
  readonly replyTo: string;
  readonly round: number;
  readonly clientId: string;
  /** One tensor per trained (not frozen) manifest tensor. */
  readonly delta: readonly TensorBlob[];
  readonly numExamples: number;
  readonly numTokens: number;
  /** Mean training loss over the client's local steps. */
  readonly trainLoss: number;
  readonly steps: number;
  readonly computeMs: number;
}

/** coordinator → worker: loss statistics of the global parameters on one client's data. */
export interface ClientEvalRequest extends FrameBase, ParamUpdate {
  readonly kind: typeof MsgKind.CLIENT_EVAL_REQUEST;
  readonly round: number;
  readonly clientId: string;
  readonly data: ClientData;
  readonly batchSize: number;
}

/** worker → coordinator: reply to `client_eval_request`. */
export interface ClientEvalResult extends FrameBase {
  readonly kind: typeof MsgKind.CLIENT_EVAL_RESULT;
  readonly replyTo: string;
  readonly round: number;
  readonly clientId: string;
  readonly stats: WireStats;
  readonly computeMs: number;
}

/** Every frame of protocol version 1. */
export type Message =
  | Hello
  | Welcome
  | Ready
  | GradRequest
  | GradResult
  | EvalRequest
  | EvalResult
  | ErrorFrame
  | Stop
  | BlobRequest
  | BlobResult
  | FitRequest
  | FitResult
  | ClientEvalRequest
  | ClientEvalResult;

/** The frame type of one kind: `MessageOf<'grad_result'>` is {@link GradResult}. */
export type MessageOf<K extends MsgKind> = Extract<Message, { kind: K }>;

/** The fields of a frame of kind `K` other than `v`, `kind` and `id` (what a sender fills in). */
export type MessageBody<K extends MsgKind> = Omit<MessageOf<K>, 'v' | 'kind' | 'id'>;

/** Whether `kind` is a kind this build knows. */
export function isMsgKind(kind: unknown): kind is MsgKind {
  return typeof kind === 'string' && (MSG_KINDS as readonly string[]).includes(kind);
}
