/**
 * CRC-32 (the zlib / IEEE 802.3 polynomial, unsigned) of byte ranges, incrementally: `crc32(b, crc32(a))` is the
 * checksum of `a` followed by `b`. Every chunk and blob on the wire carries one, so its speed bounds the wire's.
 * The fastest that loads here wins, all giving identical values:
 * - `avx512`: swarmtune's own addon (shared/native/crc32.c, built by `npm install` where a C compiler is
 *   present), folding 256 bytes at a time with VPCLMULQDQ: 40-70 GB/s here on data in cache;
 * - `node-rs`: @node-rs/crc32's prebuilt binary (128-bit folding: 13-20 GB/s here);
 * - `zlib`: `node:zlib`'s (2-4 GB/s).
 * `SWARMTUNE_CRC32=avx512|node-rs|zlib` picks one (for comparisons; one that cannot load is an error).
 */
import { createRequire } from 'node:module';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { ErrorCode, OrchestratorError } from './errors.js';

type Crc32 = (bytes: Uint8Array, initial: number) => number;
type Crc32Copy = (target: Uint8Array, offset: number, source: Uint8Array, initial: number) => number;

/** The CRC-32 implementations, fastest first. */
export const CRC32_IMPLEMENTATIONS = ['avx512', 'node-rs', 'zlib'] as const;
export type Crc32Implementation = (typeof CRC32_IMPLEMENTATIONS)[number];
/** The environment variable that picks an implementation. */
export const CRC32_IMPLEMENTATION_ENV = 'SWARMTUNE_CRC32';

const require = createRequire(import.meta.url);

interface Addon {
  crc32: Crc32;
  crc32Copy: Crc32Copy;
  vectorised: () => boolean;
}

/** The implementation `name`, or why it cannot be used on this machine. */
export function loadCrc32(name: Crc32Implementation): Crc32 | string {
  const addon = name === 'avx512' ? loadAddon() : undefined;
  if (typeof addon === 'string') return addon;
  if (addon) return addon.crc32;
  try {
    if (name === 'node-rs') {
      const nodeRs = require('@node-rs/crc32') as { crc32: (input: Uint8Array, initial?: number) => number };
      return (bytes, initial) => nodeRs.crc32(bytes, initial);
    }
    return (bytes, initial) => zlibCrc32(bytes, initial);
  } catch (err) {
    // No prebuilt binary for this platform.
    return (err as Error).message.split('\n')[0];
  }
}

function loadAddon(): Addon | string {
  try {
    const addon = require('./native/build/crc32.node') as Addon;
    // Without AVX-512 VPCLMULQDQ the addon falls back to a byte loop, slower than @node-rs/crc32.
    return addon.vectorised() ? addon : 'this CPU lacks AVX-512 VPCLMULQDQ';
  } catch (err) {
    // Not built: no C compiler at install time, or not Linux x86-64 (scripts/build-native.mjs).
    return (err as Error).message.split('\n')[0];
  }
}

/** The implementation in use, with the addon's fused checksum-and-copy when that implementation is the addon. */
function pick(): { name: Crc32Implementation; fn: Crc32; copy?: Crc32Copy } {
  const wanted = process.env[CRC32_IMPLEMENTATION_ENV];
  if (wanted) {
    if (!(CRC32_IMPLEMENTATIONS as readonly string[]).includes(wanted)) {
      throw new OrchestratorError(ErrorCode.CONFIG_INVALID, `${CRC32_IMPLEMENTATION_ENV}=${wanted}: expected one of ${CRC32_IMPLEMENTATIONS.join(', ')}`);
    }
    const fn = loadCrc32(wanted as Crc32Implementation);
    if (typeof fn === 'string') throw new OrchestratorError(ErrorCode.CONFIG_INVALID, `${CRC32_IMPLEMENTATION_ENV}=${wanted} cannot be used here: ${fn}`);
    return withCopy(wanted as Crc32Implementation, fn);
  }
  for (const name of CRC32_IMPLEMENTATIONS) {
    const fn = loadCrc32(name);
    if (typeof fn !== 'string') return withCopy(name, fn);
  }
  throw new Error('unreachable: zlib always loads');
}

function withCopy(name: Crc32Implementation, fn: Crc32): { name: Crc32Implementation; fn: Crc32; copy?: Crc32Copy } {
  // loadCrc32 succeeded for 'avx512', so the (cached) module loads again.
  return name === 'avx512' ? { name, fn, copy: (loadAddon() as Addon).crc32Copy } : { name, fn };
}

const chosen = pick();

/** Which implementation {@link crc32} uses. */
export const CRC32_IMPLEMENTATION: Crc32Implementation = chosen.name;

/** CRC-32 of `bytes`, continuing from `initial` (the CRC of what came before). @default initial 0 */
export function crc32(bytes: Uint8Array, initial = 0): number {
  // node:zlib answers 0 for an empty array without a backing store, whatever `initial` is.
  if (bytes.byteLength === 0) return initial >>> 0;
  return chosen.fn(bytes, initial) >>> 0;
}

/**
 * Copies `source` into `target` at `offset` and returns its CRC-32 continued from `initial`: with the AVX-512
 * addon in one pass (each byte loaded once for both), else a checksum then a copy.
 * @throws RangeError when `source` does not fit in `target` at `offset`.
 */
export function crc32Copy(target: Uint8Array, offset: number, source: Uint8Array, initial: number): number {
  if (chosen.copy) return chosen.copy(target, offset, source, initial) >>> 0;
  const crc = crc32(source, initial);
  target.set(source, offset);
  return crc;
}
