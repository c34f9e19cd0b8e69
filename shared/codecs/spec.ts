/**
 * Which codec a tensor travels in: {@link CodecSpec} (one tensor), {@link CodecPolicy} (a default plus
 * overrides by tensor-name glob, first match wins) and their validation.
 */
import { ConfigError, ErrorCode } from '../errors.js';

/** The codec names, lossless first. */
export const CODEC_NAMES = ['fp32', 'fp16', 'bf16', 'int8', 'topk'] as const;
export type CodecName = (typeof CODEC_NAMES)[number];

/** Elements per int8 scale block. @default 64 */
export const DEFAULT_INT8_BLOCK_SIZE = 64;
/** Largest accepted int8 block size (elements). */
export const MAX_INT8_BLOCK_SIZE = 1 << 20;
/** Fraction of elements topk keeps when `density` is not given. @default 0.01 */
export const DEFAULT_TOPK_DENSITY = 0.01;

/**
 * How to encode one float32 tensor.
 * - `fp32`: raw little-endian, lossless.
 * - `fp16` / `bf16`: IEEE half / bfloat16, round to nearest even.
 * - `int8`: blockwise absmax, one float32 scale per `blockSize` elements.
 * - `topk`: the k = max(1, ceil(density·n)) largest magnitudes as uint32 indices + float32 values.
 */
export interface CodecSpec {
  readonly codec: CodecName;
  /** int8 only: elements per scale block, 1..{@link MAX_INT8_BLOCK_SIZE}. @default 64 */
  readonly blockSize?: number;
  /** topk only: fraction of elements kept, in (0, 1]. @default 0.01 */
  readonly density?: number;
}

/** One override of a {@link CodecPolicy}: tensors whose name matches `pattern` use `spec`. */
export interface CodecOverride {
  /** A glob over the whole tensor name: `*` matches any run of characters (dots included), all else is literal. */
  readonly pattern: string;
  readonly spec: CodecSpec;
}

/** Per-tensor codec choice: `overrides` in order (first match wins), else `default`. */
export interface CodecPolicy {
  readonly default: CodecSpec;
  readonly overrides?: readonly CodecOverride[];
}

/** The lossless policy: every tensor as fp32. */
export const FP32_POLICY: CodecPolicy = { default: { codec: 'fp32' } };

/** Whether `name` is a codec name. */
export function isCodecName(name: unknown): name is CodecName {
  return typeof name === 'string' && (CODEC_NAMES as readonly string[]).includes(name);
}

const globCache = new Map<string, RegExp>();

/** Whether `name` matches the glob `pattern` (whole name; `*` is any run of characters, even empty). */
export function matchesGlob(pattern: string, name: string): boolean {
  let re = globCache.get(pattern);
  if (re === undefined) {
    const body = pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*');
    re = new RegExp(`^${body}$`, 's');
    if (globCache.size < 1024) globCache.set(pattern, re);
  }
  return re.test(name);
}

/** The spec for tensor `name` under `policy`: the first override whose pattern matches, else the default. */
export function resolveCodec(policy: CodecPolicy, name: string): CodecSpec {
  for (const o of policy.overrides ?? []) if (matchesGlob(o.pattern, name)) return o.spec;
  return policy.default;
}

/**
 * Checks a spec (from a config file or the wire) and returns it with defaults filled in.
 * @param where what the spec is, for the message (e.g. `codec.overrides[1].spec`).
 * @throws ConfigError E_CONFIG_INVALID for an unknown codec, a block size that is not an integer in
 *   1..{@link MAX_INT8_BLOCK_SIZE}, a density outside (0, 1], or a parameter given to a codec that has none.
 */
export function checkCodecSpec(spec: unknown, where = 'codec'): Required<Pick<CodecSpec, 'codec'>> & CodecSpec {
  const bad = (what: string) => new ConfigError(ErrorCode.CONFIG_INVALID, `${where}: ${what}`);
  if (typeof spec !== 'object' || spec === null) throw bad(`expected an object { codec, blockSize?, density? }, got ${JSON.stringify(spec)}`);
  const { codec, blockSize, density, ...rest } = spec as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length > 0) throw bad(`unknown field "${extra[0]}" (a codec spec has codec, blockSize, density)`);
  if (!isCodecName(codec)) throw bad(`unknown codec ${JSON.stringify(codec)} (expected one of ${CODEC_NAMES.join(', ')})`);
  if (blockSize !== undefined) {
    if (codec !== 'int8') throw bad(`blockSize applies to int8 only, not ${codec}`);
    if (!Number.isInteger(blockSize) || (blockSize as number) < 1 || (blockSize as number) > MAX_INT8_BLOCK_SIZE) {
      throw bad(`blockSize ${JSON.stringify(blockSize)} is not an integer in 1..${MAX_INT8_BLOCK_SIZE}`);
    }
  }
  if (density !== undefined) {
    if (codec !== 'topk') throw bad(`density applies to topk only, not ${codec}`);
    if (typeof density !== 'number' || !(density > 0 && density <= 1)) throw bad(`density ${JSON.stringify(density)} is not in (0, 1]`);
  }
  if (codec === 'int8') return { codec, blockSize: (blockSize as number | undefined) ?? DEFAULT_INT8_BLOCK_SIZE };
  if (codec === 'topk') return { codec, density: (density as number | undefined) ?? DEFAULT_TOPK_DENSITY };
  return { codec };
}

/**
 * Parses the short string form used on command lines: `fp32`, `fp16`, `bf16`, `int8`, `int8:128`
 * (block size), `topk`, `topk:0.01` (density).
 * @throws ConfigError E_CONFIG_INVALID naming `where` and the text.
 */
export function parseCodecSpec(text: string, where = 'codec'): CodecSpec {
  const [codec, param, ...more] = text.trim().split(':');
  if (more.length > 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, `${where}: "${text}" has more than one ":" (e.g. int8:64, topk:0.01)`);
  if (param === undefined) return checkCodecSpec({ codec }, where);
  const value = Number(param);
  if (param.trim() === '' || !Number.isFinite(value)) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `${where}: "${text}": "${param}" is not a number`);
  }
  if (codec === 'int8') return checkCodecSpec({ codec, blockSize: value }, where);
  if (codec === 'topk') return checkCodecSpec({ codec, density: value }, where);
  throw new ConfigError(ErrorCode.CONFIG_INVALID, `${where}: "${text}": ${codec} takes no parameter (only int8:BLOCK and topk:DENSITY do)`);
}

/** Whether a codec loses information (everything but fp32). */
export function isLossy(spec: CodecSpec): boolean {
  return spec.codec !== 'fp32';
}
