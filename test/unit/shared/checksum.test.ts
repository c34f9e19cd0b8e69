import { execFileSync } from 'node:child_process';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CRC32_IMPLEMENTATION, CRC32_IMPLEMENTATIONS, crc32, loadCrc32 } from '../../../shared/checksum.js';
import { TSX_IMPORT_URL } from '../../../shared/tsx-loader.js';

const checksumModule = fileURLToPath(new URL('../../../shared/checksum.ts', import.meta.url));
const onLinuxX64 = process.platform === 'linux' && process.arch === 'x64';

/** Random bytes of `length` starting `offset` bytes into their buffer (the addon must not assume alignment). */
function bytesAt(length: number, offset: number, seed: number): Uint8Array {
  const buffer = new Uint8Array(length + offset);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < buffer.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buffer[i] = x & 0xff;
  }
  return buffer.subarray(offset);
}

describe('CRC-32 implementations', () => {
  it('picks the AVX-512 addon where it was built and the CPU has VPCLMULQDQ', () => {
    const avx512 = loadCrc32('avx512');
    if (typeof avx512 === 'string') {
      // `npm install` builds it wherever a C compiler is present on Linux x86-64 (CI installs gcc).
      expect(onLinuxX64 && avx512.includes('Cannot find module'), `addon not built: ${avx512}`).toBe(false);
      expect(CRC32_IMPLEMENTATION).toBe('node-rs');
    } else {
      expect(CRC32_IMPLEMENTATION).toBe('avx512');
    }
  });

  for (const name of CRC32_IMPLEMENTATIONS) {
    it(`${name} equals zlib's CRC-32 for any bytes, length, alignment and starting value`, () => {
      const impl = loadCrc32(name);
      if (typeof impl === 'string') return expect(name).not.toBe('zlib');
      fc.assert(
        fc.property(
          // Lengths around the folding loops' edges (16, 64, 256 bytes) and well past them. Empty input is the
          // wrapper's business (below): node:zlib answers 0 for some empty arrays whatever the starting value.
          fc.oneof(fc.integer({ min: 1, max: 600 }), fc.integer({ min: 600, max: 200_000 })),
          fc.integer({ min: 0, max: 63 }),
          fc.integer(),
          fc.nat({ max: 0xffffffff }),
          (length, offset, seed, initial) => {
            const bytes = bytesAt(length, offset, seed);
            expect(impl(bytes, initial) >>> 0).toBe(zlibCrc32(bytes, initial) >>> 0);
          },
        ),
        { numRuns: 400 },
      );
    });
  }

  it('continues a checksum across pieces: crc32(b, crc32(a)) is the CRC of a then b', () => {
    const whole = bytesAt(1 << 20, 3, 7);
    const cut = 300_001;
    expect(crc32(whole.subarray(cut), crc32(whole.subarray(0, cut)))).toBe(zlibCrc32(whole) >>> 0);
    expect(crc32(new Uint8Array(0), 0x1234abcd)).toBe(0x1234abcd);
    // An empty view without a backing store, for which node:zlib's crc32 answers 0.
    expect(crc32(new Uint8Array(0).subarray(0), 0x1234abcd)).toBe(0x1234abcd);
  });

  it('SWARMTUNE_CRC32 picks an implementation, and a bad value is refused by name', () => {
    const implementationWith = (value: string): string =>
      execFileSync(
        process.execPath,
        ['--import', TSX_IMPORT_URL, '--input-type=module', '-e', `import(${JSON.stringify(checksumModule)}).then((m) => console.log(m.CRC32_IMPLEMENTATION))`],
        { env: { ...process.env, SWARMTUNE_CRC32: value }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      ).trim();
    expect(implementationWith('zlib')).toBe('zlib');
    expect(implementationWith('node-rs')).toBe('node-rs');
    let failure = '';
    try {
      implementationWith('crc64');
    } catch (err) {
      failure = String((err as { stderr?: string }).stderr);
    }
    expect(failure).toContain('SWARMTUNE_CRC32=crc64: expected one of avx512, node-rs, zlib');
  });
});
