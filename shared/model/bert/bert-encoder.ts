/**
 * The frozen BERT encoder on the device and its forward pass, following Hugging Face's `modeling_bert`:
 * embeddings (word + position + token type 0, LayerNorm), `nLayers` post-LN blocks (self-attention with a key
 * padding mask → dense → LayerNorm(x + ·); intermediate dense → exact-erf GELU → dense → LayerNorm(x + ·)), and the
 * pooler (dense + tanh on the [CLS] state). Dropout is the identity (inference semantics; LoRA dropout is the
 * adapter's). Linear weights are held in both layouts (see linear-ops.ts) and adapters plug in per linear layer.
 *
 * {@link bertEncoderForward} allocates freely: call it inside `tf.tidy` or a gradient function.
 */
import * as tf from '@tensorflow/tfjs';
import type { AdapterSite } from '../../adapters/bottleneck.js';
import { MASKED_LOGIT } from '../attention.js';
import { embeddingLookup } from '../embedding-lookup.js';
import type { FrozenMatrix } from '../linear-ops.js';
import { disposeFrozenMatrix, frozenMatrix } from '../linear-ops.js';
import type { ModelOps } from '../ops.js';
import type { BertConfig } from './bert-config.js';
import { bertHeadDim } from './bert-config.js';
import type { BertLoraTarget } from './bert-trainable.js';
import { BERT_LORA_TARGETS, BERT_MODULE_PATHS, bertLinearShape } from './bert-trainable.js';
import type { BertWeights } from './load-hf-bert.js';

/** An additive update `Δy` `[n, out]` to a frozen linear layer given its input `x` `[n, in]`, or `undefined`. */
export type BertLinearAdapter = (layer: number, target: BertLoraTarget, x: tf.Tensor2D) => tf.Tensor2D | undefined;

/** Maps a sub-layer output `y` `[n, hidden]` (attention or FFN output projection, before the residual) to its adapted value. */
export type BertSublayerAdapter = (layer: number, site: AdapterSite, y: tf.Tensor2D) => tf.Tensor2D;

/**
 * What trains inside the encoder besides LoRA: base tensors that replace the frozen ones (keyed by their
 * `BertForSequenceClassification` names, `bert.` + the `BertModel` name), and sub-layer adapters.
 */
export interface BertTrainableParts {
  readonly base?: ReadonlyMap<string, tf.Tensor>;
  readonly sublayer?: BertSublayerAdapter;
}

/** A LayerNorm's scale and shift. */
interface Norm {
  readonly gamma: tf.Tensor1D;
  readonly beta: tf.Tensor1D;
}

/** The frozen tensors of one encoder layer. */
interface BertLayer {
  readonly linears: Readonly<Record<BertLoraTarget, FrozenMatrix>>;
  readonly biases: Readonly<Record<BertLoraTarget, tf.Tensor1D>>;
  readonly attentionNorm: Norm;
  readonly outputNorm: Norm;
}

/** A BERT encoder resident on the current TF.js backend (weights as checked by the loader). Call {@link dispose}. */
export class FrozenBert {
  readonly config: BertConfig;
  private readonly wordEmbeddings: tf.Tensor2D;
  private readonly positionEmbeddings: tf.Tensor2D;
  private readonly tokenTypeEmbeddings: tf.Tensor2D;
  private readonly embeddingNorm: Norm;
  readonly layers: readonly BertLayer[];
  readonly pooler: FrozenMatrix;
  readonly poolerBias: tf.Tensor1D;

