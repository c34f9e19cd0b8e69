/**
 * A trainable BERT sequence classifier (`BertForSequenceClassification`): the encoder and pooler, frozen except for
 * what `peft.method` trains (LoRA on the chosen linear layers, Houlsby adapters, virtual tokens after [CLS] for
 * `prompt`, the top layers and pooler for `feature`, everything for `full`), and a trainable classifier `[numLabels, hidden]` + bias on the pooled [CLS]
 * state. Its
 * public surface is the one workers use on `TaskModel` (manifest, spec, init/set/getTrainable, computeGradients,
 * evaluate, dispose), so a run can train either.
 *
 * Tensors stay inside: parameters come in and gradients go out as {@link NamedTensors} in manifest order. The
 * TF.js backend must be selected before `create`.
 */
import * as tf from '@tensorflow/tfjs';
import { readTrainable, uploadTrainable } from '../trainable-tensors.js';
import { applyNonLinearity } from '../../adapters/bottleneck.js';
import { dropoutMask, loraScale, mixSeed } from '../../adapters/lora.js';
import { ConfigError, ErrorCode, ShapeError } from '../../errors.js';
import type { NamedTensors, TensorSpec } from '../../tensors.js';
import { sizeOf } from '../../tensors.js';
import type { FrozenMatrix } from '../linear-ops.js';
import { disposeFrozenMatrix, frozenMatrix } from '../linear-ops.js';
import type { CrossEntropyTargets } from '../losses.js';
import { crossEntropyRows, crossEntropyTargets } from '../losses.js';
import type { Formulation, ModelOps } from '../ops.js';
import { opsFor } from '../ops.js';
import type { Batch, BatchStats, ModelSpec } from '../types.js';
import type { BertConfig } from './bert-config.js';
import type { BertInputs, BertLinearAdapter, BertSublayerAdapter, BertTrainableParts } from './bert-encoder.js';
import { bertAttentionMask, bertEncoderForward, bertPool, clsSelection, FrozenBert } from './bert-encoder.js';
import type { BertLoraTarget } from './bert-trainable.js';
import {
  BERT_CLASSIFIER_BIAS,
  BERT_CLASSIFIER_WEIGHT,
  BERT_LORA_TARGETS,
  bertLoraDropout,
  bertLoraSpec,
  bertLoraTensorName,
  bertTargets,
  bertTrainableManifest,
  initBertTrainableValues,
  validateBertSpec,
} from './bert-trainable.js';
import { PROMPT_EMBEDDINGS } from '../../adapters/prompt-tuning.js';
import { bertAdapterTensorName } from './bert-methods.js';
import type { BertWeights, LoadedBert } from './load-hf-bert.js';

/** Name of the trainable word-embedding table (`full`). */
const WORD_EMBEDDINGS = 'bert.embeddings.word_embeddings.weight';

/** Options of {@link BertTaskModel.create}. */
export interface BertTaskModelOptions {
  /** How the products are written: `fast` for training, `naive` as a reference. @default 'fast' */
  readonly formulation?: Formulation;
}

interface BatchConstants {
  readonly batchSize: number;
  readonly seqLen: number;
  readonly inputIds: Int32Array;
  /** The frozen embedding output; absent when embeddings train (computed inside the gradient function). */
  readonly embeddings?: tf.Tensor2D;
  /** `prompt`: the batch's word rows `[batchSize * batch seqLen, hidden]`; `seqLen` then counts the virtual tokens. */
  readonly promptWords?: tf.Tensor2D;
  /** `prompt`: the batch's own sequence length (without the virtual tokens). */
  readonly batchSeqLen: number;
  readonly mask: tf.Tensor3D;
  readonly targets: CrossEntropyTargets;
  readonly cls: FrozenMatrix;
  readonly labels: Int32Array;
}

