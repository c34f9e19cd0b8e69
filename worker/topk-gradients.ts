/**
 * The worker side of sparse (`topk`) gradients: error feedback, the dense warm-up of 1-bit-Adam-style training,
 * and the choice of which k entries go on the wire (per tensor or over the whole result, by magnitude or by
 * magnitude over the worker's own second-moment estimate).
 */
import type { TensorBlob } from '../shared/protocol/messages.js';
import { allocateTopkBudget, encodeTensor, ErrorFeedback } from '../shared/codecs/index.js';
import type { CodecSpec } from '../shared/codecs/index.js';
import { encodeTopkAt, selectTopkIndices } from '../shared/codecs/topk.js';
import { DEFAULT_TOPK_DENSITY } from '../shared/codecs/spec.js';
import { throwFirstNonFinite } from '../shared/codecs/common.js';

/** How a worker encodes its `topk` gradient tensors. */
export interface TopkGradientOptions {
  /** Add what earlier results dropped to this one. @default true */
  readonly errorFeedback: boolean;
  /** Optimizer steps (0-based indices below this) whose topk tensors go dense as fp32. @default 0 */
  readonly warmupSteps: number;
  /**
   * The result keeps ⌊Σ density·n⌋ entries over its topk tensors ({@link allocateTopkBudget}); `tensor`: each
   * tensor its share (⌊density·n⌋, the remainders by largest fraction); `global`: wherever the scores are largest.
   * @default 'tensor'
   */
  readonly scope: 'tensor' | 'global';
  /**
   * Rank by `magnitude`, or by magnitude / √v of the warm-up gradients (`preconditioned`); `fisher` ranks by the
   * caller's {@link TopkTensor.weights} (by magnitude where a tensor has none). @default 'magnitude'
   */
  readonly selection: 'magnitude' | 'preconditioned' | 'fisher';
  /** Decay of the worker's second-moment estimate over the warm-up steps. @default 0.999 */
  readonly beta2: number;
}

/** Plain per-tensor top-k with error feedback, as before any of the options existed. */
export const DEFAULT_TOPK_GRADIENT_OPTIONS: TopkGradientOptions = {
  errorFeedback: true,
  warmupSteps: 0,
  scope: 'tensor',
  selection: 'magnitude',
  beta2: 0.999,
};

/** One gradient tensor of a result whose codec is `topk`. */
export interface TopkTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly values: Float32Array;
  readonly spec: CodecSpec;
  /**
   * Per-element weights of the ranking: entries are chosen by |value + residual| · weight instead of by magnitude
   * (e.g. √v̂ of the worker's AdamW, `topk_selection: fisher`). Non-negative and finite; overrides `selection`.
   * @default undefined (rank by `selection`)
   */
  readonly weights?: Float32Array;
}

/** Per-worker state (residuals, second-moment estimate) across the steps of a run. */
export class TopkGradientEncoder {
  private readonly errorFeedback = new ErrorFeedback();
  private readonly secondMoment = new Map<string, Float64Array>();

  constructor(private readonly options: TopkGradientOptions = DEFAULT_TOPK_GRADIENT_OPTIONS) {}

