/**
 * The tensors BERT trains for the methods other than LoRA, without TF.js: names, shapes, canonical order.
 *
 * - `full`: every base tensor of the encoder (embeddings included), in `expectedBertTensors` order (embeddings,
 *   layers ascending, pooler), named as in `BertForSequenceClassification` (`bert.` + the `BertModel` name).
 * - `feature`: the top `trainableTopLayers` encoder layers and, when that is ≥ 1, the pooler; with 0 only the
 *   classifier trains (the encoder is a frozen feature extractor).
 * - `adapter`: Houlsby bottleneck adapters in every layer, after the attention output projection
 *   (`attention.output.dense`) and after the FFN output projection (`output.dense`), each before its residual
 *   addition and LayerNorm: `y + act(y·Dᵀ + b_D)·Uᵀ + b_U`, `D` `[adapterSize, hidden]`, `U` `[hidden, adapterSize]`.
 *   Names `bert.encoder.layer.{i}.attn_adapter.{down,up}.{weight,bias}` and `...mlp_adapter...` (AdapterHub has
 *   no Hugging Face module path for them). `D` ~ U(−1/√hidden, 1/√hidden), `U` and biases 0.
 * - `prompt`: `prompt_embeddings` `[numVirtualTokens, hidden]` (PEFT's key), inserted AFTER [CLS]: the encoder sees
 *   `[CLS] p₁ … p_P tok₁ …`, so that the pooler still reads [CLS] at position 0 (PEFT puts them before [CLS] and
 *   pools the first virtual token instead). The virtual tokens replace word embeddings (position embeddings
 *   1 … P, token type 0 and the embedding LayerNorm still apply), real tokens move to positions P+1 …, and the
 *   attention mask counts the virtual tokens as real. Initialisation: PEFT's SAMPLE_VOCAB (the word embedding of
 *   a seeded uniform vocabulary draw per virtual token).
 * The classifier (`classifier.weight`, `classifier.bias`) always follows, or for masked-LM the MLM head when it
 * trains (bert-mlm-head.ts; the pooler is then left out of `full` and `feature`); bert-trainable.ts adds it.
 */
import type { AdapterPart, AdapterSite } from '../../adapters/bottleneck.js';
import type { TensorSpec } from '../../tensors.js';
import { PROMPT_EMBEDDINGS } from '../../adapters/prompt-tuning.js';
import type { BottleneckSpec, FeatureSpec, FullSpec, PromptTuningSpec } from '../types.js';
import type { BertConfig } from './bert-config.js';
import { expectedBertTensors } from './bert-config.js';

/** Prefix of base tensors in a `BertForSequenceClassification` checkpoint. */
export const BERT_BASE_PREFIX = 'bert.';

const ADAPTER_PARTS: readonly AdapterPart[] = ['down.weight', 'down.bias', 'up.weight', 'up.bias'];

/** Name of one adapter tensor, e.g. `bert.encoder.layer.1.mlp_adapter.up.weight`. */
export function bertAdapterTensorName(layer: number, site: AdapterSite, part: AdapterPart): string {
  return `bert.encoder.layer.${layer}.${site}_adapter.${part}`;
}

/** Whether a `BertModel` tensor name (no `bert.` prefix) is trained by a `full` or `feature` spec. */
function trainsBaseTensor(config: BertConfig, spec: FullSpec | FeatureSpec, name: string, withPooler: boolean): boolean {
  if (name.startsWith('pooler.') && !withPooler) return false;
  if (spec.method === 'full') return true;
  const k = spec.trainableTopLayers;
  if (k === 0) return false;
  if (name.startsWith('pooler.')) return true;
  const m = /^encoder\.layer\.(\d+)\./.exec(name);
  return m !== null && Number(m[1]) >= config.nLayers - k;
}

/**
 * Base tensors a `full` or `feature` spec trains, in canonical order, with their `bert.`-prefixed names.
 * @param withPooler whether the pooler can train (classification); masked-LM does not use it. @default true
 */
export function bertBaseTuningManifest(config: BertConfig, spec: FullSpec | FeatureSpec, withPooler = true): TensorSpec[] {
  const out: TensorSpec[] = [];
  for (const [name, shape] of expectedBertTensors(config)) {
    if (trainsBaseTensor(config, spec, name, withPooler)) out.push({ name: BERT_BASE_PREFIX + name, shape });
  }
  return out;
}

/** Adapter tensors in canonical order: layers ascending, attn before mlp, then down.weight, down.bias, up.weight, up.bias. */
export function bertAdapterManifest(config: BertConfig, spec: BottleneckSpec): TensorSpec[] {
  const h = config.hiddenSize;
  const a = spec.adapterSize;
  const shapes: Record<AdapterPart, number[]> = { 'down.weight': [a, h], 'down.bias': [a], 'up.weight': [h, a], 'up.bias': [h] };
  const out: TensorSpec[] = [];
  for (let layer = 0; layer < config.nLayers; layer++) {
    for (const site of ['attn', 'mlp'] as const) {
      for (const part of ADAPTER_PARTS) out.push({ name: bertAdapterTensorName(layer, site, part), shape: shapes[part] });
    }
  }
  return out;
}

/** The prompt's one tensor: `prompt_embeddings` `[numVirtualTokens, hidden]`. */
export function bertPromptManifest(config: BertConfig, spec: PromptTuningSpec): TensorSpec[] {
  return [{ name: PROMPT_EMBEDDINGS, shape: [spec.numVirtualTokens, config.hiddenSize] }];
}
