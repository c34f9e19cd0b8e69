/**
 * Loads a BERT-family model (`BertModel`, `BertForSequenceClassification` or `BertForMaskedLM`) from a local Hugging
 * Face directory: `config.json`, `model.safetensors` or the shards of `model.safetensors.index.json` (F32, F16 or
 * BF16; keys with or without the `bert.` prefix; `classifier.*` and the MLM head `cls.predictions.*` when present) and `tokenizer.json` (+ `tokenizer_config.json` when present), a WordPiece tokenizer run by
 * `@huggingface/tokenizers`.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, InputFileError, ShapeError } from '../../errors.js';
import { readHfWeightsDir } from '../../formats/hf-safetensors-dir.js';
import { tokenizerFromJson, type TextTokenizer } from '../../tokenizer/text-tokenizer.js';
import type { BertConfig } from './bert-config.js';
import { expectedBertTensors, parseBertConfig } from './bert-config.js';
import { BERT_CLASSIFIER_BIAS, BERT_CLASSIFIER_INIT_STD, BERT_CLASSIFIER_WEIGHT } from './bert-trainable.js';
import { mulberry32, randomNormal } from '../../random.js';
import { bertMlmHeadManifest, type BertMlmHead } from './bert-mlm-head.js';

/** Frozen BERT weights by `BertModel` name (`embeddings.word_embeddings.weight`, ...), PyTorch order. */
export type BertWeights = Map<string, Float32Array>;

/** A BERT model ready to build. */
export interface LoadedBert {
  readonly config: BertConfig;
  /** Base weights, every name of `expectedBertTensors` (no `bert.` prefix). */
  readonly weights: BertWeights;
  /** The checkpoint's classification head, when it has one (`BertForSequenceClassification`). */
  readonly head: { readonly weight: Float32Array; readonly bias: Float32Array } | undefined;
  /** The checkpoint's masked-LM head (`BertForMaskedLM`'s `cls.predictions.*`, decoder tied), when it has one. */
  readonly mlmHead: BertMlmHead | undefined;
  /** `[CLS]` as BOS, `[SEP]` as EOS, `[PAD]` as padding. */
  readonly tokenizer: TextTokenizer;
  /** Id of `[MASK]`, when the vocabulary has it (masked-LM needs it). */
  readonly maskTokenId: number | undefined;
  /** Every special token's id ([CLS], [SEP], [PAD], [UNK], [MASK], other added special tokens): never masked. */
  readonly specialTokenIds: readonly number[];
  /**
   * Identifies the directory, as `loadHfModel` does: sha256 of the `sha256sum` lines of config.json, every weights
   * file, tokenizer.json and tokenizer_config.json.
   */
  readonly sha256: string;
  /** The directory. */
  readonly path: string;
}

