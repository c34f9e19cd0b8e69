/**
 * Loads a LLaMA-family model (config, frozen weights, tokenizer) from a GGUF file.
 */
import { ErrorCode, InputFileError } from '../errors.js';
import { readGguf, type GgufFile, type GgufMetadata } from '../formats/gguf.js';
import { tokenizerFromGguf, type TextTokenizer } from '../tokenizer/text-tokenizer.js';
import type { BaseWeights, LlamaConfig } from './types.js';

/** A base model ready to build: hyper-parameters, weights by GGUF name, tokenizer, and where it came from. */
export interface LoadedModel {
  readonly config: LlamaConfig;
  /** Weights by GGUF tensor name, PyTorch order; `output.weight` is token_embd's array when the file ties them. */
  readonly weights: BaseWeights;
  readonly tokenizer: TextTokenizer;
  /** sha256 (hex) of the model file. */
  readonly sha256: string;
  readonly path: string;
}

/** RoPE base frequency when `llama.rope.freq_base` is absent. @default 10000 */
export const DEFAULT_ROPE_THETA = 10000;
/** RMSNorm epsilon when `llama.attention.layer_norm_rms_epsilon` is absent. @default 1e-5 */
export const DEFAULT_NORM_EPS = 1e-5;
/** Context length when `llama.context_length` is absent. @default 2048 */
export const DEFAULT_CONTEXT_LENGTH = 2048;

/** The tensor names and PyTorch shapes a LLaMA model of `config` must have (`output.weight` included). */
export function expectedLlamaTensors(config: LlamaConfig): Map<string, number[]> {
  const { dim, nLayers, nHeads, nKvHeads, hiddenDim, vocabSize } = config;
  const headDim = dim / nHeads;
  const kvDim = headDim * nKvHeads;
  const out = new Map<string, number[]>();
  out.set('token_embd.weight', [vocabSize, dim]);
  for (let i = 0; i < nLayers; i++) {
    const p = `blk.${i}.`;
    out.set(`${p}attn_norm.weight`, [dim]);
    out.set(`${p}attn_q.weight`, [dim, dim]);
    out.set(`${p}attn_k.weight`, [kvDim, dim]);
    out.set(`${p}attn_v.weight`, [kvDim, dim]);
    out.set(`${p}attn_output.weight`, [dim, dim]);
    out.set(`${p}ffn_norm.weight`, [dim]);
    out.set(`${p}ffn_gate.weight`, [hiddenDim, dim]);
    out.set(`${p}ffn_up.weight`, [hiddenDim, dim]);
    out.set(`${p}ffn_down.weight`, [dim, hiddenDim]);
  }
  out.set('output_norm.weight', [dim]);
  out.set('output.weight', [vocabSize, dim]);
  return out;
}

function positiveInt(metadata: GgufMetadata, key: string, path: string, fallback?: number): number {
  const v = Object.hasOwn(metadata, key) ? metadata[key] : fallback;
  if (v === undefined) throw new InputFileError(ErrorCode.MODEL_FILE, `GGUF file ${path}: metadata ${key} is missing`);
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `GGUF file ${path}: metadata ${key} = ${String(v)} is not a positive integer`);
  }
  return v;
}

function positiveFloat(metadata: GgufMetadata, key: string, path: string, fallback: number): number {
  const v = Object.hasOwn(metadata, key) ? metadata[key] : fallback;
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `GGUF file ${path}: metadata ${key} = ${String(v)} is not a positive number`);
  }
  return v;
}

/**
 * The {@link LlamaConfig} described by GGUF metadata (`general.architecture` = "llama", `llama.*` keys; the
 * vocabulary size is the length of `tokenizer.ggml.tokens`). The f32 epsilon is rounded to 7 significant digits
 * (1e-5 stays 1e-5, not 9.99999974e-6).
 * @throws InputFileError E_MODEL_FILE for another architecture, a missing key or an inconsistent value.
 */
