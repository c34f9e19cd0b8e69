import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { applyRope, pairSwapMatrix, ropeTables } from '../../../../shared/model/rope.js';
import { frozenLinear, frozenMatrix, disposeFrozenMatrix } from '../../../../shared/model/linear-ops.js';
import { mulberry32 } from '../../../../shared/random.js';
import { selectBackend } from '../../../../worker/backend.js';

describe('rotary embeddings, llama2.c adjacent-pair layout', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('pairSwapMatrix exchanges adjacent pairs', () => {
    const p = pairSwapMatrix(4);
    expect(Array.from(p)).toEqual([0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0]);
  });

  it('rotates pair i at position t by t·theta^(-2i/headDim), as llama2.c does', () => {
    const [b, t, h, d] = [2, 5, 3, 6];
    const rng = mulberry32(1);
    const xv = Float32Array.from({ length: b * t * h * d }, () => 2 * rng() - 1);
    const tables = ropeTables(t, d, 10000);
    const swap = frozenMatrix(pairSwapMatrix(d), d, d);
    const out = tf.tidy(() =>
      applyRope(
        tf.tensor4d(xv, [b, t, h, d]),
        tf.tensor4d(tables.cos, [1, t, 1, d]),
        tf.tensor4d(tables.sinSigned, [1, t, 1, d]),
        (x) => frozenLinear(x, swap),
      ).dataSync(),
    );
    disposeFrozenMatrix(swap);
    let maxErr = 0;
    for (let bb = 0; bb < b; bb++)
      for (let pos = 0; pos < t; pos++)
        for (let hh = 0; hh < h; hh++)
          for (let i = 0; i < d; i += 2) {
            const at = ((bb * t + pos) * h + hh) * d + i;
            const angle = pos * 10000 ** (-i / d);
            const [v0, v1] = [xv[at], xv[at + 1]];
            maxErr = Math.max(maxErr, Math.abs(out[at] - (v0 * Math.cos(angle) - v1 * Math.sin(angle))));
            maxErr = Math.max(maxErr, Math.abs(out[at + 1] - (v0 * Math.sin(angle) + v1 * Math.cos(angle))));
          }
    expect(maxErr).toBeLessThan(1e-6);
    // position 0 is the identity
    expect(out[0]).toBeCloseTo(xv[0], 6);
  });
});
