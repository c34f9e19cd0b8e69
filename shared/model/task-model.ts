/**
 * A trainable task model: the frozen LLaMA base, a PEFT method (LoRA, bottleneck adapters, prompt tuning,
 * feature-based or full fine-tuning: `spec.peft.method`), and a head (sequence classification or causal LM).
 * The only place that turns a {@link Batch} into a loss, gradients and statistics.
 *
 * Tensors stay inside: parameters come in and gradients go out as {@link NamedTensors} (plain float32 arrays) in
 * the order of {@link TaskModel.manifest}. The TF.js backend must be selected before `create` (worker/backend.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { readTrainable, uploadTrainable } from './trainable-tensors.js';
import { canonicalTargets, dropoutMask, loraScale, loraTensorName, mixSeed } from '../adapters/lora.js';
import { promptedBatch } from '../adapters/prompt-tuning.js';
import { ConfigError, ErrorCode, ShapeError } from '../errors.js';
import { SCORE_WEIGHT, initTrainableValues, trainableManifest, validateModelSpec } from './trainable.js';
import type { NamedTensors, TensorSpec } from '../tensors.js';
import { sizeOf } from '../tensors.js';
import { additiveAttentionMask } from './attention.js';
import { validateBatch } from './batch-validation.js';
import type { DecoderHooks, DecoderInputs, LinearAdapter } from './decoder.js';
import { decoderForward, embedTokens } from './decoder.js';
import { FrozenBase } from './frozen-base.js';
import type { FrozenMatrix } from './linear-ops.js';
import { disposeFrozenMatrix, frozenMatrix } from './linear-ops.js';
import { headDimOf } from './llama-config.js';
import type { CrossEntropyTargets } from './losses.js';
import { crossEntropyRows, crossEntropyTargets, IGNORE_INDEX, poolingMatrix } from './losses.js';
import type { Formulation, ModelOps } from './ops.js';
import { opsFor } from './ops.js';
import type { EmbeddingConstants } from './peft-hooks.js';
import { decoderHooksOf, inputEmbeddings, lmLogits } from './peft-hooks.js';
import { ropeTables } from './rope.js';
import type { BaseWeights, Batch, BatchStats, LlamaConfig, LoraTarget, ModelSpec } from './types.js';
import { LORA_TARGETS } from './types.js';

/** Options of {@link TaskModel.create}. */
export interface TaskModelOptions {
  /** How the products are written: `fast` for training, `naive` as a reference. @default 'fast' */
  readonly formulation?: Formulation;
}

/** Options of {@link TaskModel.computeGradients}. */
export interface GradientOptions {
  /**
   * Seed of the LoRA dropout masks of this call (one stream per layer and module). @default a per-model counter
   * 0, 1, 2, ... (deterministic for a fresh model, different on every call); ignored when `loraDropout` is 0.
   */
  readonly dropoutSeed?: number;
}

/** Per-batch constants, made outside the differentiated function because gradient functions read some of them. */
interface BatchConstants {
  readonly inputs: DecoderInputs;
  readonly embedding: EmbeddingConstants;
  readonly targets: CrossEntropyTargets;
  readonly pooling: FrozenMatrix | undefined;
  readonly labels: Int32Array;
}

/** A frozen base plus trainable adapter and head; see the module comment. */
export class TaskModel {
  readonly config: LlamaConfig;
  readonly spec: ModelSpec;
  /** Trainable tensors in canonical order: the method's tensors, then `score.weight` (see `trainableManifest`). */
  readonly manifest: TensorSpec[];
  private readonly base: FrozenBase;
  private readonly ownsBase: boolean;
  private readonly ops: ModelOps;
  private readonly targets: ReadonlySet<LoraTarget>;
  private readonly ropeCache = new Map<number, { cos: tf.Tensor4D; sinSigned: tf.Tensor4D }>();
  private trainable = new Map<string, tf.Tensor>();
  private dropoutCounter = 0;

  private constructor(base: FrozenBase, ownsBase: boolean, spec: ModelSpec, options: TaskModelOptions) {
    this.base = base;
    this.ownsBase = ownsBase;
    this.config = base.config;
    this.spec = spec;
    this.ops = opsFor(options.formulation ?? 'fast');
    this.targets = new Set(spec.peft.method === 'lora' ? canonicalTargets(spec.peft) : []);
    this.manifest = trainableManifest(this.config, spec, base);
    this.setTrainable(this.initTrainable(0));
  }

