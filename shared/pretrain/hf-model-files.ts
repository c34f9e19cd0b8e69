/**
 * The two model directories of pre-training: the randomly initialised starting point (a LLaMA config, seeded
 * weights, a trained BPE tokenizer) and the trained result (the final `peft.method: full` adapter folded back into
 * base weights). Both are Hugging Face `LlamaForCausalLM` directories that `swarmtune run` loads like any other.
 */
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ggufNameOf } from '../adapters/base-tuning.js';
import { ErrorCode, ShapeError } from '../errors.js';
import { writeHfModel } from '../formats/hf-model-writer.js';
import { PEFT_KEY_PREFIX } from '../formats/peft-adapter.js';
import { readSafetensors } from '../formats/safetensors.js';
import { expectedBaseShapes, validateLlamaConfig } from '../model/llama-config.js';
import { randomBaseWeights } from '../model/random-weights.js';
import type { BaseWeights, LlamaConfig } from '../model/types.js';
import { loadBpeTokenizerDir } from '../tokenizer/bpe-tokenizer-json.js';

/** The tokenizer files copied verbatim from the tokenizer trainer's folder. */
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'] as const;

/**
 * Writes a randomly initialised model (weights N(0, 0.02²) drawn from `seed`, norms 1, output tied to the embedding)
 * with the tokenizer of `tokenizerDir` as an HF directory at `outDir`. `config.vocabSize` must be the tokenizer's.
 * @throws ConfigError / ShapeError for an invalid config; ShapeError E_TENSOR_SHAPE when the vocabulary sizes differ.
 */
export async function writeRandomHfModel(outDir: string, config: LlamaConfig, tokenizerDir: string, seed: number): Promise<void> {
  validateLlamaConfig(config);
  const tokenizer = await loadBpeTokenizerDir(tokenizerDir);
  if (tokenizer.vocabSize !== config.vocabSize) {
    throw new ShapeError(ErrorCode.TENSOR_SHAPE, `model vocab_size ${config.vocabSize} differs from the tokenizer's ${tokenizer.vocabSize} (${tokenizerDir})`);
  }
  await writeHfModel(outDir, { config, weights: randomBaseWeights(config, seed), tokenizer });
  await copyTokenizerFiles(tokenizerDir, outDir);
}

/**
 * Base weights (GGUF names, as loaded) from the `adapter_model.safetensors` of a `peft.method: full` causal-lm run:
 * every tensor of the model under `base_model.model.<HF name>`, in this project's q/k row layout.
 * @throws ShapeError E_TENSOR_NAME for a missing or unknown tensor, E_TENSOR_SHAPE for a misshapen one.
 */
export async function baseWeightsFromFullAdapter(adapterDir: string, config: LlamaConfig): Promise<BaseWeights> {
  const file = await readSafetensors(join(adapterDir, 'adapter_model.safetensors'));
  const expected = expectedBaseShapes(config);
  const weights: BaseWeights = new Map();
  for (const tensor of file.tensors) {
    if (!tensor.name.startsWith(PEFT_KEY_PREFIX)) throw new ShapeError(ErrorCode.TENSOR_NAME, `${adapterDir}: tensor ${tensor.name} lacks the ${PEFT_KEY_PREFIX} prefix`);
    const gguf = ggufNameOf(tensor.name.slice(PEFT_KEY_PREFIX.length));
    const shape = expected.get(gguf) ?? (gguf === 'output.weight' ? [config.vocabSize, config.dim] : undefined);
    if (!shape || shape.join(',') !== tensor.shape.join(',')) {
      throw new ShapeError(ErrorCode.TENSOR_SHAPE, `${adapterDir}: ${tensor.name} has shape [${tensor.shape}], expected [${shape ?? '?'}]`);
    }
    weights.set(gguf, Float32Array.from(tensor.data));
  }
  for (const name of expected.keys()) {
    if (!weights.has(name)) throw new ShapeError(ErrorCode.TENSOR_NAME, `${adapterDir}: base weight ${name} is missing (not a full fine-tune?)`);
  }
  return weights;
}

/**
 * Writes the trained model: `weights` with the config and tokenizer of the starting directory `initDir`.
 */
export async function writeTrainedHfModel(outDir: string, config: LlamaConfig, weights: BaseWeights, tokenizerDir: string): Promise<void> {
  const tokenizer = await loadBpeTokenizerDir(tokenizerDir);
  await writeHfModel(outDir, { config, weights, tokenizer });
  await copyTokenizerFiles(tokenizerDir, outDir);
}

// writeHfModel writes a llama-style tokenizer_config; the trainer's own files name the BPE tokens exactly.
async function copyTokenizerFiles(fromDir: string, toDir: string): Promise<void> {
  for (const name of TOKENIZER_FILES) await copyFile(join(fromDir, name), join(toDir, name));
}
