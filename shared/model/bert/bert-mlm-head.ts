/**
 * The masked-language-model head of `BertForMaskedLM` (`cls.predictions`): `transform.dense` `[hidden, hidden]` +
 * bias → exact GELU → `transform.LayerNorm` → decoder tied to the word embeddings (`logits = x · Eᵀ`) + `bias`
 * `[vocab]`. A checkpoint that has these tensors gives them; one without (a `BertModel` or a sequence classifier)
 * gets them initialised from the run seed as Hugging Face initialises a missing head (dense ~ N(0, 0.02²), biases
 * 0, LayerNorm 1 and 0).
 *
 * Which of them train follows PEFT: under `lora`, `adapter` and `prompt` a loaded head stays frozen and a new one
 * trains (PEFT's `modules_to_save`); `feature` and `full` always train it. The decoder weight is the word-embedding
 * table, trained only by `full`. BERT's pooler plays no part in masked-LM, so it never trains here.
 * TF.js-free (the coordinator plans with it); the forward pass is bert-mlm-forward.ts.
 */
import { mulberry32, randomNormal } from '../../random.js';
import type { NamedTensors, TensorSpec } from '../../tensors.js';
import { IGNORE_INDEX } from '../../data/collate.js';
import type { ModelSpec } from '../types.js';
import type { BertConfig } from './bert-config.js';

/** The head's tensors by their `BertForMaskedLM` names. */
export const BERT_MLM_DENSE_WEIGHT = 'cls.predictions.transform.dense.weight';
export const BERT_MLM_DENSE_BIAS = 'cls.predictions.transform.dense.bias';
export const BERT_MLM_NORM_WEIGHT = 'cls.predictions.transform.LayerNorm.weight';
export const BERT_MLM_NORM_BIAS = 'cls.predictions.transform.LayerNorm.bias';
export const BERT_MLM_BIAS = 'cls.predictions.bias';

/** The module PEFT's `modules_to_save` names for a new head (the output bias is a bare parameter beside it). */
export const BERT_MLM_MODULE = 'cls.predictions.transform';

/** Standard deviation of a fresh dense weight (HF `initializer_range`). @default 0.02 */
export const BERT_MLM_INIT_STD = 0.02;

/** Stream mixed into the seed of a fresh head, apart from the adapters' draws. */
const MLM_HEAD_SEED_STREAM = 0x4d4c4d;

/** The head's values by name (see {@link bertMlmHeadManifest}). */
export type BertMlmHead = ReadonlyMap<string, Float32Array>;

/** Whether a BERT spec is masked-LM: `task: causal-lm` on an encoder means masked-language modelling. */
export function isBertMlm(spec: ModelSpec): boolean {
  return spec.task === 'causal-lm';
}

/** The head's tensors in canonical order, with PyTorch shapes. */
export function bertMlmHeadManifest(config: BertConfig): TensorSpec[] {
  const h = config.hiddenSize;
  return [
    { name: BERT_MLM_DENSE_WEIGHT, shape: [h, h] },
    { name: BERT_MLM_DENSE_BIAS, shape: [h] },
    { name: BERT_MLM_NORM_WEIGHT, shape: [h] },
    { name: BERT_MLM_NORM_BIAS, shape: [h] },
    { name: BERT_MLM_BIAS, shape: [config.vocabSize] },
  ];
}

/**
 * Whether the head trains under `spec` (see the module comment).
 * @param hasLoadedHead whether the checkpoint holds the head.
 */
export function bertMlmHeadTrains(spec: ModelSpec, hasLoadedHead: boolean): boolean {
  return spec.peft.method === 'full' || spec.peft.method === 'feature' || !hasLoadedHead;
}

/** A fresh head, deterministic in `seed`, as Hugging Face's `_init_weights` makes one. */
export function initBertMlmHead(config: BertConfig, seed: number): Map<string, Float32Array> {
  const rng = mulberry32((seed ^ MLM_HEAD_SEED_STREAM) >>> 0);
  const out = new Map<string, Float32Array>();
  for (const { name, shape } of bertMlmHeadManifest(config)) {
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name === BERT_MLM_DENSE_WEIGHT) for (let i = 0; i < values.length; i++) values[i] = BERT_MLM_INIT_STD * randomNormal(rng);
    else if (name === BERT_MLM_NORM_WEIGHT) values.fill(1);
    out.set(name, values);
  }
  return out;
}

/** The head's values for a trainable manifest: the checkpoint's when it has them, else fresh from `seed`. */
export function bertMlmHeadValues(config: BertConfig, seed: number, loaded: BertMlmHead | undefined): NamedTensors {
  return loaded ? new Map([...loaded].map(([n, v]) => [n, Float32Array.from(v)])) : initBertMlmHead(config, seed);
}

/**
 * The `[rows, batchSize * seqLen]` selection (row-major) of the positions whose `labels` bear loss, at least one
 * row (an all-ignored batch selects position 0 with an ignored target), and the selected labels. With `p` virtual
 * tokens after [CLS] (prompt tuning), position `t ≥ 1` of sequence `b` is hidden row `b·(seqLen+p) + t + p`.
 * @param all select every position (the logits of a whole batch), not only the labelled ones.
 */
export function mlmRowSelection(labels: Int32Array, batchSize: number, seqLen: number, p: number, all = false): { values: Float32Array; rows: number; labels: Int32Array } {
  const total = seqLen + p;
  const picked: number[] = [];
  for (let i = 0; i < batchSize * seqLen; i++) if (all || labels[i] >= 0) picked.push(i);
  const chosen = picked.length > 0 ? picked : [0];
  const values = new Float32Array(chosen.length * batchSize * total);
  const selected = new Int32Array(chosen.length);
  chosen.forEach((i, r) => {
    const b = Math.floor(i / seqLen);
    const t = i % seqLen;
    values[r * batchSize * total + b * total + (t === 0 ? 0 : t + p)] = 1;
    selected[r] = picked.length > 0 ? labels[i] : IGNORE_INDEX;
  });
  return { values, rows: chosen.length, labels: selected };
}
