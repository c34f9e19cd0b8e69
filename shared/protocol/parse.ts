/**
 * The one gate from bytes to a typed {@link Message}: decode (structural pre-scan + msgpack), then check the
 * version, the kind and every field with zod schemas. Required fields are required; unknown fields are
 * tolerated and dropped (a newer peer may add optional ones); `__proto__`/`constructor`/`prototype` keys are
 * refused at any depth (by the pre-scan). Tensor *contents* (byte length, finiteness, manifest) are checked
 * where they are used: `validateTensors` / `blobToFloat32` in shared/codec.ts, `wireToBatch` in ./batch.ts.
 */
import { z } from 'zod';
import { ErrorCode, ProtocolError } from '../errors.js';
import { decodeFrame } from '../codec.js';
import { HF_DIR_MAX_FILES, isSafeModelFileName } from '../model/hf-dir-files.js';
import { ADAPTER_NON_LINEARITIES, LORA_MODULES } from '../model/types.js';
import type { Message, MessageOf, MsgKind } from './messages.js';
import { MsgKind as Kinds, PROTOCOL_VERSION, TENSOR_CODECS, TENSOR_DTYPES, isMsgKind } from './messages.js';

/** Longest string field (ids, names, messages) the parser accepts, in UTF-16 code units. */
export const MAX_STRING_LENGTH = 65_536;
/** Highest tensor rank the parser accepts. */
export const MAX_TENSOR_RANK = 8;

/** A {@link ProtocolError} E_PROTOCOL_VERSION that also says which version the peer sent. */
export class ProtocolVersionError extends ProtocolError {
  /** The `v` the frame carried. */
  readonly receivedVersion: number;
  constructor(receivedVersion: number, kind: string) {
    super(
      ErrorCode.PROTOCOL_VERSION,
      `protocol version mismatch: frame '${kind}' is v${receivedVersion}, this side speaks v${PROTOCOL_VERSION}`,
    );
    this.name = 'ProtocolVersionError';
    this.receivedVersion = receivedVersion;
  }
}

const str = z.string().max(MAX_STRING_LENGTH);
const id = str.min(1);
const count = z.int().nonnegative();
const nonNegative = z.number().nonnegative();
/** Any number, non-finite included (a diverged loss is data, not a malformed frame). */
/** A byte offset or size: a non-negative integer, up to 2^53 - 1. */
const safeCount = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
/** Lower-case hex SHA-256 (it names files in caches: nothing else may pass). */
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);
const anyNumber = z.custom<number>((v) => typeof v === 'number', { message: 'expected number' });

const tensorBlob = z.object({
  name: str.min(1),
  dtype: z.enum(TENSOR_DTYPES),
  shape: z.array(count).max(MAX_TENSOR_RANK),
  data: z.instanceof(Uint8Array),
  codec: z.enum(TENSOR_CODECS).optional(),
  blockSize: z.int().min(1).max(1 << 20).optional(),
});

/** A file of a shipped model directory: its name becomes a path in the worker's cache, so only plain names pass. */
const modelFileRef = z.object({
  name: z.string().refine(isSafeModelFileName, { message: 'expected a plain file name (letters, digits, ._+-; no path, no "..")' }),
  sha256: sha256Hex,
  sizeBytes: safeCount,
});

const tensorSpec = z.object({ name: str.min(1), shape: z.array(count).max(MAX_TENSOR_RANK) });

const wireBatch = z.object({
  batchSize: count,
  seqLen: count,
  inputIds: tensorBlob,
  attentionMask: tensorBlob,
  labels: tensorBlob,
});

const stats = z.object({
  lossSum: anyNumber,
  numSamples: count,
  numLossItems: count,
  numTokens: count,
  numCorrect: count,
});

const modelSpec = z.object({
  task: z.enum(['classification', 'causal-lm']),
  numLabels: count,
  pooling: z.enum(['mean', 'last']),
  peft: z.discriminatedUnion('method', [
    z.object({
      method: z.literal('lora'),
      r: count,
      loraAlpha: z.number(),
      loraDropout: z.number().min(0).max(1),
      targetModules: z.array(z.enum(LORA_MODULES)),
      useRslora: z.boolean(),
    }),
    z.object({ method: z.literal('adapter'), adapterSize: count, nonLinearity: z.enum(ADAPTER_NON_LINEARITIES) }),
    z.object({ method: z.literal('prompt'), numVirtualTokens: count }),
    z.object({ method: z.literal('feature'), trainableTopLayers: z.number().int().min(0) }),
    z.object({ method: z.literal('full') }),
  ]),
});

const base = { v: z.literal(PROTOCOL_VERSION), id };
/** The parameter fields of grad/eval requests (ParamUpdate in messages.ts). */
const paramUpdate = {
  params: z.array(tensorBlob).optional(),
  paramsDelta: z.array(tensorBlob).optional(),
  baseVersion: count.optional(),
  paramsVersion: count,
  residualVersion: count.optional(),
  baseResiduals: z.array(tensorBlob).optional(),
};

