import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoraTarget, ModelSpec } from '../model/types.js';
import { ErrorCode, InputFileError } from '../errors.js';
import type { NamedTensors, TensorSpec } from '../tensors.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';

/** Hugging Face module names of the LoRA targets. */
const HF_MODULE_NAMES = { q: 'q_proj', k: 'k_proj', v: 'v_proj', o: 'o_proj', gate: 'gate_proj', up: 'up_proj', down: 'down_proj' } as const;

/** PEFT's prefix of every saved adapter key. */
export const PEFT_KEY_PREFIX = 'base_model.model.';

/** What an exported adapter records besides its tensors. */
export interface PeftAdapterInfo {
  readonly spec: ModelSpec;
  /** Where the base model came from (`base_model_name_or_path`). */
  readonly baseModel: string;
  /** Class names in label-id order, for classification. */
  readonly labels?: readonly string[];
}

/**
 * Writes a PEFT adapter directory: `adapter_model.safetensors` (keys `base_model.model.<path>.lora_A.weight`
 * `[r, in]` and `lora_B.weight` `[out, r]`, plus `base_model.model.score.weight` for classification; metadata
 * `{"format":"pt"}`) and `adapter_config.json` as PEFT's `LoraConfig.save_pretrained` writes it.
 *
 * Note: the q/k projections of a GGUF converted from llama2.c use RoPE on adjacent pairs, while Hugging Face's
 * LLaMA rotates halves; loading this adapter onto an HF conversion of the same base needs the same row
 * permutation of q/k `lora_B` that the HF conversion applied to the base weights. TODO(#6): apply it on export.
 */
export async function writePeftAdapter(dir: string, tensors: NamedTensors, manifest: readonly TensorSpec[], info: PeftAdapterInfo): Promise<void> {
  await mkdir(dir, { recursive: true });
  const entries = manifest.map((spec) => ({ name: PEFT_KEY_PREFIX + spec.name, shape: [...spec.shape], data: tensors.get(spec.name)! }));
  await writeSafetensors(join(dir, 'adapter_model.safetensors'), entries, { format: 'pt' });
  const { peft, task } = info.spec;
  const isClassification = task === 'classification';
  const config = {
    peft_type: 'LORA',
    task_type: isClassification ? 'SEQ_CLS' : 'CAUSAL_LM',
    base_model_name_or_path: info.baseModel,
    r: peft.r,
    lora_alpha: peft.loraAlpha,
    lora_dropout: peft.loraDropout,
    use_rslora: peft.useRslora,
    target_modules: peft.targetModules.map((t) => HF_MODULE_NAMES[t]),
    modules_to_save: isClassification ? ['score'] : null,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    use_dora: false,
    layers_to_transform: null,
    revision: null,
    ...(isClassification ? { swarmtune: { num_labels: info.spec.numLabels, pooling: info.spec.pooling, labels: info.labels ?? [] } } : {}),
  };
  await writeFile(join(dir, 'adapter_config.json'), `${JSON.stringify(config, null, 2)}\n`);
}

/** An adapter read back: the model spec it was trained with and its tensors by swarmtune name. */
export interface LoadedPeftAdapter {
  readonly spec: ModelSpec;
  readonly tensors: NamedTensors;
  readonly labels: readonly string[];
}

/**
 * Reads an adapter directory written by {@link writePeftAdapter}.
 * @throws InputFileError E_MODEL_FILE when a file is missing or the config is not a LoRA adapter
 */
export async function loadPeftAdapter(dir: string): Promise<LoadedPeftAdapter> {
  const configPath = join(dir, 'adapter_config.json');
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `cannot read adapter config ${configPath}: ${(err as Error).message}`, { cause: err });
  }
  if (config.peft_type !== 'LORA') throw new InputFileError(ErrorCode.MODEL_FILE, `${configPath}: peft_type is ${String(config.peft_type)}, expected LORA`);
  const shortNames = Object.fromEntries(Object.entries(HF_MODULE_NAMES).map(([short, hf]) => [hf, short])) as Record<string, LoraTarget>;
  const extra = (config.swarmtune ?? {}) as { num_labels?: number; pooling?: 'mean' | 'last'; labels?: string[] };
  const spec: ModelSpec = {
    task: config.task_type === 'SEQ_CLS' ? 'classification' : 'causal-lm',
    numLabels: extra.num_labels ?? 2,
    pooling: extra.pooling ?? 'mean',
    peft: {
      method: 'lora',
      r: Number(config.r),
      loraAlpha: Number(config.lora_alpha),
      loraDropout: Number(config.lora_dropout ?? 0),
      useRslora: Boolean(config.use_rslora),
      targetModules: (config.target_modules as string[]).map((name) => shortNames[name] ?? (name as LoraTarget)),
    },
  };
  const file = await readSafetensors(join(dir, 'adapter_model.safetensors'));
  const tensors: NamedTensors = new Map(
    file.tensors.map((t) => [t.name.startsWith(PEFT_KEY_PREFIX) ? t.name.slice(PEFT_KEY_PREFIX.length) : t.name, t.data]),
  );
  return { spec, tensors, labels: extra.labels ?? [] };
}