  /** Upload `weights` (every name of `expectedBertTensors(config)`, as `bertWeightsFromTensors` returns them). */
  constructor(config: BertConfig, weights: BertWeights) {
    this.config = config;
    const h = config.hiddenSize;
    const get = (name: string): Float32Array => weights.get(name) as Float32Array;
    const norm = (prefix: string): Norm => ({ gamma: tf.tensor1d(get(`${prefix}.weight`)), beta: tf.tensor1d(get(`${prefix}.bias`)) });
    this.wordEmbeddings = tf.tensor2d(get('embeddings.word_embeddings.weight'), [config.vocabSize, h]);
    this.positionEmbeddings = tf.tensor2d(get('embeddings.position_embeddings.weight'), [config.maxPositions, h]);
    this.tokenTypeEmbeddings = tf.tensor2d(get('embeddings.token_type_embeddings.weight'), [config.typeVocabSize, h]);
    this.embeddingNorm = norm('embeddings.LayerNorm');
    const layers: BertLayer[] = [];
    for (let i = 0; i < config.nLayers; i++) {
      const linears = {} as Record<BertLoraTarget, FrozenMatrix>;
      const biases = {} as Record<BertLoraTarget, tf.Tensor1D>;
      for (const target of BERT_LORA_TARGETS) {
        const [rows, cols] = bertLinearShape(config, target);
        const path = `encoder.layer.${i}.${BERT_MODULE_PATHS[target]}`;
        linears[target] = frozenMatrix(get(`${path}.weight`), rows, cols);
        biases[target] = tf.tensor1d(get(`${path}.bias`));
      }
      layers.push({
        linears,
        biases,
        attentionNorm: norm(`encoder.layer.${i}.attention.output.LayerNorm`),
        outputNorm: norm(`encoder.layer.${i}.output.LayerNorm`),
      });
    }
    this.layers = layers;
    this.pooler = frozenMatrix(get('pooler.dense.weight'), h, h);
    this.poolerBias = tf.tensor1d(get('pooler.dense.bias'));
  }

  /**
   * Embedding output `[batchSize * seqLen, hidden]`: word + absolute position + token type 0, then LayerNorm.
   * Frozen, so computed outside any gradient function (a gather inside the tape would need UnsortedSegmentSum).
   */
  embed(inputIds: Int32Array, batchSize: number, seqLen: number): tf.Tensor2D {
    return tf.tidy(() => {
      const h = this.config.hiddenSize;
      const words = tf.gather(this.wordEmbeddings, tf.tensor1d(inputIds, 'int32'));
      const positions = tf.tile(tf.slice(this.positionEmbeddings, [0, 0], [seqLen, h]), [batchSize, 1]);
      const tokenType = tf.slice(this.tokenTypeEmbeddings, [0, 0], [1, h]);
      return layerNorm(tf.add(tf.add(words, positions), tokenType) as tf.Tensor2D, this.embeddingNorm, this.config.layerNormEps);
    });
  }

  /**
   * {@link embed} with any embedding tensor present in `base` (by `bert.`-prefixed name) used in place of the
   * frozen one, differentiable in those: call inside a gradient function. The word lookup's gradient goes through
   * embedding-lookup.ts (wasm lacks UnsortedSegmentSum).
   */
  embedTrainable(inputIds: Int32Array, batchSize: number, seqLen: number, base: ReadonlyMap<string, tf.Tensor>): tf.Tensor2D {
    const h = this.config.hiddenSize;
    const pick = <T extends tf.Tensor>(name: string, frozen: T): T => (base.get(`bert.embeddings.${name}`) as T | undefined) ?? frozen;
    const table = pick('word_embeddings.weight', this.wordEmbeddings);
    const words = table === this.wordEmbeddings ? tf.gather(table, tf.tensor1d(inputIds, 'int32')) : embeddingLookup(table, inputIds);
    const positions = tf.slice(pick('position_embeddings.weight', this.positionEmbeddings), [0, 0], [seqLen, h]);
    const tokenType = tf.slice(pick('token_type_embeddings.weight', this.tokenTypeEmbeddings), [0, 0], [1, h]);
    const summed = tf.add(tf.add(tf.reshape(words, [batchSize, seqLen, h]), tf.expandDims(positions, 0)), tokenType);
    const norm: Norm = {
      gamma: pick('LayerNorm.weight', this.embeddingNorm.gamma),
      beta: pick('LayerNorm.bias', this.embeddingNorm.beta),
    };
    return layerNorm(tf.reshape(summed, [batchSize * seqLen, h]) as tf.Tensor2D, norm, this.config.layerNormEps);
  }

  /** The frozen word-embedding table `[vocab, hidden]` (the masked-LM decoder weight, tied). Owned by this encoder. */
  get wordEmbeddingTable(): tf.Tensor2D {
    return this.wordEmbeddings;
  }

  /** Word-embedding rows `[ids.length, hidden]` of `ids` (frozen: no gradient). */
  wordRows(inputIds: Int32Array): tf.Tensor2D {
    return tf.tidy(() => tf.gather(this.wordEmbeddings, tf.tensor1d(inputIds, 'int32')));
  }

