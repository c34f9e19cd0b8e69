/**
 * A small random LLaMA model as a Hugging Face directory (config.json, model.safetensors, tokenizer.json,
 * tokenizer_config.json, generation_config.json): a random GGUF (./random-gguf.ts) re-saved in HF layout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHfModel } from '../../shared/formats/hf-model-writer.js';
import { loadModel } from '../../shared/model/load-model.js';
import { writeRandomLlamaGguf, type RandomLlamaOptions } from './random-gguf.js';

/** Writes the HF directory `dir` of a seeded random model shaped by `opts`. */
export async function writeRandomHfDir(dir: string, opts: RandomLlamaOptions): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'swarmtune-hf-src-'));
  try {
    const gguf = join(scratch, 'model.gguf');
    await writeRandomLlamaGguf(gguf, opts);
    await writeHfModel(dir, await loadModel(gguf));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