/** The special tokens of a BERT vocabulary. */
export const BERT_SPECIAL_TOKENS = { cls: '[CLS]', sep: '[SEP]', pad: '[PAD]', unk: '[UNK]', mask: '[MASK]' } as const;

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `${what} ${path}: cannot read (${(err as Error).message})`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `${what} ${path}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
}

/**
 * Whether `path` is a directory whose `config.json` says `"model_type": "bert"` (the model-family dispatch: other
 * Hugging Face directories go to the LLaMA loader). Unreadable or invalid files count as "no".
 */
export function isHfBertDir(path: string): boolean {
  try {
    const raw = JSON.parse(readFileSync(join(path, 'config.json'), 'utf8')) as { model_type?: unknown } | null;
    return raw?.model_type === 'bert';
  } catch {
    return false;
  }
}

async function fileDigest(path: string): Promise<string | undefined> {
  if (!existsSync(path)) return undefined;
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** Old TF-converted checkpoints name LayerNorm parameters gamma/beta; transformers renames them on load. */
function canonicalBertName(raw: string): string {
  const name = raw.startsWith('bert.') ? raw.slice('bert.'.length) : raw;
  return name.replace(/LayerNorm\.gamma$/, 'LayerNorm.weight').replace(/LayerNorm\.beta$/, 'LayerNorm.bias');
}

/** Seed of the pooler made for a checkpoint without one (fixed: the loader knows no run seed). */
const MISSING_POOLER_SEED = 0x9001;

/** A missing pooler tensor as `_init_weights` makes it: weight ~ N(0, 0.02²), bias 0. */
function freshPooler(name: string, shape: readonly number[]): Float32Array {
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  if (name.endsWith('.weight')) {
    const rng = mulberry32(MISSING_POOLER_SEED);
    for (let i = 0; i < values.length; i++) values[i] = BERT_CLASSIFIER_INIT_STD * randomNormal(rng);
  }
  return values;
}

/**
 * Select and check the tensors of a BERT checkpoint. A checkpoint without pooler (`BertForMaskedLM`) gets a fresh
 * one (see `freshPooler`).
 * @param tensors `(name, shape, data)` as read from the file.
 * @throws ShapeError E_TENSOR_NAME for a missing tensor, E_TENSOR_SHAPE for a wrong shape (both naming the file and
 *   the tensor).
 */
export function bertWeightsFromTensors(
  config: BertConfig,
  tensors: Iterable<{ name: string; shape: readonly number[]; data: Float32Array; file?: string }>,
  path: string,
): { weights: BertWeights; head: LoadedBert['head']; mlmHead: BertMlmHead | undefined } {
  const byName = new Map<string, { shape: readonly number[]; data: Float32Array; fileName: string; file: string }>();
  for (const t of tensors) byName.set(canonicalBertName(t.name), { shape: t.shape, data: t.data, fileName: t.name, file: t.file ?? path });
  const take = (name: string, shape: readonly number[]): Float32Array => {
    const t = byName.get(name);
    if (!t) throw new ShapeError(ErrorCode.TENSOR_NAME, `BERT weights ${path}: tensor "${name}" (or "bert.${name}") is missing`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ShapeError(ErrorCode.TENSOR_SHAPE, `BERT weights ${t.file}: tensor "${t.fileName}" has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
    return t.data;
  };
  const weights: BertWeights = new Map();
  const hasPooler = byName.has('pooler.dense.weight') || byName.has('pooler.dense.bias');
  for (const [name, shape] of expectedBertTensors(config)) {
    // BertForMaskedLM has no pooler: one is made as Hugging Face makes a missing one (masked-LM never reads it).
    weights.set(name, !hasPooler && name.startsWith('pooler.') ? freshPooler(name, shape) : take(name, shape));
  }
  let head: LoadedBert['head'];
  if (byName.has(BERT_CLASSIFIER_WEIGHT) || byName.has(BERT_CLASSIFIER_BIAS)) {
    const numLabels = byName.get(BERT_CLASSIFIER_WEIGHT)?.shape[0] ?? config.numLabels;
    head = {
      weight: take(BERT_CLASSIFIER_WEIGHT, [numLabels, config.hiddenSize]),
      bias: take(BERT_CLASSIFIER_BIAS, [numLabels]),
    };
  }
  // The decoder weight, when saved, is the word-embedding table (tied): only the transform and the bias are read.
  const mlmSpecs = bertMlmHeadManifest(config);
  let mlmHead: BertMlmHead | undefined;
  if (mlmSpecs.some((s) => byName.has(s.name))) mlmHead = new Map(mlmSpecs.map((s) => [s.name, take(s.name, s.shape)]));
  return { weights, head, mlmHead };
}

/**
 * Build a BERT tokenizer from `tokenizer.json` (a WordPiece model; `[CLS]`, `[SEP]`, `[PAD]` in its vocabulary);
 * `classificationEos` makes classification data `[CLS] text [SEP]`.
 * @throws InputFileError E_MODEL_FILE naming the file and the missing token, or when `@huggingface/tokenizers` rejects it.
 */