  /**
   * Upload `weights` and build the model, its trainable tensors initialised from seed 0 ({@link initTrainable}).
   * @throws ConfigError E_CONFIG_INVALID for an impossible config or spec.
   * @throws ShapeError E_TENSOR_NAME / E_TENSOR_SHAPE when `weights` do not match `config`.
   */
  static create(config: LlamaConfig, weights: BaseWeights, spec: ModelSpec, options: TaskModelOptions = {}): TaskModel {
    validateModelSpec(spec, config);
    return new TaskModel(FrozenBase.fromWeights(config, weights), true, spec, options);
  }

  /**
   * Build a model on a base that is already uploaded and shared (many virtual clients, one base): {@link dispose}
   * then leaves the base alone.
   * @throws ConfigError E_CONFIG_INVALID for an impossible spec.
   */
  static fromBase(base: FrozenBase, spec: ModelSpec, options: TaskModelOptions = {}): TaskModel {
    validateModelSpec(spec, base.config);
    return new TaskModel(base, false, spec, options);
  }

  /**
   * Fresh trainable values, deterministic in `seed` (see {@link initTrainableValues}); methods that start from base
   * weights (prompt, feature, full) read them back from the device.
   */
  initTrainable(seed: number): NamedTensors {
    const needsBase = this.spec.peft.method !== 'lora' && this.spec.peft.method !== 'adapter';
    return initTrainableValues(this.config, this.spec, seed, needsBase ? this.base.readWeights() : undefined);
  }

  /**
   * Fold exact-LoRA residuals into the frozen base (see `FrozenBase.setResiduals`); every model sharing the base
   * computes with them from now on.
   */
  setBaseResiduals(residuals: ReadonlyMap<string, Float32Array>): void {
    this.base.setResiduals(residuals);
  }

  /**
   * Replace every trainable tensor (copied: later changes to `values` do not reach the model).
   * @throws ShapeError E_TENSOR_NAME for a missing or unknown name, E_TENSOR_SHAPE for a wrong element count.
   */
  setTrainable(values: NamedTensors): void {
    const next = uploadTrainable(this.manifest, values);
    for (const t of this.trainable.values()) t.dispose();
    this.trainable = next;
  }

  /** The current trainable values, in manifest order. */
  getTrainable(): NamedTensors {
    return readTrainable(this.manifest, this.trainable);
  }

  /**
   * Loss statistics and the gradients of the SUM of the per-item losses (not the mean: the caller divides by the
   * global item count, so that results from several workers add up) with respect to every manifest tensor.
   * Applies LoRA dropout when a LoRA spec asks for it.
   * @throws ShapeError E_TENSOR_SHAPE / E_TENSOR_RANGE for a batch that does not fit the model.
   */
  computeGradients(batch: Batch, opts: GradientOptions = {}): { stats: BatchStats; grads: NamedTensors } {
    const seed = opts.dropoutSeed ?? this.dropoutCounter++;
    const consts = this.prepare(batch);
    const names = this.manifest.map((s) => s.name);
    let rowLoss: tf.Tensor | undefined;
    let predicted: tf.Tensor | undefined;
    let result: { value: tf.Scalar; grads: tf.Tensor[] } | undefined;
    try {
      const f = (...xs: tf.Tensor[]): tf.Scalar => {
        const byName = new Map(names.map((n, i) => [n, xs[i]]));
        const hasDropout = this.spec.peft.method === 'lora' && this.spec.peft.loraDropout > 0;
        const out = this.lossRows(consts, byName, hasDropout ? seed : undefined);
        rowLoss = tf.keep(out.rowLoss);
        predicted = tf.keep(out.predicted);
        return tf.sum(out.rowLoss);
      };
      result = tf.valueAndGrads(f)(names.map((n) => this.trainable.get(n) as tf.Tensor));
      const grads: NamedTensors = new Map();
      names.forEach((n, i) => {
        // A tensor the loss does not reach has no gradient entry: its gradient is zero.
        const g = (result as { grads: (tf.Tensor | undefined)[] }).grads[i];
        grads.set(n, g ? (g.dataSync() as Float32Array) : new Float32Array(sizeOf(this.manifest[i].shape)));
      });
      return { stats: this.stats(batch, consts, rowLoss as tf.Tensor, predicted as tf.Tensor), grads };
    } finally {
      rowLoss?.dispose();
      predicted?.dispose();
      result?.value.dispose();
      result?.grads.forEach((g) => g?.dispose());
      disposeConstants(consts);
    }
  }

