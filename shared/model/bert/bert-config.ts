/**
 * Hyper-parameters of a BERT-family encoder, read from a Hugging Face `config.json` (`model_type: "bert"`), and
 * the tensor names and shapes such a checkpoint must hold.
 */
import { ErrorCode, InputFileError } from '../../errors.js';

/** Hyper-parameters of a BERT encoder (Hugging Face `BertConfig` names in the comments). */
export interface BertConfig {
  /** `vocab_size`. */
  readonly vocabSize: number;
  /** `hidden_size`. */
  readonly hiddenSize: number;
  /** `num_hidden_layers`. */
  readonly nLayers: number;
  /** `num_attention_heads`. */
  readonly nHeads: number;
  /** `intermediate_size`: the feed-forward inner width. */
  readonly intermediateSize: number;
  /** `max_position_embeddings`: the longest sequence, in tokens. */
  readonly maxPositions: number;
  /** `type_vocab_size`: rows of the token-type (segment) table. */
  readonly typeVocabSize: number;
  /** `layer_norm_eps`. */
  readonly layerNormEps: number;
  /** `num_labels` (or the size of `id2label`): classes of a sequence-classification head. @default 2 */
  readonly numLabels: number;
  /** `pad_token_id`. @default 0 */
  readonly padTokenId: number;
}

/** `hidden_act` values this implementation computes: HF's `"gelu"` is the exact erf form. */
export const BERT_ACTIVATIONS = ['gelu'] as const;

/** BERT defaults for keys a `config.json` may omit (those of transformers' `BertConfig`). */
export const BERT_CONFIG_DEFAULTS = {
  maxPositions: 512,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
  numLabels: 2,
  padTokenId: 0,
} as const;

/**
 * Parse a `config.json` object into a {@link BertConfig}.
 * @param path the file, for error messages.
 * @throws InputFileError E_MODEL_FILE naming the file and key: not a BERT config, a missing or ill-typed key, an
 *   activation other than `gelu`, a width not divisible by the head count.
 */
export function parseBertConfig(raw: unknown, path: string): BertConfig {
  const fail = (what: string): never => {
    throw new InputFileError(ErrorCode.MODEL_FILE, `BERT config ${path}: ${what}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('is not a JSON object');
  const c = raw as Record<string, unknown>;
  if (c.model_type !== 'bert') fail(`model_type is ${JSON.stringify(c.model_type)}, expected "bert"`);
  const int = (key: string, fallback?: number, min = 1): number => {
    const v = Object.hasOwn(c, key) ? c[key] : fallback;
    if (v === undefined) return fail(`${key} is missing`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) return fail(`${key} = ${JSON.stringify(v)} is not an integer ≥ ${min}`);
    return v;
  };
  const act = c.hidden_act ?? 'gelu';
  if (!(BERT_ACTIVATIONS as readonly unknown[]).includes(act)) {
    fail(`hidden_act ${JSON.stringify(act)} is not supported (expected ${BERT_ACTIVATIONS.join(', ')})`);
  }
  const eps = c.layer_norm_eps ?? BERT_CONFIG_DEFAULTS.layerNormEps;
  if (typeof eps !== 'number' || !(eps > 0)) fail(`layer_norm_eps = ${JSON.stringify(eps)} is not a positive number`);
  const positionType = c.position_embedding_type ?? 'absolute';
  if (positionType !== 'absolute') fail(`position_embedding_type ${JSON.stringify(positionType)} is not supported (expected "absolute")`);
  let labelsFromMap: number | undefined;
  if (c.id2label !== undefined) {
    if (typeof c.id2label !== 'object' || c.id2label === null) fail('id2label is not an object');
    labelsFromMap = Object.keys(c.id2label as object).length;
  }
  const config: BertConfig = {
    vocabSize: int('vocab_size'),
    hiddenSize: int('hidden_size'),
    nLayers: int('num_hidden_layers'),
    nHeads: int('num_attention_heads'),
    intermediateSize: int('intermediate_size'),
    maxPositions: int('max_position_embeddings', BERT_CONFIG_DEFAULTS.maxPositions),
    typeVocabSize: int('type_vocab_size', BERT_CONFIG_DEFAULTS.typeVocabSize),
    layerNormEps: eps as number,
    numLabels: int('num_labels', labelsFromMap ?? BERT_CONFIG_DEFAULTS.numLabels),
    padTokenId: int('pad_token_id', BERT_CONFIG_DEFAULTS.padTokenId, 0),
  };
  if (config.hiddenSize % config.nHeads !== 0) {
    fail(`hidden_size ${config.hiddenSize} is not divisible by num_attention_heads ${config.nHeads}`);
  }
  return config;
}

/** Per-head width: `hiddenSize / nHeads`. */
export function bertHeadDim(config: BertConfig): number {
  return config.hiddenSize / config.nHeads;
}

/**
 * The base tensors of a BERT encoder, by their `BertModel` names (no `bert.` prefix), with PyTorch shapes. The
 * pooler is listed; a checkpoint may lack it (`BertForMaskedLM`), and the loader then makes one (load-hf-bert.ts).
 */
export function expectedBertTensors(config: BertConfig): Map<string, number[]> {
  const { vocabSize, hiddenSize: h, intermediateSize: f, maxPositions, typeVocabSize } = config;
  const out = new Map<string, number[]>();
  out.set('embeddings.word_embeddings.weight', [vocabSize, h]);
  out.set('embeddings.position_embeddings.weight', [maxPositions, h]);
  out.set('embeddings.token_type_embeddings.weight', [typeVocabSize, h]);
  out.set('embeddings.LayerNorm.weight', [h]);
  out.set('embeddings.LayerNorm.bias', [h]);
  for (let i = 0; i < config.nLayers; i++) {
    const p = `encoder.layer.${i}.`;
    for (const m of ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense']) {
      out.set(`${p}${m}.weight`, [h, h]);
      out.set(`${p}${m}.bias`, [h]);
    }
    out.set(`${p}attention.output.LayerNorm.weight`, [h]);
    out.set(`${p}attention.output.LayerNorm.bias`, [h]);
    out.set(`${p}intermediate.dense.weight`, [f, h]);
    out.set(`${p}intermediate.dense.bias`, [f]);
    out.set(`${p}output.dense.weight`, [h, f]);
    out.set(`${p}output.dense.bias`, [h]);
    out.set(`${p}output.LayerNorm.weight`, [h]);
    out.set(`${p}output.LayerNorm.bias`, [h]);
  }
  out.set('pooler.dense.weight', [h, h]);
  out.set('pooler.dense.bias', [h]);
  return out;
}

/** Whether `config` is a {@link BertConfig} (it has `hiddenSize` and `intermediateSize`; a LLaMA config has `dim`). */
export function isBertConfig(config: object): config is BertConfig {
  return 'hiddenSize' in config && 'intermediateSize' in config;
}
