import { describe, expect, it } from 'vitest';
import { permuteRopeRows } from '../../../../shared/formats/hf-rope-permute.js';
import { ErrorCode } from '../../../../shared/errors.js';

/** llama.cpp's permute written out: w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2).reshape(rows, cols). */
function llamaCppPermute(w: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
  const half = rows / nHead / 2;
  const out = new Float32Array(w.length);
  let p = 0;
  for (let h = 0; h < nHead; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const src = (h * 2 + j) * half + i;
        for (let c = 0; c < cols; c++) out[p++] = w[src * cols + c];
      }
    }
  }
  return out;
}

describe('permuteRopeRows', () => {
  it('moves HF rotate-half rows to adjacent pairs head by head', () => {
    const w = Float32Array.from({ length: 8 }, (_, i) => i);
    expect(Array.from(permuteRopeRows(w, 8, 1, 2, 'hf-to-gguf'))).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
  });

  it('equals llama.cpp convert_hf_to_gguf permute, and gguf-to-hf inverts it', () => {
    const rows = 48;
    const cols = 5;
    const w = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i));
    for (const heads of [1, 2, 3, 6]) {
      const gguf = permuteRopeRows(w, rows, cols, heads, 'hf-to-gguf');
      expect(gguf).toEqual(llamaCppPermute(w, rows, cols, heads));
      expect(permuteRopeRows(gguf, rows, cols, heads, 'gguf-to-hf')).toEqual(w);
    }
  });

  it('refuses rows that do not split into heads of even width', () => {
    expect(() => permuteRopeRows(new Float32Array(12), 12, 1, 4, 'hf-to-gguf')).toThrow(expect.objectContaining({ code: ErrorCode.TENSOR_SHAPE }));
    expect(() => permuteRopeRows(new Float32Array(7), 8, 1, 2, 'hf-to-gguf')).toThrow(/7 values are not \[8, 1\]/);
  });
});
