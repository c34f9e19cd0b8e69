/**
 * The export step (what `swarmtune export` runs): a trained adapter → a PEFT adapter directory in Hugging Face
 * layout and, optionally, the merged model as a Hugging Face `LlamaForCausalLM` directory.
 */
import { join } from 'node:path';
import { ConfigError, ErrorCode } from '../errors.js';
import { loraManifest } from '../adapters/lora.js';
import { loadModel } from '../model/load-model.js';
import { exportHfBert } from '../model/bert/bert-export.js';
import { isHfBertDir } from '../model/bert/load-hf-bert.js';
import { SCORE_WEIGHT } from '../model/trainable.js';
import { writeMergedHfModel } from './hf-model-writer.js';
import { loadPeftAdapter, writePeftAdapter } from './peft-adapter.js';

/** What to export. */
export interface HfExportOptions {
  /** The base model: a GGUF file or a Hugging Face directory. */
  readonly model: string;
  /** A LoRA adapter directory (a run's `adapter/` or `checkpoint-N/`, or one written by Python PEFT). */
  readonly adapterDir: string;
  /** Receives `adapter/` and, with `merged`, `merged/`. Created if needed; files there are overwritten. */
  readonly outputDir: string;
  /** Also write the merged model (`W + s·B·A`). @default true */
  readonly merged?: boolean;
}

/** Where {@link exportHf} wrote. */
export interface HfExportResult {
  readonly adapterDir: string;
  /** Absent when `merged` was false. */
  readonly mergedDir?: string;
}

/**
 * Loads the base and the adapter (q/k rows to this project's layout), then writes the PEFT adapter with q/k
 * `lora_B` rows in the HF layout and, unless `merged: false`, the merged model in HF layout. A classification
 * head (`score.weight`) stays in the adapter: the merged directory is the causal LM.
 * @throws InputFileError E_MODEL_FILE for an unreadable model or adapter; ConfigError E_CONFIG_INVALID when the
 *   adapter is not LoRA.
 */
export async function exportHf(options: HfExportOptions): Promise<HfExportResult> {
  if (isHfBertDir(options.model)) return exportHfBert(options);
  const loaded = await loadModel(options.model);
  const adapter = await loadPeftAdapter(options.adapterDir, loaded.config);
  const peft = adapter.spec.peft;
  if (peft.method !== 'lora') throw new ConfigError(ErrorCode.CONFIG_INVALID, `export: ${options.adapterDir} is not a LoRA adapter`);
  const manifest = loraManifest(loaded.config, peft);
  if (adapter.spec.task === 'classification' && adapter.tensors.has(SCORE_WEIGHT)) {
    manifest.push({ name: SCORE_WEIGHT, shape: [adapter.spec.numLabels, loaded.config.dim] });
  }
  const adapterDir = join(options.outputDir, 'adapter');
  await writePeftAdapter(adapterDir, adapter.tensors, manifest, {
    spec: adapter.spec,
    baseModel: options.model,
    labels: adapter.labels,
    modelConfig: loaded.config,
  });
  if (options.merged === false) return { adapterDir };
  const mergedDir = join(options.outputDir, 'merged');
  await writeMergedHfModel(mergedDir, loaded, peft, adapter.tensors);
  return { adapterDir, mergedDir };
}
