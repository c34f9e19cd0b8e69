/**
 * A plain-JavaScript, float64, one-position-at-a-time LLaMA forward pass written after llama2.c's `forward()`
 * (not a test file itself): the independent reference the TF.js decoder is checked against.
 */
import type { BaseWeights, LlamaConfig } from '../../../../shared/model/types.js';

function matVec(w: Float32Array, x: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += w[r * cols + c] * x[c];
    out[r] = s;
  }
  return out;
}

function rmsNorm(x: Float64Array, w: Float32Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const scale = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * scale * w[i]);
}

/** Logits `[ids.length][vocabSize]`: position t's prediction of token t+1. */
export function referenceLogits(config: LlamaConfig, weights: BaseWeights, ids: readonly number[]): Float64Array[] {
  const { dim, nLayers, nHeads, nKvHeads, hiddenDim, vocabSize, normEps, ropeTheta } = config;
  const headDim = dim / nHeads;
  const kvDim = nKvHeads * headDim;
  const group = nHeads / nKvHeads;
  const w = (name: string): Float32Array => weights.get(name) as Float32Array;
  const output = weights.get('output.weight') ?? w('token_embd.weight');
  const keys: Float64Array[][] = Array.from({ length: nLayers }, () => []);
  const values: Float64Array[][] = Array.from({ length: nLayers }, () => []);
  const result: Float64Array[] = [];
  ids.forEach((token, pos) => {
    let x = Float64Array.from(w('token_embd.weight').subarray(token * dim, (token + 1) * dim));
    for (let l = 0; l < nLayers; l++) {
      const xb = rmsNorm(x, w(`blk.${l}.attn_norm.weight`), normEps);
      const q = matVec(w(`blk.${l}.attn_q.weight`), xb, dim, dim);
      const k = matVec(w(`blk.${l}.attn_k.weight`), xb, kvDim, dim);
      const v = matVec(w(`blk.${l}.attn_v.weight`), xb, kvDim, dim);
      for (let i = 0; i < dim; i += 2) {
        const angle = pos * ropeTheta ** (-(i % headDim) / headDim);
        const [c, s] = [Math.cos(angle), Math.sin(angle)];
        for (const vec of i < kvDim ? [q, k] : [q]) {
          const [v0, v1] = [vec[i], vec[i + 1]];
          vec[i] = v0 * c - v1 * s;
          vec[i + 1] = v0 * s + v1 * c;
        }
      }
      keys[l].push(k);
      values[l].push(v);
      const attended = new Float64Array(dim);
      for (let h = 0; h < nHeads; h++) {
        const kvh = Math.floor(h / group);
        const scores = keys[l].map((kk) => {
          let s = 0;
          for (let i = 0; i < headDim; i++) s += q[h * headDim + i] * kk[kvh * headDim + i];
          return s / Math.sqrt(headDim);
        });
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const total = e.reduce((a, b) => a + b, 0);
        e.forEach((p, t) => {
          for (let i = 0; i < headDim; i++) attended[h * headDim + i] += (p / total) * values[l][t][kvh * headDim + i];
        });
      }
      const o = matVec(w(`blk.${l}.attn_output.weight`), attended, dim, dim);
      x = x.map((v2, i) => v2 + o[i]);
      const xf = rmsNorm(x, w(`blk.${l}.ffn_norm.weight`), normEps);
      const gate = matVec(w(`blk.${l}.ffn_gate.weight`), xf, hiddenDim, dim);
      const up = matVec(w(`blk.${l}.ffn_up.weight`), xf, hiddenDim, dim);
      const hidden = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
      const down = matVec(w(`blk.${l}.ffn_down.weight`), hidden, dim, hiddenDim);
      x = x.map((v2, i) => v2 + down[i]);
    }
    result.push(matVec(output, rmsNorm(x, w('output_norm.weight'), normEps), vocabSize, dim));
  });
  return result;
}
