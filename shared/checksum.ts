/**
 * CRC-32 (the zlib / IEEE 802.3 polynomial, unsigned) of byte ranges, incrementally: `crc32(b, crc32(a))` is the
 * checksum of `a` followed by `b`. Every chunk and blob on the wire carries one, so its speed bounds the wire's:
 * `@node-rs/crc32` (native, SIMD: about 6 GB/s here) when its prebuilt binary loads on this platform, else
 * `node:zlib`'s (about 2 GB/s). Both give identical values.
 */
import { createRequire } from 'node:module';
import { crc32 as zlibCrc32 } from 'node:zlib';

type Crc32 = (bytes: Uint8Array, initial?: number) => number;

function loadNative(): Crc32 | undefined {
  try {
    const native = createRequire(import.meta.url)('@node-rs/crc32') as { crc32: (input: Uint8Array, initial?: number) => number };
    return (bytes, initial = 0) => native.crc32(bytes, initial);
  } catch {
    // No prebuilt binary for this platform (or the package is absent): zlib's is as correct, only slower.
    return undefined;
  }
}

const native = loadNative();

/** Which implementation {@link crc32} uses: `native` (@node-rs/crc32) or `zlib`. */
export const CRC32_IMPLEMENTATION: 'native' | 'zlib' = native ? 'native' : 'zlib';

/** CRC-32 of `bytes`, continuing from `initial` (the CRC of what came before). @default initial 0 */
export function crc32(bytes: Uint8Array, initial = 0): number {
  return (native ? native(bytes, initial) : zlibCrc32(bytes, initial)) >>> 0;
}