export function bertTokenizerFromJson(json: unknown, tokenizerConfig: Record<string, unknown>, path: string): TextTokenizer & { readonly classificationEos: true } {
  if (typeof json !== 'object' || json === null) throw new InputFileError(ErrorCode.MODEL_FILE, `tokenizer ${path}: not a JSON object`);
  const model = (json as { model?: { type?: unknown; vocab?: unknown } }).model;
  if (!model || typeof model.vocab !== 'object' || model.vocab === null || Array.isArray(model.vocab)) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `tokenizer ${path}: model.vocab is missing (expected a WordPiece vocabulary)`);
  }
  const vocab = model.vocab as Record<string, number>;
  const id = (token: string): number => {
    const v = vocab[token];
    if (!Number.isInteger(v)) throw new InputFileError(ErrorCode.MODEL_FILE, `tokenizer ${path}: the vocabulary has no ${token} token`);
    return v;
  };
  const ids = { bosId: id(BERT_SPECIAL_TOKENS.cls), eosId: id(BERT_SPECIAL_TOKENS.sep), padId: id(BERT_SPECIAL_TOKENS.pad) };
  let vocabSize = 0;
  for (const v of Object.values(vocab)) vocabSize = Math.max(vocabSize, v + 1);
  for (const added of ((json as { added_tokens?: { id: number }[] }).added_tokens ?? [])) vocabSize = Math.max(vocabSize, added.id + 1);
  try {
    // classificationEos: classification items are framed `[CLS] text [SEP]` (shared/data/tokenize.ts).
    return { ...tokenizerFromJson(json, tokenizerConfig, { vocabSize, ...ids }), classificationEos: true };
  } catch (err) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `tokenizer ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** `[MASK]`'s id and every special token's id, from a `tokenizer.json` already checked by {@link bertTokenizerFromJson}. */
export function bertSpecialIds(json: unknown): { maskTokenId: number | undefined; specialTokenIds: number[] } {
  const j = json as { model: { vocab: Record<string, number> }; added_tokens?: { id: number; content?: string; special?: boolean }[] };
  const ids = new Set<number>();
  for (const token of Object.values(BERT_SPECIAL_TOKENS)) if (Number.isInteger(j.model.vocab[token])) ids.add(j.model.vocab[token]);
  for (const added of j.added_tokens ?? []) if (added.special === true && Number.isInteger(added.id)) ids.add(added.id);
  const mask = j.model.vocab[BERT_SPECIAL_TOKENS.mask] ?? j.added_tokens?.find((t) => t.content === BERT_SPECIAL_TOKENS.mask)?.id;
  return { maskTokenId: Number.isInteger(mask) ? mask : undefined, specialTokenIds: [...ids].sort((a, b) => a - b) };
}

/**
 * Load a BERT directory (see the module comment); sharded weights (`model.safetensors.index.json`) are read too.
 * @throws InputFileError E_MODEL_FILE for a missing, unreadable or corrupt file, a config that is not BERT, or a
 *   tokenizer without BERT's special tokens; each names the file.
 * @throws ShapeError E_TENSOR_NAME / E_TENSOR_SHAPE for a missing or mis-shaped tensor, naming the file and tensor.
 */
export async function loadHfBert(dir: string): Promise<LoadedBert> {
  const configPath = join(dir, 'config.json');
  const config = parseBertConfig(await readJson(configPath, 'BERT config'), configPath);
  const files = await readHfWeightsDir(dir);
  const { weights, head, mlmHead } = bertWeightsFromTensors(config, files.tensors.values(), dir);
  const tokenizerPath = join(dir, 'tokenizer.json');
  const tokenizerJson = await readJson(tokenizerPath, 'tokenizer');
  const tokenizerConfigPath = join(dir, 'tokenizer_config.json');
  const tokenizerConfig = existsSync(tokenizerConfigPath)
    ? ((await readJson(tokenizerConfigPath, 'tokenizer config')) as Record<string, unknown>)
    : {};
  const tokenizer = bertTokenizerFromJson(tokenizerJson, tokenizerConfig, tokenizerPath);
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `tokenizer ${tokenizerPath}: ${tokenizer.vocabSize} ids, more than the model's vocab_size ${config.vocabSize}`);
  }
  const lines: string[] = [];
  for (const [name, digest] of [['config.json', await fileDigest(configPath)], ...files.fileDigests, ['tokenizer.json', await fileDigest(tokenizerPath)], [
    'tokenizer_config.json',
    await fileDigest(tokenizerConfigPath),
  ]] as [string, string | undefined][]) {
    if (digest !== undefined) lines.push(`${digest}  ${name}\n`);
  }
  const sha256 = createHash('sha256').update(lines.join('')).digest('hex');
  return { config, weights, head, mlmHead, tokenizer, ...bertSpecialIds(tokenizerJson), sha256, path: dir };
}
