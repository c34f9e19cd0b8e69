/**
 * Writes a LLaMA model as a Hugging Face `LlamaForCausalLM` directory: config.json, model.safetensors (F32,
 * HF names, q/k rows in the rotate-half layout), generation_config.json, tokenizer.json, tokenizer_config.json.
 * Also the merged export of a LoRA adapter (`W + s·B·A` folded in, then written the same way).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mergeLora } from '../adapters/lora.js';
import type { BaseWeights, LlamaConfig, LoraSpec } from '../model/types.js';
import type { NamedTensors } from '../tensors.js';
import type { TextTokenizer } from '../tokenizer/text-tokenizer.js';
import { hfLlamaConfigJson } from './hf-config.js';
import { hfTensorsFromGguf } from './hf-llama-weights.js';
import { HF_WEIGHTS_FILE } from './hf-safetensors-dir.js';
import { writeHfTokenizer } from './hf-tokenizer-files.js';
import { writeSafetensors } from './safetensors.js';

/** What {@link writeHfModel} needs: the parts of a LoadedModel that describe the network. */
export interface HfWritableModel {
  readonly config: LlamaConfig;
  /** GGUF names, adjacent-pair q/k layout (as loaded). */
  readonly weights: BaseWeights;
  readonly tokenizer: TextTokenizer;
}

/**
 * Writes `model` as an HF directory (created if needed; files overwritten). The LM head is tied (no
 * `lm_head.weight`, `tie_word_embeddings: true`) when `output.weight` is absent or is the embedding array itself.
 * @throws InputFileError E_MODEL_FILE when a weight is missing; ShapeError when a weight has the wrong size.
 */
export async function writeHfModel(dir: string, model: HfWritableModel): Promise<void> {
  const { config, weights, tokenizer } = model;
  const output = weights.get('output.weight');
  const tied = output === undefined || output === weights.get('token_embd.weight');
  await mkdir(dir, { recursive: true });
  const ids = {
    bosTokenId: tokenizer.bosId,
    eosTokenId: tokenizer.eosId,
    ...(tokenizer.padId !== tokenizer.eosId ? { padTokenId: tokenizer.padId } : {}),
  };
  await writeSafetensors(join(dir, HF_WEIGHTS_FILE), hfTensorsFromGguf(config, weights, tied), { format: 'pt' });
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(hfLlamaConfigJson(config, ids, tied), null, 2)}\n`);
  const generation = { bos_token_id: ids.bosTokenId, eos_token_id: ids.eosTokenId, ...(ids.padTokenId !== undefined ? { pad_token_id: ids.padTokenId } : {}) };
  await writeFile(join(dir, 'generation_config.json'), `${JSON.stringify(generation, null, 2)}\n`);
  await writeHfTokenizer(dir, tokenizer, config.contextLength);
}

/**
 * The merged export: folds the LoRA adapter into the base (`W' = W + s·B·A`, float64 sums; see `mergeLora`) and
 * writes the result with {@link writeHfModel}. `lora` is in this project's layout (as trained or as imported by
 * `loadPeftAdapter` with the model config); a classification head (`score.weight`) is not part of the HF model.
 * @throws ShapeError E_TENSOR_NAME / E_TENSOR_SHAPE when `lora` does not match `config` and `spec`.
 */
export async function writeMergedHfModel(dir: string, model: HfWritableModel, spec: LoraSpec, lora: NamedTensors): Promise<void> {
  await writeHfModel(dir, { ...model, weights: mergeLora(model.config, model.weights, spec, lora) });
}