const shippedExamples = z.object({ tokenIds: tensorBlob, lengths: tensorBlob, labels: tensorBlob.optional() });
const clientData = z
  .object({ indices: z.array(count).optional(), examples: shippedExamples.optional() })
  .refine((d) => (d.indices === undefined) !== (d.examples === undefined), { message: 'exactly one of indices and examples' });
const localTrainingConfig = z.object({
  localEpochs: nonNegative,
  localSteps: count.optional(),
  learningRate: nonNegative,
  batchSize: count.min(1),
  optimizer: z.enum(['sgd', 'adamw']),
  momentum: nonNegative,
  weightDecay: nonNegative,
  proximalMu: nonNegative,
  maxGradNorm: nonNegative,
  seed: count,
  frozen: z.array(str.min(1)).optional(),
});

const schemas = {
  hello: z.object({
    ...base,
    kind: z.literal(Kinds.HELLO),
    workerId: id.optional(),
    protocolVersion: count,
    capabilities: z.object({
      backend: str,
      cores: count,
      memoryBytes: nonNegative,
      hostname: str,
      pid: count,
    }),
    clientVersion: str,
  }),
  welcome: z.object({
    ...base,
    kind: z.literal(Kinds.WELCOME),
    replyTo: id,
    runId: id,
    workerId: id,
    model: z.object({
      path: str,
      sha256: str,
      format: z.enum(['gguf', 'hf']),
      files: z.array(modelFileRef).max(HF_DIR_MAX_FILES).optional(),
    }),
    modelSpec,
    manifest: z.array(tensorSpec),
    settings: z.record(z.string(), z.unknown()),
  }),
  ready: z.object({
    ...base,
    kind: z.literal(Kinds.READY),
    replyTo: id,
    modelSha256: str,
    backend: z.looseObject({ name: str }),
    loadMs: nonNegative,
  }),
  grad_request: z.object({
    ...base,
    kind: z.literal(Kinds.GRAD_REQUEST),
    step: count,
    ...paramUpdate,
    batch: wireBatch,
    dropoutSeed: z.int(),
  }),
  grad_result: z.object({
    ...base,
    kind: z.literal(Kinds.GRAD_RESULT),
    replyTo: id,
    step: count,
    grads: z.array(tensorBlob),
    stats,
    computeMs: nonNegative,
  }),
  eval_request: z.object({
    ...base,
    kind: z.literal(Kinds.EVAL_REQUEST),
    step: count,
    ...paramUpdate,
    batch: wireBatch,
  }),
  eval_result: z.object({
    ...base,
    kind: z.literal(Kinds.EVAL_RESULT),
    replyTo: id,
    step: count,
    stats,
    computeMs: nonNegative,
  }),
  error: z.object({
    v: z.int().positive(),
    id,
    kind: z.literal(Kinds.ERROR),
    code: str.regex(/^E_[A-Z0-9_]+$/),
    message: str,
    retryable: z.boolean(),
    replyTo: id.optional(),
  }),
  stop: z.object({ ...base, kind: z.literal(Kinds.STOP), reason: str }),
  blob_request: z.object({
    ...base,
    kind: z.literal(Kinds.BLOB_REQUEST),
    sha256: sha256Hex,
    offset: safeCount,
    length: count,
  }),
  blob_result: z.object({
    ...base,
    kind: z.literal(Kinds.BLOB_RESULT),
    replyTo: id,
    sha256: sha256Hex,
    offset: safeCount,
    totalBytes: safeCount,
    crc32: z.int().min(0).max(0xffffffff),
    data: z.instanceof(Uint8Array),
  }),
  fit_request: z.object({
    ...base,
    kind: z.literal(Kinds.FIT_REQUEST),
    ...paramUpdate,
    round: count,
    clientId: id,
    data: clientData,
    config: localTrainingConfig,
  }),
  fit_result: z.object({
    ...base,
    kind: z.literal(Kinds.FIT_RESULT),
    replyTo: id,
    round: count,
    clientId: id,
    delta: z.array(tensorBlob),
    numExamples: count,
    numTokens: count,
    trainLoss: anyNumber,
    steps: count,
    computeMs: nonNegative,
  }),
  client_eval_request: z.object({
    ...base,
    kind: z.literal(Kinds.CLIENT_EVAL_REQUEST),
    ...paramUpdate,
    round: count,
    clientId: id,
    data: clientData,
    batchSize: count.min(1),
  }),
  client_eval_result: z.object({
    ...base,
    kind: z.literal(Kinds.CLIENT_EVAL_RESULT),
    replyTo: id,
    round: count,
    clientId: id,
    stats,
    computeMs: nonNegative,
  }),
} satisfies { [K in MsgKind]: z.ZodType };

