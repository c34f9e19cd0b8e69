/**
 * A trainable BERT model: a sequence classifier (`BertForSequenceClassification`) for `task: classification`, or a
 * masked language model (`BertForMaskedLM`) for `task: causal-lm`, which on an encoder means masked-LM continued
 * pre-training. The encoder (and pooler) stay frozen except for what `peft.method` trains (LoRA on the chosen
 * linear layers, Houlsby adapters, virtual tokens after [CLS] for `prompt`, the top layers and pooler for `feature`,
 * everything for `full`); the head is a trainable classifier `[numLabels, hidden]` + bias on the pooled [CLS]
 * state, or the MLM head on the labelled positions (bert-mlm-head.ts says when it trains). Masked-LM batches come
 * masked (shared/data/mlm-masking.ts): `labels[b, t]` is the original token at a chosen position, -100 elsewhere.
 * Its public surface is the one workers use on `TaskModel` (manifest, spec, init/set/getTrainable, computeGradients,
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
import { promptedMask, statsOf, validateBertBatch } from './bert-batch.js';
import { bertMlmHeadManifest, isBertMlm, mlmRowSelection, type BertMlmHead } from './bert-mlm-head.js';
import { bertMlmLogits } from './bert-mlm-forward.js';
import { IGNORE_INDEX } from '../losses.js';

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
  /** Classification: the [CLS] selection; masked-LM: the selection of the scored positions (see `mlmRowSelection`). */
  readonly select: FrozenMatrix;
  /** One label per scored row: per sequence (classification) or per selected position (masked-LM). */
  readonly labels: Int32Array;
}

/** What {@link BertTaskModel.create} reads of a loaded checkpoint. */
export type BertCheckpoint = Pick<LoadedBert, 'config' | 'weights' | 'head'> & { readonly mlmHead?: BertMlmHead };

/** See the module comment. */
export class BertTaskModel {
  readonly config: BertConfig;
  readonly spec: ModelSpec;
  /** Trainable tensors: the method's (see `bertTrainableManifest`), then the classifier or the MLM head when it trains. */
  readonly manifest: TensorSpec[];
  private readonly base: FrozenBert;
  private readonly head: LoadedBert['head'];
  private readonly mlmHead: BertMlmHead | undefined;
  /** Masked-LM with a loaded head that does not train: its tensors, uploaded once. */
  private readonly frozenMlmHead = new Map<string, tf.Tensor>();
  private readonly baseWeights: BertWeights;
  private readonly ops: ModelOps;
  private readonly targets: ReadonlySet<BertLoraTarget>;
  private trainable = new Map<string, tf.Tensor>();
  private dropoutCounter = 0;

  private constructor(loaded: BertCheckpoint, spec: ModelSpec, options: BertTaskModelOptions) {
    this.config = loaded.config;
    this.spec = spec;
    this.head = loaded.head && loaded.head.bias.length === spec.numLabels ? loaded.head : undefined;
    this.mlmHead = isBertMlm(spec) ? loaded.mlmHead : undefined;
    this.baseWeights = loaded.weights;
    this.ops = opsFor(options.formulation ?? 'fast');
    this.targets = new Set(bertTargets(spec));
    this.manifest = bertTrainableManifest(this.config, spec, { hasMlmHead: this.mlmHead !== undefined });
    this.base = new FrozenBert(loaded.config, loaded.weights);
    for (const { name, shape } of bertMlmHeadManifest(this.config)) {
      const values = this.mlmHead?.get(name);
      if (values && !this.manifest.some((t) => t.name === name)) this.frozenMlmHead.set(name, tf.tensor(values, [...shape], 'float32'));
    }
    this.setTrainable(this.initTrainable(0));
  }

  /**
   * Upload a loaded checkpoint (see `loadHfBert`) and build the classifier or the MLM head, trainable tensors from
   * seed 0.
   * @throws ConfigError E_CONFIG_INVALID for a spec BERT cannot build (an unknown task, a `gate` target,
   *   `trainable_top_layers` beyond the layer count, ...) or a checkpoint classifier with another number of labels
   *   than `spec.numLabels` (classification).
   */
  static create(loaded: BertCheckpoint, spec: ModelSpec, options: BertTaskModelOptions = {}): BertTaskModel {
    validateBertSpec(spec, loaded.config);
    if (spec.task === 'classification' && loaded.head && loaded.head.bias.length !== spec.numLabels) {
      throw new ConfigError(
        ErrorCode.CONFIG_INVALID,
        `model.num_labels is ${spec.numLabels} but the checkpoint's classifier has ${loaded.head.bias.length} labels`,
      );
    }
    return new BertTaskModel(loaded, spec, options);
  }