/** See the module comment. */
export class BertTaskModel {
  readonly config: BertConfig;
  readonly spec: ModelSpec;
  /** Trainable tensors: the method's (see `bertTrainableManifest`), then `classifier.weight`, `classifier.bias`. */
  readonly manifest: TensorSpec[];
  private readonly base: FrozenBert;
  private readonly head: LoadedBert['head'];
  private readonly baseWeights: BertWeights;
  private readonly ops: ModelOps;
  private readonly targets: ReadonlySet<BertLoraTarget>;
  private trainable = new Map<string, tf.Tensor>();
  private dropoutCounter = 0;

  private constructor(loaded: Pick<LoadedBert, 'config' | 'weights' | 'head'>, spec: ModelSpec, options: BertTaskModelOptions) {
    this.config = loaded.config;
    this.spec = spec;
    this.head = loaded.head && loaded.head.bias.length === spec.numLabels ? loaded.head : undefined;
    this.baseWeights = loaded.weights;
    this.ops = opsFor(options.formulation ?? 'fast');
    this.targets = new Set(bertTargets(spec));
    this.manifest = bertTrainableManifest(this.config, spec);
    this.base = new FrozenBert(loaded.config, loaded.weights);
    this.setTrainable(this.initTrainable(0));
  }

  /**
   * Upload a loaded checkpoint (see `loadHfBert`) and build the classifier, trainable tensors from seed 0.
   * @throws ConfigError E_CONFIG_INVALID for a spec BERT cannot build (not classification, `prompt`, a `gate`
   *   target, `trainable_top_layers` beyond the layer count, ...) or
   *   a checkpoint head with another number of labels than `spec.numLabels`.
   */
  static create(loaded: Pick<LoadedBert, 'config' | 'weights' | 'head'>, spec: ModelSpec, options: BertTaskModelOptions = {}): BertTaskModel {
    validateBertSpec(spec, loaded.config);
    if (loaded.head && loaded.head.bias.length !== spec.numLabels) {
      throw new ConfigError(
        ErrorCode.CONFIG_INVALID,
        `model.num_labels is ${spec.numLabels} but the checkpoint's classifier has ${loaded.head.bias.length} labels`,
      );
    }
    return new BertTaskModel(loaded, spec, options);
  }

  /** Fresh trainable values, deterministic in `seed`; the classifier is the checkpoint's when it has one. */
  initTrainable(seed: number): NamedTensors {
    return initBertTrainableValues(this.config, this.spec, seed, this.head, this.baseWeights);
  }