// Compile-time check that each schema's output is the hand-written interface of its kind.
type SchemaMatches = { [K in MsgKind]: z.output<(typeof schemas)[K]> extends MessageOf<K> ? true : never };
const schemasMatchInterfaces: SchemaMatches = {
  hello: true,
  welcome: true,
  ready: true,
  grad_request: true,
  grad_result: true,
  eval_request: true,
  eval_result: true,
  error: true,
  stop: true,
  blob_request: true,
  blob_result: true,
  fit_request: true,
  fit_result: true,
  client_eval_request: true,
  client_eval_result: true,
};
void schemasMatchInterfaces;

/** Outcome of {@link tryParseMessage}: the message, or the error plus what could be read of the frame. */
export type ParseResult =
  | { readonly ok: true; readonly message: Message }
  | {
      readonly ok: false;
      readonly error: ProtocolError;
      /** The frame's `id`, when it had a readable one (so an `error` reply can quote it). */
      readonly id?: string;
      /** The frame's `kind`, when it had a readable one. */
      readonly kind?: string;
    };

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : `${out ? '.' : ''}${String(key)}`;
  return out || '(frame)';
}

/**
 * Parses one frame without throwing: failures come back as data (see {@link parseMessage} for the rules).
 */
export function tryParseMessage(raw: Uint8Array): ParseResult {
  let value: unknown;
  try {
    value = decodeFrame(raw);
  } catch (err) {
    return { ok: false, error: err as ProtocolError };
  }
  return tryParseDecoded(value);
}

/**
 * {@link tryParseMessage} for a value `decodeFrame` already produced (the transport decodes once to tell
 * chunk frames from messages).
 */
export function tryParseDecoded(value: unknown): ParseResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    return { ok: false, error: new ProtocolError(ErrorCode.PROTOCOL_MALFORMED, 'malformed frame: not a map') };
  }
  const frame = value as Record<string, unknown>;
  const frameId = typeof frame.id === 'string' && frame.id.length > 0 ? frame.id : undefined;
  const rawKind = frame.kind;
  const kindName = typeof rawKind === 'string' ? rawKind : undefined;
  const fail = (error: ProtocolError): ParseResult => ({ ok: false, error, id: frameId, kind: kindName });

  if (!Number.isSafeInteger(frame.v) || (frame.v as number) < 1) {
    return fail(new ProtocolError(ErrorCode.PROTOCOL_MALFORMED, `malformed frame: field v must be a protocol version number, got ${describe(frame.v)}`));
  }
  if (kindName === undefined) {
    return fail(new ProtocolError(ErrorCode.PROTOCOL_MALFORMED, `malformed frame: field kind must be a string, got ${describe(rawKind)}`));
  }
  // The error frame is readable at every version: it is how peers explain a version mismatch to each other.
  if (frame.v !== PROTOCOL_VERSION && kindName !== Kinds.ERROR) {
    return fail(new ProtocolVersionError(frame.v as number, kindName.slice(0, 64)));
  }
  if (!isMsgKind(kindName)) {
    return fail(new ProtocolError(ErrorCode.PROTOCOL_UNKNOWN_KIND, `unknown frame kind '${kindName.slice(0, 64)}' (v${PROTOCOL_VERSION} knows ${Object.keys(schemas).join(', ')})`));
  }
  const parsed = schemas[kindName].safeParse(frame);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return fail(new ProtocolError(ErrorCode.PROTOCOL_MALFORMED, `invalid '${kindName}' frame: ${formatPath(issue.path)}: ${issue.message}`));
  }
  return { ok: true, message: parsed.data as Message };
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value instanceof Uint8Array) return 'bytes';
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 64));
  if (typeof value === 'object') return value === null ? 'null' : Array.isArray(value) ? 'an array' : 'a map';
  return String(value);
}

/**
 * Turns the bytes of one frame into a typed message. The only path from bytes to a {@link Message}.
 * @throws ProtocolError with code E_PROTOCOL_MALFORMED (bad msgpack, truncated, trailing bytes, too deep, a
 *   missing or ill-typed field: the message names the field path), E_PROTOCOL_FORBIDDEN_KEY, E_PROTOCOL_VERSION
 *   (a {@link ProtocolVersionError} naming both versions) or E_PROTOCOL_UNKNOWN_KIND (naming the kind).
 */
export function parseMessage(raw: Uint8Array): Message {
  const result = tryParseMessage(raw);
  if (!result.ok) throw result.error;
  return result.message;
}

/**
 * Narrows a message to one kind.
 * @throws ProtocolError E_PROTOCOL_UNEXPECTED when `msg` is of another kind.
 */
export function expectKind<K extends MsgKind>(msg: Message, kind: K): MessageOf<K> {
  if (msg.kind !== kind) {
    throw new ProtocolError(ErrorCode.PROTOCOL_UNEXPECTED, `expected a '${kind}' frame, got '${msg.kind}' (id ${msg.id})`);
  }
  return msg as MessageOf<K>;
}