  /**
   * Encodes the topk tensors of one result for optimizer step `step`, in the order given.
   * @throws ShapeError E_TENSOR_NON_FINITE / E_TENSOR_SHAPE naming the tensor, before any residual changes.
   */
  encode(step: number, tensors: readonly TopkTensor[]): TensorBlob[] {
    if (step < this.options.warmupSteps) return tensors.map((t) => this.dense(t));
    const corrected = tensors.map((t) => (this.options.errorFeedback ? this.errorFeedback.corrected(t.name, t.shape, t.values) : t.values));
    tensors.forEach((t, i) => {
      if (!corrected[i].every(Number.isFinite)) throwFirstNonFinite(t.name, 'topk', t.values.every(Number.isFinite) ? corrected[i] : t.values);
    });
    const scores = tensors.map((t, i) => (t.weights === undefined ? this.scores(t.name, corrected[i]) : weighted(corrected[i], t.weights)));
    // One budget for the result (⌊Σ density·n⌋ entries), so many small tensors do not round it up past the density.
    const counts = allocateTopkBudget(
      tensors.map((t) => t.values.length),
      tensors.map((t) => t.spec.density ?? DEFAULT_TOPK_DENSITY),
    );
    const chosen = this.options.scope === 'global' ? selectGlobal(scores, counts) : scores.map((s, i) => selectTopkIndices(s, counts[i]));
    const blobs = tensors.map((t, i): TensorBlob => ({
      name: t.name,
      dtype: 'float32',
      shape: [...t.shape],
      data: encodeTopkAt(t.name, corrected[i], chosen[i]),
      codec: 'topk',
    }));
    if (this.options.errorFeedback) tensors.forEach((t, i) => this.errorFeedback.keep(t.name, t.shape, corrected[i], blobs[i]));
    return blobs;
  }

  /** Multiplies every residual by `factor` in [0, 1] (`sparse_residual_decay`; see {@link ErrorFeedback.scale}). */
  scaleResiduals(factor: number): void {
    this.errorFeedback.scale(factor);
  }

  /** The error-feedback residual held for `name` (a copy), or undefined when none is. */
  residual(name: string): Float32Array | undefined {
    return this.errorFeedback.residual(name);
  }

  private dense(t: TopkTensor): TensorBlob {
    const blob = encodeTensor(t.name, t.shape, t.values, { codec: 'fp32' });
    if (this.options.selection === 'preconditioned') {
      let v = this.secondMoment.get(t.name);
      if (v === undefined) this.secondMoment.set(t.name, (v = new Float64Array(t.values.length)));
      const b = this.options.beta2;
      for (let i = 0; i < v.length; i++) v[i] = b * v[i] + (1 - b) * t.values[i] * t.values[i];
    }
    // fp32 blobs view `values`; the copy keeps the blob valid whatever the caller does with the gradient after.
    return { ...blob, data: blob.data.slice() };
  }

  private scores(name: string, values: Float32Array): Float32Array {
    const scores = new Float32Array(values.length);
    const v = this.options.selection === 'preconditioned' ? this.secondMoment.get(name) : undefined;
    if (v === undefined) {
      for (let i = 0; i < scores.length; i++) scores[i] = Math.abs(values[i]);
    } else {
      // A coordinate with no warm-up gradient at all ranks by magnitude against the tensor's typical scale.
      let mean = 0;
      for (let i = 0; i < v.length; i++) mean += v[i];
      const floor = Math.sqrt(mean / Math.max(1, v.length)) * 1e-3 + 1e-30;
      for (let i = 0; i < scores.length; i++) scores[i] = Math.abs(values[i]) / (Math.sqrt(v[i]) + floor);
    }
    return scores;
  }
}

/** |values| · weights, element by element, as ranking scores. */
function weighted(values: Float32Array, weights: Float32Array): Float32Array {
  const scores = new Float32Array(values.length);
  for (let i = 0; i < scores.length; i++) scores[i] = Math.abs(values[i]) * weights[i];
  return scores;
}

/** One ranking over all tensors laid end to end, with as many entries in all as the per-tensor counts add to. */
function selectGlobal(scores: readonly Float32Array[], counts: readonly number[]): Uint32Array[] {
  const total = scores.reduce((n, s) => n + s.length, 0);
  const all = new Float32Array(total);
  let offset = 0;
  for (const s of scores) {
    all.set(s, offset);
    offset += s.length;
  }
  const picked = selectTopkIndices(all, counts.reduce((a, b) => a + b, 0));
  const out: Uint32Array[] = [];
  let start = 0;
  offset = 0;
  for (const s of scores) {
    let end = start;
    while (end < picked.length && picked[end] < offset + s.length) end++;
    out.push(picked.slice(start, end).map((i) => i - offset));
    start = end;
    offset += s.length;
  }
  return out;
}
