import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { errorCodeOf } from '../../../shared/errors.js';
import type { BackendPreference } from '../../../worker/backend.js';
import { selectBackend } from '../../../worker/backend.js';

function range(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => i);
}

describe('selectBackend', () => {
  it('leaves no re-throwing process listeners behind (the Emscripten glue adds some)', async () => {
    const before = [process.listenerCount('uncaughtException'), process.listenerCount('unhandledRejection')];
    // first: the wasm module is instantiated (and its glue adds listeners) on the first wasm selection
    await selectBackend('wasm');
    await selectBackend('cpu');
    await selectBackend('wasm');
    expect([process.listenerCount('uncaughtException'), process.listenerCount('unhandledRejection')]).toEqual(before);
  });

  it('auto: falls back from the absent native bindings to wasm and says why', async () => {
    const report = await selectBackend();
    expect(report.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(report.fallbackReasons).toHaveLength(2);
    expect(report.fallbackReasons[0]).toContain('@tensorflow/tfjs-node-gpu');
    expect(report.fallbackReasons[1]).toContain('@tensorflow/tfjs-node');
    expect(typeof report.simd).toBe('boolean');
    expect(report.threads).toBe(1);
  });

  it('tensorflow: falls back the same way when asked for explicitly', async () => {
    const report = await selectBackend('tensorflow');
    expect(report.name).toBe('wasm');
    expect(report.fallbackReasons.every((r) => r.startsWith('tensorflow: cannot import'))).toBe(true);
  });

  it('cpu and wasm: chosen directly, no fallbacks', async () => {
    const cpu = await selectBackend('cpu');
    expect(cpu).toEqual({ name: 'cpu', fallbackReasons: [], simd: false, threads: 1 });
    expect(tf.getBackend()).toBe('cpu');
    const wasm = await selectBackend('wasm');
    expect(wasm.name).toBe('wasm');
    expect(wasm.fallbackReasons).toEqual([]);
    expect(tf.getBackend()).toBe('wasm');
  });

  it('rejects an unknown preference with E_CONFIG_INVALID', async () => {
    const err = await selectBackend('gpu' as BackendPreference).catch((e: unknown) => e);
    expect(errorCodeOf(err)).toBe('E_CONFIG_INVALID');
  });
});

describe('wasm Slice / Unpack / SplitV replacements', () => {
  it('give the same values as the cpu backend for contiguous and strided slices', async () => {
    const cases = (): number[][] =>
      tf.tidy(() => {
        const x = tf.tensor(range(2 * 3 * 4 * 5), [2, 3, 4, 5]);
        const m = tf.tensor(range(6 * 7), [6, 7]);
        const i = tf.tensor(range(24), [4, 6], 'int32');
        return [
          ...tf.unstack(x).map((t) => Array.from(t.dataSync())),
          ...tf.unstack(x, 2).map((t) => Array.from(t.dataSync())),
          ...tf.unstack(m, 1).map((t) => Array.from(t.dataSync())),
          Array.from(tf.slice(x, [1, 1, 0, 0], [1, 2, 4, 5]).dataSync()),
          Array.from(tf.slice(x, [0, 1, 2, 1], [2, 2, 2, 3]).dataSync()),
          Array.from(tf.slice(m, [2, 3], [3, -1]).dataSync()),
          Array.from(tf.slice(i, [1, 2], [2, 3]).dataSync()),
          ...tf.split(x, [1, 4], 3).map((t) => Array.from(t.dataSync())),
          ...tf.split(m, 3, 0).map((t) => Array.from(t.dataSync())),
          Array.from(tf.stridedSlice(m, [1, 0], [5, 7], [1, 1]).dataSync()),
        ];
      });
    await selectBackend('cpu');
    const expected = cases();
    await selectBackend('wasm');
    const before = tf.memory().numTensors;
    expect(cases()).toEqual(expected);
    expect(tf.memory().numTensors).toBe(before);
    // unstack's gradient (stack) and slice's gradient (pad) still work through the replacements
    const g = tf.tidy(() =>
      tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.unstack(t)[1], tf.slice(t, [1, 0], [1, 3]).reshape([3]))))(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3])).arraySync(),
    );
    expect(g).toEqual([
      [0, 0, 0],
      [8, 10, 12],
    ]);
  });
});