  /**
   * Exact-LoRA residuals (federated) are not implemented for BERT.
   * @throws ConfigError E_CONFIG_INVALID always.
   */
  setBaseResiduals(_residuals: ReadonlyMap<string, Float32Array>): void {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, 'exact LoRA aggregation (base residuals) is not supported for BERT models yet');
  }

  /**
   * Replace every trainable tensor (copied).
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
   * Loss statistics and the gradients of the SUM of per-sequence losses with respect to every manifest tensor
   * (the caller divides by the global count). Applies LoRA dropout when the spec asks for it.
   * @throws ShapeError E_TENSOR_SHAPE / E_TENSOR_RANGE for a batch that does not fit the model.
   */
  computeGradients(batch: Batch, opts: { readonly dropoutSeed?: number } = {}): { stats: BatchStats; grads: NamedTensors } {
    const seed = opts.dropoutSeed ?? this.dropoutCounter++;
    const consts = this.prepare(batch);
    const names = this.manifest.map((s) => s.name);
    let logitsKept: tf.Tensor | undefined;
    let rowKept: tf.Tensor | undefined;
    let result: { value: tf.Scalar; grads: tf.Tensor[] } | undefined;
    try {
      const f = (...xs: tf.Tensor[]): tf.Scalar => {
        const byName = new Map(names.map((n, i) => [n, xs[i]]));
        const logits = this.logitsOf(consts, byName, bertLoraDropout(this.spec) > 0 ? seed : undefined);
        const rows = crossEntropyRows(logits, consts.targets);
        logitsKept = tf.keep(logits);
        rowKept = tf.keep(rows);
        return tf.sum(rows);
      };
      result = tf.valueAndGrads(f)(names.map((n) => this.trainable.get(n) as tf.Tensor));
      const grads: NamedTensors = new Map();
      names.forEach((n, i) => {
        const g = (result as { grads: (tf.Tensor | undefined)[] }).grads[i];
        grads.set(n, g ? (g.dataSync() as Float32Array) : new Float32Array(sizeOf(this.manifest[i].shape)));
      });
      return { stats: statsOf(batch, consts.labels, rowKept as tf.Tensor, logitsKept as tf.Tensor), grads };
    } finally {
      logitsKept?.dispose();
      rowKept?.dispose();
      result?.value.dispose();
      result?.grads.forEach((g) => g?.dispose());
      disposeConstants(consts);
    }
  }

  /** Loss statistics of `batch` with the current parameters: no dropout, no gradients. */
  evaluate(batch: Batch): BatchStats {
    const consts = this.prepare(batch);
    try {
      const [logits, rows] = tf.tidy(() => {
        const l = this.logitsOf(consts, this.trainable, undefined);
        return [l, crossEntropyRows(l, consts.targets)];
      });
      try {
        return statsOf(batch, consts.labels, rows, logits);
      } finally {
        logits.dispose();
        rows.dispose();
      }
    } finally {
      disposeConstants(consts);
    }
  }

  /**
   * Classification logits `[batchSize * numLabels]` (row-major) of `batch` with the current parameters; `labels`
   * are not read.
   * @throws ShapeError as {@link evaluate}.
   */
  logits(batch: Batch): Float32Array {
    const consts = this.prepare({ ...batch, labels: new Int32Array(batch.batchSize) });
    try {
      const logits = tf.tidy(() => this.logitsOf(consts, this.trainable, undefined));
      const values = logits.dataSync() as Float32Array;
      logits.dispose();
      return values;
    } finally {
      disposeConstants(consts);
    }
  }

  /**
   * BERT has no language-model head here.
   * @throws ConfigError E_CONFIG_INVALID always.
   */
  nextTokenLogits(_ids: readonly number[]): Float32Array {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, 'BERT models have no language-model head: generation is not supported');
  }

  /** Free the trainable tensors and the base. */
  dispose(): void {
    for (const t of this.trainable.values()) t.dispose();
    this.trainable.clear();
    this.base.dispose();
  }

  private adapter(params: ReadonlyMap<string, tf.Tensor>, dropoutSeed: number | undefined): BertLinearAdapter | undefined {
    if (this.spec.peft.method !== 'lora') return undefined;
    const lora = bertLoraSpec(this.spec);
    const scale = loraScale(lora);
    const p = lora.loraDropout;
    return (layer, target, x) => {
      if (!this.targets.has(target)) return undefined;
      const a = params.get(bertLoraTensorName(layer, target, 'A')) as tf.Tensor2D;
      const b = params.get(bertLoraTensorName(layer, target, 'B')) as tf.Tensor2D;
      let input = x;
      if (dropoutSeed !== undefined) {
        const mask = dropoutMask(x.size, p, mixSeed(dropoutSeed, layer, BERT_LORA_TARGETS.indexOf(target)));
        input = tf.mul(x, tf.tensor2d(mask, x.shape));
      }
      return this.ops.loraDelta(input, a, b, scale);
    };
  }

  /** Houlsby adapters after the attention and FFN output projections (`adapter`), else none. */
  private sublayer(params: ReadonlyMap<string, tf.Tensor>): BertSublayerAdapter | undefined {
    const peft = this.spec.peft;
    if (peft.method !== 'adapter') return undefined;
    return (layer, site, y) => {
      const get = (part: 'down.weight' | 'down.bias' | 'up.weight' | 'up.bias'): tf.Tensor => params.get(bertAdapterTensorName(layer, site, part)) as tf.Tensor;
      const down = tf.add(this.ops.trainableLinear(y, get('down.weight') as tf.Tensor2D), get('down.bias')) as tf.Tensor2D;
      const up = tf.add(this.ops.trainableLinear(applyNonLinearity(down, peft.nonLinearity), get('up.weight') as tf.Tensor2D), get('up.bias'));
      return tf.add(y, up) as tf.Tensor2D;
    };
  }

  private logitsOf(consts: BatchConstants, params: ReadonlyMap<string, tf.Tensor>, dropoutSeed: number | undefined): tf.Tensor2D {
    const trainsBase = this.spec.peft.method === 'full' || this.spec.peft.method === 'feature';
    const parts: BertTrainableParts = { base: trainsBase ? params : undefined, sublayer: this.sublayer(params) };
    const { batchSize, seqLen } = consts;
    const embeddings =
      consts.embeddings ??
      (consts.promptWords
        ? this.base.embedPrompted(consts.promptWords, params.get(PROMPT_EMBEDDINGS) as tf.Tensor2D, batchSize, consts.batchSeqLen)
        : this.base.embedTrainable(consts.inputIds, batchSize, seqLen, params));
    const inputs: BertInputs = { batchSize, seqLen, embeddings, mask: consts.mask };
    const hidden = bertEncoderForward(this.base, inputs, this.ops, this.adapter(params, dropoutSeed), parts);
    const pooled = bertPool(this.base, hidden, consts.cls, this.ops, parts.base);
    const w = params.get(BERT_CLASSIFIER_WEIGHT) as tf.Tensor2D;
    return tf.add(this.ops.trainableLinear(pooled, w), params.get(BERT_CLASSIFIER_BIAS) as tf.Tensor1D) as tf.Tensor2D;
  }

  private prepare(batch: Batch): BatchConstants {
    validateBertBatch(batch, this.config);
    const { batchSize, seqLen } = batch;
    // Everything that can throw runs before the first tensor is made.
    const targets = crossEntropyTargets(batch.labels, this.spec.numLabels, 'batch labels');
    const peft = this.spec.peft;
    if (peft.method === 'prompt') {
      const total = seqLen + peft.numVirtualTokens;
      if (total > this.config.maxPositions) {
        throw new ShapeError(
          ErrorCode.TENSOR_SHAPE,
          `batch: seqLen ${seqLen} + ${peft.numVirtualTokens} virtual tokens exceeds the model's max_position_embeddings ${this.config.maxPositions}`,
        );
      }
      const extended = promptedMask(batch.attentionMask, batchSize, seqLen, peft.numVirtualTokens);
      const mask = tf.tensor3d(bertAttentionMask(extended, batchSize, total), [batchSize, total, total]);
      const cls = frozenMatrix(clsSelection(batchSize, total), batchSize, batchSize * total);
      const promptWords = this.base.wordRows(batch.inputIds);
      return { batchSize, seqLen: total, batchSeqLen: seqLen, inputIds: batch.inputIds, promptWords, mask, targets, cls, labels: batch.labels };
    }
    const embeddings = this.manifest.some((s) => s.name === WORD_EMBEDDINGS) ? undefined : this.base.embed(batch.inputIds, batchSize, seqLen);
    const mask = tf.tensor3d(bertAttentionMask(batch.attentionMask, batchSize, seqLen), [batchSize, seqLen, seqLen]);
    const cls = frozenMatrix(clsSelection(batchSize, seqLen), batchSize, batchSize * seqLen);
    return { batchSize, seqLen, batchSeqLen: seqLen, inputIds: batch.inputIds, embeddings, mask, targets, cls, labels: batch.labels };
  }
}