  /**
   * Embedding output `[batchSize * (seqLen + P), hidden]` of right-padded sequences with `P` virtual tokens
   * (`prompt` `[P, hidden]`) inserted after [CLS], differentiable in `prompt` (see bert-methods.ts).
   * @param words {@link wordRows} of the batch, `[batchSize * seqLen, hidden]`.
   */
  embedPrompted(words: tf.Tensor2D, prompt: tf.Tensor2D, batchSize: number, seqLen: number): tf.Tensor2D {
    const h = this.config.hiddenSize;
    const p = prompt.shape[0];
    const total = seqLen + p;
    const w3 = tf.reshape(words, [batchSize, seqLen, h]);
    const cls = tf.slice(w3, [0, 0, 0], [batchSize, 1, h]);
    const rest = tf.slice(w3, [0, 1, 0], [batchSize, seqLen - 1, h]);
    // A broadcast add (not tile): its gradient sums over the batch with a plain reduction, on every backend.
    const virtual = tf.add(tf.zeros([batchSize, p, h]), tf.expandDims(prompt, 0));
    const all = tf.concat([cls, virtual, rest], 1);
    const positions = tf.slice(this.positionEmbeddings, [0, 0], [total, h]);
    const tokenType = tf.slice(this.tokenTypeEmbeddings, [0, 0], [1, h]);
    const summed = tf.add(tf.add(all, tf.expandDims(positions, 0)), tokenType);
    return layerNorm(tf.reshape(summed, [batchSize * total, h]) as tf.Tensor2D, this.embeddingNorm, this.config.layerNormEps);
  }

  /** Free every tensor. */
  dispose(): void {
    this.wordEmbeddings.dispose();
    this.positionEmbeddings.dispose();
    this.tokenTypeEmbeddings.dispose();
    disposeNorm(this.embeddingNorm);
    for (const layer of this.layers) {
      for (const m of Object.values(layer.linears)) disposeFrozenMatrix(m);
      for (const b of Object.values(layer.biases)) b.dispose();
      disposeNorm(layer.attentionNorm);
      disposeNorm(layer.outputNorm);
    }
    disposeFrozenMatrix(this.pooler);
    this.poolerBias.dispose();
  }
}

function disposeNorm(n: Norm): void {
  n.gamma.dispose();
  n.beta.dispose();
}

/** LayerNorm over the last axis: `(x − mean) / sqrt(var + eps) · gamma + beta` (biased variance, as PyTorch). */
export function layerNorm(x: tf.Tensor2D, norm: Norm, eps: number): tf.Tensor2D {
  const mean = tf.mean(x, -1, true);
  const centred = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centred), -1, true);
  return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, eps))), norm.gamma), norm.beta) as tf.Tensor2D;
}

/** HF's `"gelu"`: the exact form `x · Φ(x) = 0.5 · x · (1 + erf(x / √2))`. */
export function geluErf(x: tf.Tensor2D): tf.Tensor2D {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)) as tf.Tensor2D;
}

/**
 * Additive key-padding mask `[batchSize, seqLen, seqLen]`: every query may attend to every real key (BERT is
 * bidirectional), none to padding ({@link MASKED_LOGIT}).
 * @param attentionMask `[batchSize * seqLen]`, 1 for real tokens.
 */
export function bertAttentionMask(attentionMask: Int32Array, batchSize: number, seqLen: number): Float32Array {
  const out = new Float32Array(batchSize * seqLen * seqLen);
  for (let b = 0; b < batchSize; b++) {
    for (let j = 0; j < seqLen; j++) {
      if (attentionMask[b * seqLen + j] !== 0) continue;
      for (let t = 0; t < seqLen; t++) out[(b * seqLen + t) * seqLen + j] = MASKED_LOGIT;
    }
  }
  return out;
}

/** Per-batch constants of a forward pass. */
export interface BertInputs {
  readonly batchSize: number;
  readonly seqLen: number;
  /** {@link FrozenBert.embed} output `[batchSize * seqLen, hidden]`. */
  readonly embeddings: tf.Tensor2D;
  /** {@link bertAttentionMask} as `[batchSize, seqLen, seqLen]`. */
  readonly mask: tf.Tensor3D;
}

/**
 * Last hidden states `[batchSize * seqLen, hidden]`, row `b * seqLen + t` (HF's `last_hidden_state`).
 * @param adapter LoRA-style additive updates of the linear layers.
 * @param parts trainable base tensors and sub-layer adapters (see {@link BertTrainableParts}).
 */