  /** Loss statistics of `batch` with the current parameters: no dropout, no gradients. */
  evaluate(batch: Batch): BatchStats {
    const consts = this.prepare(batch);
    try {
      const [rowLoss, predicted] = tf.tidy(() => {
        const out = this.lossRows(consts, this.trainable, undefined);
        return [out.rowLoss, out.predicted];
      });
      try {
        return this.stats(batch, consts, rowLoss, predicted);
      } finally {
        rowLoss.dispose();
        predicted.dispose();
      }
    } finally {
      disposeConstants(consts);
    }
  }

  /**
   * Language-model logits `[vocabSize]` for the token after `ids` (through the tied output projection, adapters
   * applied, no dropout). Recomputes the whole prefix: there is no KV cache.
   * @throws ShapeError E_TENSOR_SHAPE for an empty prefix or one longer than the context, E_TENSOR_RANGE for a bad id.
   */
  nextTokenLogits(ids: readonly number[]): Float32Array {
    const seqLen = ids.length;
    if (seqLen === 0) throw new ShapeError(ErrorCode.TENSOR_SHAPE, 'nextTokenLogits: the prefix is empty (start it with BOS)');
    const batch: Batch = {
      batchSize: 1,
      seqLen,
      inputIds: Int32Array.from(ids),
      attentionMask: new Int32Array(seqLen).fill(1),
      labels: new Int32Array(seqLen).fill(IGNORE_INDEX),
    };
    // A causal-lm prepare: the pooling and class targets of a classifier are not needed here.
    const consts = this.prepare(batch, 'causal-lm');
    try {
      const logits = tf.tidy(() => {
        const hidden = this.hidden(consts, this.trainable, undefined);
        const last = tf.slice(hidden, [hidden.shape[0] - 1, 0], [1, this.config.dim]);
        return lmLogits(this.spec.peft, last, this.trainable, this.base, this.ops);
      });
      const values = logits.dataSync() as Float32Array;
      logits.dispose();
      return values;
    } finally {
      disposeConstants(consts);
    }
  }

  /** Free the trainable tensors, cached tables and (when this model uploaded it) the base. */
  dispose(): void {
    for (const t of this.trainable.values()) t.dispose();
    this.trainable.clear();
    for (const { cos, sinSigned } of this.ropeCache.values()) {
      cos.dispose();
      sinSigned.dispose();
    }
    this.ropeCache.clear();
    if (this.ownsBase) this.base.dispose();
  }

  private adapter(params: ReadonlyMap<string, tf.Tensor>, dropoutSeed: number | undefined): LinearAdapter {
    const peft = this.spec.peft;
    if (peft.method !== 'lora') return () => undefined;
    const scale = loraScale(peft);
    const p = peft.loraDropout;
    return (layer, target, x) => {
      if (!this.targets.has(target)) return undefined;
      const a = params.get(loraTensorName(layer, target, 'A')) as tf.Tensor2D;
      const b = params.get(loraTensorName(layer, target, 'B')) as tf.Tensor2D;
      let input = x;
      if (dropoutSeed !== undefined) {
        const mask = dropoutMask(x.size, p, mixSeed(dropoutSeed, layer, LORA_TARGETS.indexOf(target)));
        input = tf.mul(x, tf.tensor2d(mask, x.shape));
      }
      return this.ops.loraDelta(input, a, b, scale);
    };
  }

  /** Hidden states after the final norm `[n, dim]`, with the method's embeddings, hooks and (LoRA) adapter. */
  private hidden(consts: BatchConstants, params: ReadonlyMap<string, tf.Tensor>, dropoutSeed: number | undefined): tf.Tensor2D {
    const peft = this.spec.peft;
    const inputs: DecoderInputs = { ...consts.inputs, embeddings: inputEmbeddings(peft, consts.embedding, params, this.ops) };
    const hooks: DecoderHooks = decoderHooksOf(peft, params, this.ops);
    const adapter = peft.method === 'lora' ? this.adapter(params, dropoutSeed) : undefined;
    return decoderForward(this.base, inputs, this.ops, adapter, hooks);
  }

  /** Per-row losses and argmax predictions (rows: sequences for classification, tokens for causal-lm). */
  private lossRows(
    consts: BatchConstants,
    params: ReadonlyMap<string, tf.Tensor>,
    dropoutSeed: number | undefined,
  ): { rowLoss: tf.Tensor1D; predicted: tf.Tensor1D } {
    const hidden = this.hidden(consts, params, dropoutSeed);
    let logits: tf.Tensor2D;
    if (this.spec.task === 'classification') {
      const pooled = this.ops.frozenLeftMatMul(consts.pooling as FrozenMatrix, hidden);
      logits = this.ops.trainableLinear(pooled, params.get(SCORE_WEIGHT) as tf.Tensor2D);
    } else {
      logits = lmLogits(this.spec.peft, hidden, params, this.base, this.ops);
    }
    return { rowLoss: crossEntropyRows(logits, consts.targets), predicted: tf.argMax(logits, 1) as tf.Tensor1D };
  }

