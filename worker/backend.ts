/**
 * Compute backend selection: the ONLY module in the project that imports a TF.js backend package.
 *
 * Order for `auto`: `tensorflow` (native, from `@tensorflow/tfjs-node-gpu` or `@tensorflow/tfjs-node` when
 * installed), then `wasm` (`@tensorflow/tfjs-backend-wasm`: XNNPACK, SIMD, one thread per process, the CPU
 * default), then `cpu` (pure JavaScript, last resort). Every backend that was tried and refused is reported
 * with the reason, so a worker can say why it runs slower than expected.
 */
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ConfigError, ErrorCode } from '../shared/errors.js';
import { installWasmSliceKernels } from './wasm-slice-kernels.js';

/** Backends a worker may ask for. */
export const BACKEND_PREFERENCES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendPreference = (typeof BACKEND_PREFERENCES)[number];

/** The backend names this module can end up with. */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

/** What {@link selectBackend} chose, and why it did not choose something faster. */
export interface BackendReport {
  /** The TF.js backend now active. */
  readonly name: BackendName;
  /** One line per backend that was tried and refused, in the order tried (empty when the first choice worked). */
  readonly fallbackReasons: string[];
  /** Whether the kernels use SIMD (wasm: the SIMD build was loaded; tensorflow: assumed; cpu: false). */
  readonly simd: boolean;
  /** Threads the backend computes with (wasm in Node: 1; tensorflow: the core count; cpu: 1). */
  readonly threads: number;
}

// Native bindings are optional: they are not dependencies of this package, so their names are not literal imports
// (TypeScript would insist on their types) and a missing one is a normal, reported fallback.
const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

let wasmModule: typeof import('@tensorflow/tfjs-backend-wasm') | undefined;

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0] : String(err);
}

async function tryTensorflow(reasons: string[]): Promise<BackendReport | undefined> {
  for (const pkg of NATIVE_PACKAGES) {
    try {
      const specifier: string = pkg;
      await import(specifier);
    } catch (err) {
      const isMissing = (err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND';
      reasons.push(`tensorflow: cannot import ${pkg} (${isMissing ? 'not installed' : reasonOf(err)})`);
      continue;
    }
    try {
      if (await tf.setBackend('tensorflow')) {
        await tf.ready();
        return { name: 'tensorflow', fallbackReasons: reasons, simd: true, threads: cpus().length };
      }
      reasons.push(`tensorflow: ${pkg} was imported but tf.setBackend('tensorflow') failed`);
    } catch (err) {
      reasons.push(`tensorflow: ${pkg} was imported but the backend did not start (${reasonOf(err)})`);
    }
  }
  return undefined;
}

/**
 * Run `f`, then remove the `uncaughtException` / `unhandledRejection` listeners it added. The Emscripten glue of
 * the wasm backend installs listeners that re-throw from inside its minified bundle, so that every later uncaught
 * error in the process is printed as a multi-kilobyte line of minified code instead of its own stack; without
 * them Node's default behaviour (print the error, exit) is unchanged.
 */
async function withoutEmscriptenListeners<T>(f: () => Promise<T>): Promise<T> {
  const uncaught = new Set(process.listeners('uncaughtException'));
  const rejection = new Set(process.listeners('unhandledRejection'));
  try {
    return await f();
  } finally {
    for (const l of process.listeners('uncaughtException')) if (!uncaught.has(l)) process.removeListener('uncaughtException', l);
    for (const l of process.listeners('unhandledRejection')) if (!rejection.has(l)) process.removeListener('unhandledRejection', l);
  }
}

async function tryWasm(reasons: string[]): Promise<BackendReport | undefined> {
  return withoutEmscriptenListeners(() => startWasm(reasons));
}

async function startWasm(reasons: string[]): Promise<BackendReport | undefined> {
  try {
    if (!wasmModule) {
      wasmModule = await import('@tensorflow/tfjs-backend-wasm');
      // The .wasm binaries sit next to the package's entry point; say so explicitly so that bundlers, vitest and
      // `node --import tsx` all find them the same way.
      const require = createRequire(import.meta.url);
      const distDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
      wasmModule.setWasmPaths(join(distDir, '/'));
      installWasmSliceKernels();
    }
    if (!(await tf.setBackend('wasm'))) {
      reasons.push("wasm: tf.setBackend('wasm') failed (the WebAssembly module did not initialise)");
      return undefined;
    }
    await tf.ready();
    const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
    const multithread = Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'));
    return { name: 'wasm', fallbackReasons: reasons, simd, threads: multithread ? cpus().length : 1 };
  } catch (err) {
    reasons.push(`wasm: ${reasonOf(err)}`);
    return undefined;
  }
}

async function useCpu(reasons: string[]): Promise<BackendReport> {
  if (!(await tf.setBackend('cpu'))) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `backend: even the pure-JS cpu backend failed to start (${reasons.join('; ')})`);
  }
  await tf.ready();
  return { name: 'cpu', fallbackReasons: reasons, simd: false, threads: 1 };
}

/**
 * Pick, activate and report the TF.js backend for this process. Safe to call again (it re-activates).
 *
 * @param preferred `auto` tries tensorflow → wasm → cpu; a named backend is tried first and falls back along the
 *   same order when it cannot start (`cpu` never falls back). @default 'auto'
 * @throws ConfigError E_CONFIG_INVALID for an unknown preference, or when no backend at all can start.
 */
export async function selectBackend(preferred: BackendPreference = 'auto'): Promise<BackendReport> {
  if (!BACKEND_PREFERENCES.includes(preferred)) {
    throw new ConfigError(
      ErrorCode.CONFIG_INVALID,
      `backend: unknown backend "${String(preferred)}" (expected one of ${BACKEND_PREFERENCES.join(', ')})`,
    );
  }
  const reasons: string[] = [];
  if (preferred === 'cpu') return useCpu(reasons);
  if (preferred === 'auto' || preferred === 'tensorflow') {
    const native = await tryTensorflow(reasons);
    if (native) return native;
  }
  const wasm = await tryWasm(reasons);
  if (wasm) return wasm;
  return useCpu(reasons);
}