export function llamaConfigFromGguf(metadata: GgufMetadata, path: string): LlamaConfig {
  const arch = metadata['general.architecture'];
  if (arch !== 'llama') {
    throw new InputFileError(
      ErrorCode.MODEL_FILE,
      `GGUF file ${path}: general.architecture is ${JSON.stringify(arch)}, expected "llama"`,
    );
  }
  const tokens = metadata['tokenizer.ggml.tokens'];
  if (!Array.isArray(tokens) || tokens.length === 0) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `GGUF file ${path}: metadata tokenizer.ggml.tokens is missing`);
  }
  const dim = positiveInt(metadata, 'llama.embedding_length', path);
  const nHeads = positiveInt(metadata, 'llama.attention.head_count', path);
  const nKvHeads = positiveInt(metadata, 'llama.attention.head_count_kv', path, nHeads);
  if (dim % nHeads !== 0) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `GGUF file ${path}: embedding_length ${dim} is not a multiple of head_count ${nHeads}`);
  }
  if (nHeads % nKvHeads !== 0) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `GGUF file ${path}: head_count ${nHeads} is not a multiple of head_count_kv ${nKvHeads}`);
  }
  const eps = positiveFloat(metadata, 'llama.attention.layer_norm_rms_epsilon', path, DEFAULT_NORM_EPS);
  return {
    vocabSize: tokens.length,
    dim,
    nLayers: positiveInt(metadata, 'llama.block_count', path),
    nHeads,
    nKvHeads,
    hiddenDim: positiveInt(metadata, 'llama.feed_forward_length', path),
    // The file stores eps as f32; round away the f32 representation noise.
    normEps: Number(eps.toPrecision(7)),
    ropeTheta: positiveFloat(metadata, 'llama.rope.freq_base', path, DEFAULT_ROPE_THETA),
    contextLength: positiveInt(metadata, 'llama.context_length', path, DEFAULT_CONTEXT_LENGTH),
  };
}

/**
 * Checks every tensor a LLaMA of `config` needs and returns them by name; ties `output.weight` to
 * `token_embd.weight` (the same array) when the file has no output tensor. Tensors the model does not use are
 * ignored (e.g. `rope_freqs.weight`).
 * @throws InputFileError E_MODEL_FILE naming the first missing or misshapen tensor.
 */
export function llamaWeightsFromGguf(file: GgufFile, config: LlamaConfig): BaseWeights {
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const weights: BaseWeights = new Map();
  for (const [name, shape] of expectedLlamaTensors(config)) {
    let tensor = byName.get(name);
    if (tensor === undefined && name === 'output.weight') tensor = byName.get('token_embd.weight');
    if (tensor === undefined) {
      throw new InputFileError(ErrorCode.MODEL_FILE, `GGUF file ${file.path}: tensor ${name} is missing`);
    }
    if (tensor.shape.length !== shape.length || tensor.shape.some((d, i) => d !== shape[i])) {
      throw new InputFileError(
        ErrorCode.MODEL_FILE,
        `GGUF file ${file.path}: tensor ${tensor.name} has shape [${tensor.shape}], expected [${shape}] for ${name}`,
      );
    }
    weights.set(name, tensor.data);
  }
  return weights;
}

/**
 * Reads a LLaMA GGUF file: config from metadata, weights (dequantized to f32, GGUF names, PyTorch order, q/k
 * kept in the file's RoPE layout without permutation), and the tokenizer from the metadata.
 * @throws InputFileError E_MODEL_FILE for an unreadable or invalid file, missing keys or tensors, wrong shapes.
 */
export async function loadLlamaGguf(path: string): Promise<LoadedModel> {
  const file = await readGguf(path);
  const config = llamaConfigFromGguf(file.metadata, path);
  const weights = llamaWeightsFromGguf(file, config);
  const tokenizer = tokenizerFromGguf(file.metadata);
  return { config, weights, tokenizer, sha256: file.sha256, path };
}
