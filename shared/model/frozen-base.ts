/**
 * The frozen base model on the device: every GGUF weight as a TF.js constant, linear weights in both layouts
 * (see linear-ops.ts), built once per process and shared by every client and adapter the process hosts.
 */
import * as tf from '@tensorflow/tfjs';
import { ErrorCode, ShapeError } from '../errors.js';
import type { FrozenMatrix } from './linear-ops.js';
import { disposeFrozenMatrix, frozenMatrix } from './linear-ops.js';
import { expectedBaseShapes, GGUF_LINEAR_NAMES, headDimOf, linearShapeOf, validateLlamaConfig } from './llama-config.js';
import { pairSwapMatrix } from './rope.js';
import type { BaseWeights, LlamaConfig, LoraTarget } from './types.js';

/** The frozen tensors of one transformer block. */
export interface FrozenLayer {
  readonly attnNorm: tf.Tensor1D;
  readonly ffnNorm: tf.Tensor1D;
  readonly linears: Readonly<Record<LoraTarget, FrozenMatrix>>;
}

/** A validated base model resident on the current TF.js backend. Call {@link FrozenBase.dispose} when done. */
export class FrozenBase {
  readonly config: LlamaConfig;
  /** `token_embd.weight` `[vocabSize, dim]`. */
  readonly embedding: tf.Tensor2D;
  readonly layers: readonly FrozenLayer[];
  readonly outputNorm: tf.Tensor1D;
  /** `[headDim, headDim]` permutation exchanging adjacent pairs, for RoPE (see rope.ts). */
  readonly pairSwap: FrozenMatrix;
  private readonly outputValues: Float32Array | undefined;
  private output: FrozenMatrix | undefined;
  /** Linear weights as loaded, kept from the first residual folded into them (so residuals never compound). */
  private readonly loadedLinears = new Map<string, Float32Array>();

  private constructor(config: LlamaConfig, weights: BaseWeights) {
    this.config = config;
    const get = (name: string): Float32Array => weights.get(name) as Float32Array;
    this.embedding = tf.tensor2d(get('token_embd.weight'), [config.vocabSize, config.dim]);
    const layers: FrozenLayer[] = [];
    for (let i = 0; i < config.nLayers; i++) {
      const linears = {} as Record<LoraTarget, FrozenMatrix>;
      for (const [target, name] of Object.entries(GGUF_LINEAR_NAMES) as [LoraTarget, string][]) {
        const [rows, cols] = linearShapeOf(config, target);
        linears[target] = frozenMatrix(get(`blk.${i}.${name}.weight`), rows, cols);
      }
      layers.push({
        attnNorm: tf.tensor1d(get(`blk.${i}.attn_norm.weight`)),
        ffnNorm: tf.tensor1d(get(`blk.${i}.ffn_norm.weight`)),
        linears,
      });
    }
    this.layers = layers;
    this.outputNorm = tf.tensor1d(get('output_norm.weight'));
    const headDim = headDimOf(config);
    this.pairSwap = frozenMatrix(pairSwapMatrix(headDim), headDim, headDim);
    this.outputValues = weights.get('output.weight');
  }

  /**
   * Validate `weights` against `config` and upload them.
   * @throws ConfigError E_CONFIG_INVALID for an impossible config.
   * @throws ShapeError E_TENSOR_NAME for a missing tensor, E_TENSOR_SHAPE for a wrong element count.
   */
  static fromWeights(config: LlamaConfig, weights: BaseWeights): FrozenBase {
    validateLlamaConfig(config);
    const expected = expectedBaseShapes(config);
    expected.set('output.weight', [config.vocabSize, config.dim]);
    for (const [name, shape] of expected) {
      const values = weights.get(name);
      if (values === undefined) {
        if (name === 'output.weight') continue;
        throw new ShapeError(ErrorCode.TENSOR_NAME, `base weights: tensor "${name}" is missing`);
      }
      const numel = shape.reduce((a, b) => a * b, 1);
      if (values.length !== numel) {
        throw new ShapeError(
          ErrorCode.TENSOR_SHAPE,
          `base weights: tensor "${name}" has ${values.length} values, expected [${shape.join(', ')}] = ${numel}`,
        );
      }
    }
    return new FrozenBase(config, weights);
  }

  /**
   * Whether the base holds the optional `output.weight` (`has('output.weight')`; without it the output projection
   * is tied to the embedding). Any other name answers false: only that tensor is optional.
   */
  has(name: string): boolean {
    return name === 'output.weight' ? this.outputValues !== undefined : false;
  }