export function bertEncoderForward(base: FrozenBert, inputs: BertInputs, ops: ModelOps, adapter?: BertLinearAdapter, parts: BertTrainableParts = {}): tf.Tensor2D {
  const { config } = base;
  const { batchSize, seqLen } = inputs;
  const headDim = bertHeadDim(config);
  const eps = config.layerNormEps;
  const trained = parts.base;
  const linear = (i: number, target: BertLoraTarget, x: tf.Tensor2D): tf.Tensor2D => {
    const layer = base.layers[i];
    const path = `bert.encoder.layer.${i}.${BERT_MODULE_PATHS[target]}`;
    const w = trained?.get(`${path}.weight`) as tf.Tensor2D | undefined;
    const b = (trained?.get(`${path}.bias`) as tf.Tensor1D | undefined) ?? layer.biases[target];
    const y = tf.add(w ? ops.trainableLinear(x, w) : ops.frozenLinear(x, layer.linears[target]), b) as tf.Tensor2D;
    const delta = adapter?.(i, target, x);
    return delta ? tf.add(y, delta) : y;
  };
  const normOf = (i: number, which: 'attention.output' | 'output', frozen: Norm): Norm => ({
    gamma: (trained?.get(`bert.encoder.layer.${i}.${which}.LayerNorm.weight`) as tf.Tensor1D | undefined) ?? frozen.gamma,
    beta: (trained?.get(`bert.encoder.layer.${i}.${which}.LayerNorm.bias`) as tf.Tensor1D | undefined) ?? frozen.beta,
  });
  const sublayer = (i: number, site: AdapterSite, y: tf.Tensor2D): tf.Tensor2D => (parts.sublayer ? parts.sublayer(i, site, y) : y);
  const toHeads = (x: tf.Tensor2D): tf.Tensor4D =>
    tf.transpose(tf.reshape(x, [batchSize, seqLen, config.nHeads, headDim]), [0, 2, 1, 3]);

  let h = inputs.embeddings;
  for (let i = 0; i < config.nLayers; i++) {
    const layer = base.layers[i];
    const attended = ops.attention(toHeads(linear(i, 'q', h)), toHeads(linear(i, 'k', h)), toHeads(linear(i, 'v', h)), inputs.mask, 1 / Math.sqrt(headDim));
    const merged = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [batchSize * seqLen, config.hiddenSize]) as tf.Tensor2D;
    const a = layerNorm(tf.add(sublayer(i, 'attn', linear(i, 'o', merged)), h) as tf.Tensor2D, normOf(i, 'attention.output', layer.attentionNorm), eps);
    const inner = geluErf(linear(i, 'up', a));
    h = layerNorm(tf.add(sublayer(i, 'mlp', linear(i, 'down', inner)), a) as tf.Tensor2D, normOf(i, 'output', layer.outputNorm), eps);
  }
  return h;
}

/**
 * The pooler output `[batchSize, hidden]`: `tanh(W · h[CLS] + b)`.
 * @param clsSelect frozen `[batchSize, batchSize * seqLen]` selection of each sequence's first row (see
 *   {@link clsSelection}): a product, because a gather's gradient needs UnsortedSegmentSum, which wasm lacks.
 */
export function bertPool(base: FrozenBert, hidden: tf.Tensor2D, clsSelect: FrozenMatrix, ops: ModelOps, trained?: ReadonlyMap<string, tf.Tensor>): tf.Tensor2D {
  const cls = ops.frozenLeftMatMul(clsSelect, hidden);
  const w = trained?.get('bert.pooler.dense.weight') as tf.Tensor2D | undefined;
  const b = (trained?.get('bert.pooler.dense.bias') as tf.Tensor1D | undefined) ?? base.poolerBias;
  return tf.tanh(tf.add(w ? ops.trainableLinear(cls, w) : ops.frozenLinear(cls, base.pooler), b)) as tf.Tensor2D;
}

/** `[batchSize, batchSize * seqLen]` row-major, 1 at (b, b·seqLen): picks position 0 ([CLS]) of every sequence. */
export function clsSelection(batchSize: number, seqLen: number): Float32Array {
  const m = new Float32Array(batchSize * batchSize * seqLen);
  for (let b = 0; b < batchSize; b++) m[b * batchSize * seqLen + b * seqLen] = 1;
  return m;
}