/**
 * Throw unless `batch` fits a BERT classifier: sizes, `seqLen` ≤ `max_position_embeddings`, ids in the vocabulary,
 * mask entries 0/1, one label per sequence, a real first token ([CLS]) in every sequence.
 * @throws ShapeError E_TENSOR_SHAPE for a size, E_TENSOR_RANGE for a value.
 */
export function validateBertBatch(batch: Batch, config: BertConfig): void {
  const { batchSize, seqLen } = batch;
  if (!Number.isInteger(batchSize) || batchSize <= 0 || !Number.isInteger(seqLen) || seqLen <= 0) {
    throw new ShapeError(ErrorCode.TENSOR_SHAPE, `batch: batchSize ${batchSize} and seqLen ${seqLen} must be positive integers`);
  }
  if (seqLen > config.maxPositions) {
    throw new ShapeError(ErrorCode.TENSOR_SHAPE, `batch: seqLen ${seqLen} exceeds the model's max_position_embeddings ${config.maxPositions}`);
  }
  const numel = batchSize * seqLen;
  if (batch.inputIds.length !== numel || batch.attentionMask.length !== numel || batch.labels.length !== batchSize) {
    throw new ShapeError(
      ErrorCode.TENSOR_SHAPE,
      `batch: inputIds (${batch.inputIds.length}) and attentionMask (${batch.attentionMask.length}) must hold ${numel} entries, labels (${batch.labels.length}) ${batchSize}`,
    );
  }
  for (let i = 0; i < numel; i++) {
    const id = batch.inputIds[i];
    if (!(id >= 0 && id < config.vocabSize)) {
      throw new ShapeError(ErrorCode.TENSOR_RANGE, `batch: inputIds[${i}] = ${id} is outside the vocabulary [0, ${config.vocabSize})`);
    }
    const m = batch.attentionMask[i];
    if (m !== 0 && m !== 1) throw new ShapeError(ErrorCode.TENSOR_RANGE, `batch: attentionMask[${i}] = ${m} is not 0 or 1`);
  }
  for (let b = 0; b < batchSize; b++) {
    if (batch.attentionMask[b * seqLen] !== 1) {
      throw new ShapeError(ErrorCode.TENSOR_RANGE, `batch: sequence ${b} does not start with a real token ([CLS]); BERT batches are right-padded`);
    }
  }
}