  /**
   * The current base values by GGUF name, read back from the device (for initial values of methods that start
   * from base weights: prompt, feature, full). Costs one read of every tensor: call once per model.
   */
  readWeights(): BaseWeights {
    const out: BaseWeights = new Map();
    out.set('token_embd.weight', this.embedding.dataSync() as Float32Array);
    this.layers.forEach((layer, i) => {
      out.set(`blk.${i}.attn_norm.weight`, layer.attnNorm.dataSync() as Float32Array);
      out.set(`blk.${i}.ffn_norm.weight`, layer.ffnNorm.dataSync() as Float32Array);
      for (const [target, name] of Object.entries(GGUF_LINEAR_NAMES) as [LoraTarget, string][]) {
        out.set(`blk.${i}.${name}.weight`, layer.linears[target].w.dataSync() as Float32Array);
      }
    });
    out.set('output_norm.weight', this.outputNorm.dataSync() as Float32Array);
    if (this.outputValues) out.set('output.weight', this.outputValues);
    return out;
  }

  /**
   * The output projection `output.weight` `[vocabSize, dim]` (or the tied embedding), uploaded on first use:
   * classification never needs it, and its transposed copy is the largest tensor of a big-vocabulary model.
   */
  outputMatrix(): FrozenMatrix {
    if (!this.output) {
      // Kept: the first call may come from inside a caller's tf.tidy or tf.grads, which would dispose it.
      const w = tf.keep(this.outputValues ? tf.tensor2d(this.outputValues, [this.config.vocabSize, this.config.dim]) : tf.clone(this.embedding));
      this.output = { w, wt: tf.keep(tf.transpose(w)) };
    }
    return this.output;
  }

  /**
   * Folds residuals into linear weights (exact federated LoRA aggregation): each named weight (GGUF name,
   * `blk.0.attn_q.weight`, `[out, in]`) becomes its value as loaded plus its residual, replacing any earlier
   * residual. Weights not named keep what they hold.
   * @throws ShapeError E_TENSOR_NAME for a name that is not a linear weight of this model, E_TENSOR_SHAPE for a
   *   residual of the wrong size (nothing is changed then)
   */
  setResiduals(residuals: ReadonlyMap<string, Float32Array>): void {
    const updates: { layer: number; target: LoraTarget; name: string; residual: Float32Array }[] = [];
    for (const [name, residual] of residuals) {
      const match = /^blk\.(\d+)\.(\w+)\.weight$/.exec(name);
      const layer = match ? Number(match[1]) : -1;
      const target = match ? (Object.keys(GGUF_LINEAR_NAMES) as LoraTarget[]).find((t) => GGUF_LINEAR_NAMES[t] === match[2]) : undefined;
      if (!target || layer < 0 || layer >= this.layers.length) {
        throw new ShapeError(ErrorCode.TENSOR_NAME, `base residual "${name}" names no linear weight of this model`);
      }
      const [rows, cols] = linearShapeOf(this.config, target);
      if (residual.length !== rows * cols) {
        throw new ShapeError(ErrorCode.TENSOR_SHAPE, `base residual "${name}" has ${residual.length} values, expected [${rows}, ${cols}]`);
      }
      updates.push({ layer, target, name, residual });
    }
    for (const { layer, target, name, residual } of updates) {
      const linears = this.layers[layer].linears as Record<LoraTarget, FrozenMatrix>;
      let original = this.loadedLinears.get(name);
      if (!original) {
        original = linears[target].w.dataSync() as Float32Array;
        this.loadedLinears.set(name, original);
      }
      const [rows, cols] = linearShapeOf(this.config, target);
      const sum = new Float32Array(original.length);
      for (let i = 0; i < sum.length; i++) sum[i] = original[i] + residual[i];
      disposeFrozenMatrix(linears[target]);
      linears[target] = frozenMatrix(sum, rows, cols);
    }
  }

  /** Free every tensor. */
  dispose(): void {
    this.embedding.dispose();
    for (const layer of this.layers) {
      layer.attnNorm.dispose();
      layer.ffnNorm.dispose();
      for (const m of Object.values(layer.linears)) disposeFrozenMatrix(m);
    }
    this.outputNorm.dispose();
    disposeFrozenMatrix(this.pairSwap);
    if (this.output) disposeFrozenMatrix(this.output);
  }
}
