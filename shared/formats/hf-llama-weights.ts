/**
 * LLaMA weights between Hugging Face names/layout (`model.layers.0.self_attn.q_proj.weight`, q/k rows in the
 * rotate-half layout) and this project's GGUF names/layout (`blk.0.attn_q.weight`, adjacent-pair rows).
 */
import { ErrorCode, InputFileError } from '../errors.js';
import { expectedBaseShapes, GGUF_LINEAR_NAMES } from '../model/llama-config.js';
import type { BaseWeights, LlamaConfig, LoraTarget } from '../model/types.js';
import { LORA_TARGETS } from '../model/types.js';
import type { HfTensor } from './hf-safetensors-dir.js';
import { permuteRopeRows, type RopeRowDirection } from './hf-rope-permute.js';

/** HF module path (under `model.layers.{i}.`) of each linear layer. */
export const HF_LINEAR_PATHS: Readonly<Record<LoraTarget, string>> = {
  q: 'self_attn.q_proj',
  k: 'self_attn.k_proj',
  v: 'self_attn.v_proj',
  o: 'self_attn.o_proj',
  gate: 'mlp.gate_proj',
  up: 'mlp.up_proj',
  down: 'mlp.down_proj',
};

/** The HF tensor name of each GGUF base tensor of `config` (`output.weight` ↦ `lm_head.weight`). */
export function hfNameMap(config: LlamaConfig): Map<string, string> {
  const out = new Map<string, string>();
  out.set('token_embd.weight', 'model.embed_tokens.weight');
  for (let i = 0; i < config.nLayers; i++) {
    out.set(`blk.${i}.attn_norm.weight`, `model.layers.${i}.input_layernorm.weight`);
    out.set(`blk.${i}.ffn_norm.weight`, `model.layers.${i}.post_attention_layernorm.weight`);
    for (const target of LORA_TARGETS) {
      out.set(`blk.${i}.${GGUF_LINEAR_NAMES[target]}.weight`, `model.layers.${i}.${HF_LINEAR_PATHS[target]}.weight`);
    }
  }
  out.set('output_norm.weight', 'model.norm.weight');
  out.set('output.weight', 'lm_head.weight');
  return out;
}

/**
 * Applies the q/k RoPE row permutation to a GGUF-named weight (a copy), or returns it unchanged for any other
 * tensor. `cols` is the row width (`dim` for a base weight, `r` for a LoRA B).
 */
export function permuteIfRope(ggufName: string, data: Float32Array, cols: number, config: LlamaConfig, direction: RopeRowDirection): Float32Array {
  const isQ = /^blk\.\d+\.attn_q\./.test(ggufName);
  const isK = /^blk\.\d+\.attn_k\./.test(ggufName);
  if (!isQ && !isK) return data;
  const heads = isQ ? config.nHeads : config.nKvHeads;
  return permuteRopeRows(data, data.length / cols, cols, heads, direction);
}

/**
 * The GGUF-named, adjacent-pair-layout {@link BaseWeights} of an HF LLaMA checkpoint: every tensor checked for
 * presence and shape, q/k rows permuted, `lm_head.weight` tied to the embeddings when `tieWordEmbeddings` or absent.
 * q/k/v biases (Qwen2) are accepted only when they are all zero, since the decoder has no bias.
 * @param dir the model directory, for messages.
 * @throws InputFileError E_MODEL_FILE naming the file and tensor: missing, misshapen, or a non-zero bias.
 */
export function ggufWeightsFromHf(tensors: ReadonlyMap<string, HfTensor>, config: LlamaConfig, tieWordEmbeddings: boolean, dir: string): BaseWeights {
  const shapes = expectedBaseShapes(config);
  shapes.set('output.weight', [config.vocabSize, config.dim]);
  const names = hfNameMap(config);
  const weights: BaseWeights = new Map();
  for (const [ggufName, shape] of shapes) {
    let hfName = names.get(ggufName)!;
    if (ggufName === 'output.weight' && (tieWordEmbeddings || !tensors.has(hfName))) hfName = names.get('token_embd.weight')!;
    const t = tensors.get(hfName);
    if (t === undefined) throw new InputFileError(ErrorCode.MODEL_FILE, `HF model directory ${dir}: tensor ${hfName} is missing`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new InputFileError(ErrorCode.MODEL_FILE, `safetensors ${t.file}: tensor ${hfName} has shape [${t.shape}], expected [${shape}]`);
    }
    weights.set(ggufName, permuteIfRope(ggufName, t.data, config.dim, config, 'hf-to-gguf'));
  }
  for (const [name, t] of tensors) {
    if (!name.endsWith('.bias')) continue;
    if (t.data.some((v) => v !== 0)) {
      throw new InputFileError(
        ErrorCode.MODEL_FILE,
        `safetensors ${t.file}: tensor ${name} is a non-zero bias; linear biases (Qwen2's q/k/v) are not supported`,
      );
    }
  }
  return weights;
}

/**
 * HF-named tensors (q/k rows in the rotate-half layout) of GGUF-named weights, ready for safetensors.
 * @param tieWordEmbeddings leave out `lm_head.weight` (the LM head is the embedding table).
 */
export function hfTensorsFromGguf(config: LlamaConfig, weights: BaseWeights, tieWordEmbeddings: boolean): { name: string; shape: number[]; data: Float32Array }[] {
  const shapes = expectedBaseShapes(config);
  if (!tieWordEmbeddings) shapes.set('output.weight', [config.vocabSize, config.dim]);
  const names = hfNameMap(config);
  const out: { name: string; shape: number[]; data: Float32Array }[] = [];
  for (const [ggufName, shape] of shapes) {
    const data = weights.get(ggufName) ?? (ggufName === 'output.weight' ? weights.get('token_embd.weight') : undefined);
    if (data === undefined) throw new InputFileError(ErrorCode.MODEL_FILE, `hfTensorsFromGguf: weight ${ggufName} is missing`);
    out.push({ name: names.get(ggufName)!, shape, data: permuteIfRope(ggufName, data, config.dim, config, 'gguf-to-hf') });
  }
  return out;
}
