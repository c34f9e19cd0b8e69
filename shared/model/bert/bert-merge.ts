/**
 * Folding a LoRA adapter into BERT weights (`W' = W + s · B·A`), and writing a BERT model back in Hugging Face
 * layout (`BertForSequenceClassification` keys with the `bert.` prefix), so a merged model loads anywhere.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loraScale } from '../../adapters/lora.js';
import { ErrorCode, ShapeError } from '../../errors.js';
import { writeSafetensors } from '../../formats/safetensors.js';
import type { NamedTensors } from '../../tensors.js';
import type { TextTokenizer } from '../../tokenizer/text-tokenizer.js';
import type { ModelSpec } from '../types.js';
import type { BertConfig } from './bert-config.js';
import { expectedBertTensors } from './bert-config.js';
import {
  BERT_CLASSIFIER_BIAS,
  BERT_CLASSIFIER_WEIGHT,
  BERT_MODULE_PATHS,
  bertLinearShape,
  bertLoraSpec,
  bertLoraTensorName,
  bertTargets,
} from './bert-trainable.js';
import type { BertWeights } from './load-hf-bert.js';
import { bertMlmHeadManifest, type BertMlmHead } from './bert-mlm-head.js';

/**
 * A copy of `weights` with every adapted linear replaced by `W + s · B·A` (float64 sums, float32 results); weights
 * that are not adapted are shared, not copied.
 * @throws ShapeError E_TENSOR_NAME / E_TENSOR_SHAPE when `trainable` lacks a LoRA factor or has the wrong size.
 */
export function mergeBertLora(config: BertConfig, weights: BertWeights, spec: ModelSpec, trainable: NamedTensors): BertWeights {
  const lora = bertLoraSpec(spec);
  const scale = loraScale(lora);
  const merged: BertWeights = new Map(weights);
  for (let layer = 0; layer < config.nLayers; layer++) {
    for (const target of bertTargets(spec)) {
      const [outFeatures, inFeatures] = bertLinearShape(config, target);
      const aName = bertLoraTensorName(layer, target, 'A');
      const bName = bertLoraTensorName(layer, target, 'B');
      const a = trainable.get(aName);
      const b = trainable.get(bName);
      if (!a || !b) throw new ShapeError(ErrorCode.TENSOR_NAME, `mergeBertLora: ${a ? bName : aName} is missing`);
      if (a.length !== lora.r * inFeatures || b.length !== outFeatures * lora.r) {
        throw new ShapeError(ErrorCode.TENSOR_SHAPE, `mergeBertLora: ${aName} / ${bName} do not match r = ${lora.r}`);
      }
      const name = `encoder.layer.${layer}.${BERT_MODULE_PATHS[target]}.weight`;
      const w = weights.get(name) as Float32Array;
      const out = new Float32Array(w.length);
      const row = new Float64Array(inFeatures);
      for (let o = 0; o < outFeatures; o++) {
        row.fill(0);
        for (let k = 0; k < lora.r; k++) {
          const bk = scale * b[o * lora.r + k];
          if (bk !== 0) for (let i = 0; i < inFeatures; i++) row[i] += bk * a[k * inFeatures + i];
        }
        for (let i = 0; i < inFeatures; i++) out[o * inFeatures + i] = w[o * inFeatures + i] + row[i];
      }
      merged.set(name, out);
    }
  }
  return merged;
}

/** What {@link writeHfBert} writes. */
export interface WritableBert {
  readonly config: BertConfig;
  readonly weights: BertWeights;
  /** The classification head; `undefined` writes a `BertModel` (or, with `mlmHead`, a `BertForMaskedLM`). */
  readonly head?: { readonly weight: Float32Array; readonly bias: Float32Array };
  /** The masked-LM head (`cls.predictions.*`, decoder tied and not written). */
  readonly mlmHead?: BertMlmHead;
  readonly tokenizer: TextTokenizer;
}

/**
 * The `config.json` object of a BERT model (transformers' `BertConfig` keys).
 * @param hasHead a classifier (`BertForSequenceClassification`); `mlm` a masked-LM head (`BertForMaskedLM`).
 */
export function bertConfigJson(config: BertConfig, hasHead: boolean, mlm = false): Record<string, unknown> {
  const id2label: Record<string, string> = {};
  for (let i = 0; i < config.numLabels; i++) id2label[String(i)] = `LABEL_${i}`;
  return {
    architectures: [hasHead ? 'BertForSequenceClassification' : mlm ? 'BertForMaskedLM' : 'BertModel'],
    model_type: 'bert',
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    num_hidden_layers: config.nLayers,
    num_attention_heads: config.nHeads,
    intermediate_size: config.intermediateSize,
    hidden_act: 'gelu',
    max_position_embeddings: config.maxPositions,
    type_vocab_size: config.typeVocabSize,
    layer_norm_eps: config.layerNormEps,
    pad_token_id: config.padTokenId,
    position_embedding_type: 'absolute',
    num_labels: config.numLabels,
    id2label,
    torch_dtype: 'float32',
  };
}

/**
 * Write `model` as a Hugging Face BERT directory: `config.json`, `model.safetensors` (F32, `bert.`-prefixed keys,
 * `classifier.*` when there is a head, `cls.predictions.*` when there is an MLM head, metadata `{"format":"pt"}`), `tokenizer.json`. Creates `dir`.
 * @throws ShapeError E_TENSOR_NAME when a base tensor is missing from `model.weights`.
 */
export async function writeHfBert(dir: string, model: WritableBert): Promise<void> {
  if (!existsSync(dir)) await mkdir(dir, { recursive: true });
  const tensors: { name: string; shape: number[]; data: Float32Array }[] = [];
  for (const [name, shape] of expectedBertTensors(model.config)) {
    const data = model.weights.get(name);
    if (!data) throw new ShapeError(ErrorCode.TENSOR_NAME, `writeHfBert: base tensor "${name}" is missing`);
    tensors.push({ name: `bert.${name}`, shape, data });
  }
  if (model.head) {
    const n = model.head.bias.length;
    tensors.push({ name: BERT_CLASSIFIER_WEIGHT, shape: [n, model.config.hiddenSize], data: model.head.weight });
    tensors.push({ name: BERT_CLASSIFIER_BIAS, shape: [n], data: model.head.bias });
  }
  for (const { name, shape } of model.mlmHead ? bertMlmHeadManifest(model.config) : []) {
    const data = model.mlmHead?.get(name);
    if (!data) throw new ShapeError(ErrorCode.TENSOR_NAME, `writeHfBert: MLM head tensor "${name}" is missing`);
    tensors.push({ name, shape: [...shape], data });
  }
  const config = model.head ? { ...model.config, numLabels: model.head.bias.length } : model.config;
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(bertConfigJson(config, model.head !== undefined, model.mlmHead !== undefined), null, 2)}\n`);
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(model.tokenizer.toJSON()));
}