  /** Fresh trainable values, deterministic in `seed`; the classifier (or MLM head) is the checkpoint's when it has one. */
  initTrainable(seed: number): NamedTensors {
    return initBertTrainableValues(this.config, this.spec, seed, this.head, this.baseWeights, this.mlmHead);
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
   * Logits of `batch` with the current parameters, row-major; `labels` are not read. Classification:
   * `[batchSize * numLabels]`; masked-LM: `[batchSize * seqLen * vocabSize]`, every position (padding included).
   * @throws ShapeError as {@link evaluate}.
   */
  logits(batch: Batch): Float32Array {
    const mlm = isBertMlm(this.spec);
    const labels = mlm ? new Int32Array(batch.batchSize * batch.seqLen).fill(IGNORE_INDEX) : new Int32Array(batch.batchSize);
    const consts = this.prepare({ ...batch, labels }, mlm);
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
   * BERT is an encoder (its masked-LM head fills in masked tokens; it does not continue a text).
   * @throws ConfigError E_CONFIG_INVALID always.
   */
  nextTokenLogits(_ids: readonly number[]): Float32Array {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, 'BERT models are encoders without a next-token head: generation is not supported');
  }

  /** Free the trainable tensors, the frozen MLM head and the base. */
  dispose(): void {
    for (const t of this.trainable.values()) t.dispose();
    this.trainable.clear();
    for (const t of this.frozenMlmHead.values()) t.dispose();
    this.frozenMlmHead.clear();
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
    if (isBertMlm(this.spec)) {
      const head = this.frozenMlmHead.size > 0 ? this.frozenMlmHead : params;
      const table = (params.get(WORD_EMBEDDINGS) as tf.Tensor2D | undefined) ?? this.base.wordEmbeddingTable;
      return bertMlmLogits(this.ops.frozenLeftMatMul(consts.select, hidden), head, table, this.ops, this.config.layerNormEps);
    }
    const pooled = bertPool(this.base, hidden, consts.select, this.ops, parts.base);
    const w = params.get(BERT_CLASSIFIER_WEIGHT) as tf.Tensor2D;
    return tf.add(this.ops.trainableLinear(pooled, w), params.get(BERT_CLASSIFIER_BIAS) as tf.Tensor1D) as tf.Tensor2D;
  }

  /**
   * Validate `batch` and build its constants.
   * @param allPositions masked-LM: score every position, not only the labelled ones ({@link logits}).
   */
  private prepare(batch: Batch, allPositions = false): BatchConstants {
    const mlm = isBertMlm(this.spec);
    validateBertBatch(batch, this.config, this.spec.task);
    const { batchSize, seqLen } = batch;
    const peft = this.spec.peft;
    const p = peft.method === 'prompt' ? peft.numVirtualTokens : 0;
    const rows = mlm ? mlmRowSelection(batch.labels, batchSize, seqLen, p, allPositions) : undefined;
    const labels = rows?.labels ?? batch.labels;
    // Everything that can throw runs before the first tensor is made.
    const targets = crossEntropyTargets(labels, mlm ? this.config.vocabSize : this.spec.numLabels, 'batch labels');
    const selectionOf = (total: number): FrozenMatrix =>
      rows ? frozenMatrix(rows.values, rows.rows, batchSize * total) : frozenMatrix(clsSelection(batchSize, total), batchSize, batchSize * total);
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
      const select = selectionOf(total);
      const promptWords = this.base.wordRows(batch.inputIds);
      return { batchSize, seqLen: total, batchSeqLen: seqLen, inputIds: batch.inputIds, promptWords, mask, targets, select, labels };
    }
    const embeddings = this.manifest.some((s) => s.name === WORD_EMBEDDINGS) ? undefined : this.base.embed(batch.inputIds, batchSize, seqLen);
    const mask = tf.tensor3d(bertAttentionMask(batch.attentionMask, batchSize, seqLen), [batchSize, seqLen, seqLen]);
    const select = selectionOf(seqLen);
    return { batchSize, seqLen, batchSeqLen: seqLen, inputIds: batch.inputIds, embeddings, mask, targets, select, labels };
  }
}

function disposeConstants(consts: BatchConstants): void {
  consts.embeddings?.dispose();
  consts.promptWords?.dispose();
  consts.mask.dispose();
  consts.targets.oneHot.dispose();
  consts.targets.valid.dispose();
  disposeFrozenMatrix(consts.select);
}