function statsOf(batch: Batch, labels: Int32Array, rowLoss: tf.Tensor, logits: tf.Tensor): BatchStats {
  const losses = rowLoss.dataSync();
  const values = logits.dataSync();
  const numClasses = values.length / labels.length;
  let lossSum = 0;
  let numLossItems = 0;
  let numCorrect = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] < 0) continue;
    lossSum += losses[i];
    numLossItems++;
    let best = 0;
    for (let c = 1; c < numClasses; c++) if (values[i * numClasses + c] > values[i * numClasses + best]) best = c;
    if (best === labels[i]) numCorrect++;
  }
  let numTokens = 0;
  for (const m of batch.attentionMask) numTokens += m;
  return { lossSum, numSamples: batch.batchSize, numLossItems, numTokens, numCorrect };
}

/** The attention mask `[batchSize * (seqLen + p)]` with `p` ones after each sequence's first ([CLS]) entry. */
function promptedMask(mask: Int32Array, batchSize: number, seqLen: number, p: number): Int32Array {
  const total = seqLen + p;
  const out = new Int32Array(batchSize * total);
  for (let b = 0; b < batchSize; b++) {
    out[b * total] = mask[b * seqLen];
    out.fill(1, b * total + 1, b * total + 1 + p);
    out.set(mask.subarray(b * seqLen + 1, (b + 1) * seqLen), b * total + 1 + p);
  }
  return out;
}

function disposeConstants(consts: BatchConstants): void {
  consts.embeddings?.dispose();
  consts.promptWords?.dispose();
  consts.mask.dispose();
  consts.targets.oneHot.dispose();
  consts.targets.valid.dispose();
  disposeFrozenMatrix(consts.cls);
}