  private stats(batch: Batch, consts: BatchConstants, rowLoss: tf.Tensor, predicted: tf.Tensor): BatchStats {
    const losses = rowLoss.dataSync();
    const preds = predicted.dataSync();
    let lossSum = 0;
    let numLossItems = 0;
    let numCorrect = 0;
    for (let i = 0; i < consts.labels.length; i++) {
      if (consts.labels[i] === IGNORE_INDEX) continue;
      lossSum += losses[i];
      numLossItems++;
      if (preds[i] === consts.labels[i]) numCorrect++;
    }
    let numTokens = 0;
    for (const m of batch.attentionMask) numTokens += m;
    return { lossSum, numSamples: batch.batchSize, numLossItems, numTokens, numCorrect };
  }

  /**
   * Validate `batch` and build its constants; prompt tuning first makes room for the virtual tokens.
   * @param task the head to prepare for (the model's own by default).
   */
  private prepare(batch: Batch, task = this.spec.task): BatchConstants {
    validateBatch(batch, this.config, task);
    const isClassification = task === 'classification';
    const peft = this.spec.peft;
    const prompted = peft.method === 'prompt' ? promptedBatch(batch, peft.numVirtualTokens, !isClassification) : undefined;
    const full = prompted?.batch ?? batch;
    // The longer sequence must still fit the context.
    if (prompted) validateBatch(full, this.config, task);
    const numClasses = isClassification ? this.spec.numLabels : this.config.vocabSize;
    // Everything that can throw runs before the first tensor is made.
    const poolMask = prompted?.realMask ?? full.attentionMask;
    const poolingValues = isClassification ? poolingMatrix(poolMask, full.batchSize, full.seqLen, this.spec.pooling) : undefined;
    const targets = crossEntropyTargets(full.labels, numClasses, 'batch labels');
    const inputs = this.decoderInputs(full);
    const pooling = poolingValues ? frozenMatrix(poolingValues, full.batchSize, full.batchSize * full.seqLen) : undefined;
    let prompt: EmbeddingConstants['prompt'];
    if (prompted && peft.method === 'prompt') {
      const n = full.batchSize * full.seqLen;
      const realRows = new Float32Array(n);
      for (let b = 0; b < full.batchSize; b++) for (let t = peft.numVirtualTokens; t < full.seqLen; t++) realRows[b * full.seqLen + t] = 1;
      prompt = { selection: frozenMatrix(prompted.promptSelection, n, peft.numVirtualTokens), realRows: tf.tensor2d(realRows, [n, 1]) };
    }
    const embedding: EmbeddingConstants = { inputIds: full.inputIds, frozenRows: inputs.embeddings, prompt };
    return { inputs, embedding, targets, pooling, labels: full.labels };
  }

  private decoderInputs(batch: Batch): DecoderInputs {
    const { batchSize, seqLen } = batch;
    let rope = this.ropeCache.get(seqLen);
    if (!rope) {
      const headDim = headDimOf(this.config);
      const tables = ropeTables(seqLen, headDim, this.config.ropeTheta);
      // Kept: a cache entry must survive any tf.tidy the caller runs us in.
      rope = {
        cos: tf.keep(tf.tensor4d(tables.cos, [1, seqLen, 1, headDim])),
        sinSigned: tf.keep(tf.tensor4d(tables.sinSigned, [1, seqLen, 1, headDim])),
      };
      this.ropeCache.set(seqLen, rope);
    }
    return {
      batchSize,
      seqLen,
      embeddings: embedTokens(this.base, batch.inputIds),
      mask: tf.tensor3d(additiveAttentionMask(batch.attentionMask, batchSize, seqLen), [batchSize, seqLen, seqLen]),
      ropeCos: rope.cos,
      ropeSinSigned: rope.sinSigned,
    };
  }
}

function disposeConstants(consts: BatchConstants): void {
  consts.inputs.embeddings.dispose();
  consts.inputs.mask.dispose();
  consts.targets.oneHot.dispose();
  consts.targets.valid.dispose();
  if (consts.pooling) disposeFrozenMatrix(consts.pooling);
  if (consts.embedding.prompt) {
    disposeFrozenMatrix(consts.embedding.prompt.selection);
    consts.embedding.prompt.realRows.dispose();
  }
}
