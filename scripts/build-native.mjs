#!/usr/bin/env node
/**
 * Builds swarmtune's one native addon, the AVX-512 CRC-32 (shared/native/crc32.c), into
 * shared/native/build/crc32.node. Run by `npm install` (the `postinstall` script); run it again by hand with
 * `node scripts/build-native.mjs`.
 *
 * It needs a C compiler (`cc`, or `$CC`) and Node's headers (node_api.h, shipped with Node under
 * <prefix>/include/node). It never fails the install: without them, or off Linux/x86-64, it says why on one line
 * and the wire checksums with @node-rs/crc32 instead (the same values, about a third of the speed here).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'shared', 'native', 'crc32.c');
const outDir = join(root, 'shared', 'native', 'build');
const output = join(outDir, 'crc32.node');

function skip(reason) {
  console.log(`swarmtune: native CRC-32 not built (${reason}); the wire uses @node-rs/crc32 instead.`);
  process.exit(0);
}

if (process.platform !== 'linux' || process.arch !== 'x64') skip(`it is for Linux on x86-64, this is ${process.platform}/${process.arch}`);

const includeDirs = [
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
  join(dirname(process.execPath), '..', 'include', 'node'),
  process.config.variables.node_prefix && join(process.config.variables.node_prefix, 'include', 'node'),
].filter(Boolean);
const includeDir = includeDirs.find((dir) => existsSync(join(dir, 'node_api.h')));
if (!includeDir) skip(`no node_api.h under ${includeDirs.join(', ')}`);

const compiler = process.env.CC || 'cc';
const partial = `${output}.partial`;
try {
  mkdirSync(outDir, { recursive: true });
  execFileSync(compiler, ['-O3', '-std=gnu11', '-fPIC', '-shared', '-Wall', '-Wextra', '-Werror', '-I', includeDir, source, '-o', partial], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  renameSync(partial, output);
} catch (err) {
  rmSync(partial, { force: true });
  const detail = err.code === 'ENOENT' ? `no C compiler: ${compiler} not found` : `${compiler} failed: ${String(err.stderr ?? err.message).trim().split('\n')[0]}`;
  skip(detail);
}
console.log(`swarmtune: built ${output.slice(root.length + 1)} (AVX-512 CRC-32 for the wire's checksums).`);
