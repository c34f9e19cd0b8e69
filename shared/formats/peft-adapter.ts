/**
 * PEFT adapter directories (`adapter_model.safetensors` + `adapter_config.json`), as Python PEFT writes and reads them.
 *
 * Row layout: this project computes q/k in the GGUF adjacent-pair RoPE layout, Hugging Face in the rotate-half
 * layout (see hf-rope-permute.ts). An adapter exported with the model config has its q_proj / k_proj `lora_B` rows
 * permuted to the HF layout (`lora_A` is untouched: it acts on the input side), so it loads onto the HF layout of the
 * base (an HF checkpoint, or a GGUF re-saved by hf-model-writer.ts); import with the config inverts it.
 * `adapter_config.json` records which layout the file holds in `swarmtune.qk_row_layout`; a file without a
 * `swarmtune` section (written by Python PEFT) is in the HF layout; one with a section but no layout predates the
 * field and is in the GGUF layout.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loraManifest } from '../adapters/lora.js';
import type { LlamaConfig, LoraModule, LoraSpec, LoraTarget, ModelSpec } from '../model/types.js';
import { LORA_MODULES } from '../model/types.js';
import { ErrorCode, InputFileError } from '../errors.js';
import type { NamedTensors, TensorSpec } from '../tensors.js';
import { permuteRopeRows, type RopeRowDirection } from './hf-rope-permute.js';
import { isBertConfig, type BertConfig } from '../model/bert/bert-config.js';
import { bertTrainableManifest } from '../model/bert/bert-trainable.js';
import { BERT_MLM_DENSE_WEIGHT, BERT_MLM_MODULE } from '../model/bert/bert-mlm-head.js';
import { bertTargetsOfModules, bertTargetModules } from './peft-bert.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';

/** Hugging Face module names of the LoRA targets (`embed`: `lora_embedding_A` / `lora_embedding_B`, no `.weight`). */
const HF_MODULE_NAMES = {
  q: 'q_proj',
  k: 'k_proj',
  v: 'v_proj',
  o: 'o_proj',
  gate: 'gate_proj',
  up: 'up_proj',
  down: 'down_proj',
  embed: 'embed_tokens',
} as const satisfies Record<LoraModule, string>;

/** PEFT's prefix of every saved adapter key. */
export const PEFT_KEY_PREFIX = 'base_model.model.';

/** Row layout of q/k `lora_B` in an adapter file: Hugging Face rotate-half, or GGUF adjacent pairs. */
export type QkRowLayout = 'hf' | 'gguf';

/** What an exported adapter records besides its tensors. */
export interface PeftAdapterInfo {
  readonly spec: ModelSpec;
  /** Where the base model came from (`base_model_name_or_path`). */
  readonly baseModel: string;
  /** Class names in label-id order, for classification. */
  readonly labels?: readonly string[];
  /**
   * The base model's config: given, q/k `lora_B` rows are written in the HF layout; absent, as trained (GGUF
   * layout, recorded as such). @default undefined
   */
  readonly modelConfig?: LlamaConfig | BertConfig;
}

/** `lora_B` of q_proj / k_proj: `[heads, numHeads]` when `name` is one, else undefined. */
function qkHeads(name: string, config: LlamaConfig): number | undefined {
  if (!name.endsWith('.lora_B.weight')) return undefined;
  if (name.includes('.self_attn.q_proj.')) return config.nHeads;
  if (name.includes('.self_attn.k_proj.')) return config.nKvHeads;
  return undefined;
}

/**
 * LoRA tensors with the q/k `lora_B` rows moved between layouts (copies for those, the same arrays for the rest).
 * @throws ShapeError E_TENSOR_SHAPE when a q/k `lora_B` does not split into the config's heads.
 */
export function permuteLoraQk(tensors: NamedTensors, config: LlamaConfig, direction: RopeRowDirection): NamedTensors {
  const out: NamedTensors = new Map();
  for (const [name, data] of tensors) {
    const heads = qkHeads(name, config);
    if (heads === undefined) {
      out.set(name, data);
      continue;
    }
    const rows = (name.includes('.q_proj.') ? config.nHeads : config.nKvHeads) * (config.dim / config.nHeads);
    out.set(name, permuteRopeRows(data, rows, data.length / rows, heads, direction));
  }
  return out;
}

const PEFT_TYPES: Readonly<Record<string, string | null>> = { lora: 'LORA', prompt: 'PROMPT_TUNING' };

/**
 * Writes a PEFT adapter directory: `adapter_model.safetensors` (keys `base_model.model.<path>.lora_A.weight`
 * `[r, in]` and `lora_B.weight` `[out, r]`; for an adapted embedding `base_model.model.model.embed_tokens.
 * lora_embedding_A` `[r, vocab]` and `.lora_embedding_B` `[dim, r]`, without `.weight`, as PEFT saves them; plus
 * `base_model.model.score.weight` for classification; metadata
 * `{"format":"pt"}`) and `adapter_config.json` as PEFT's `LoraConfig.save_pretrained` writes it. Methods other than
 * LoRA write their tensors under the same prefix and their spec in `swarmtune.method_spec` (PEFT cannot load them).
 * A BERT masked-LM adapter (`task: causal-lm` on BERT) has `task_type` null (PEFT has no masked-LM task: a plain
 * `PeftModel` over `BertForMaskedLM`), `bert.`-prefixed module paths, and a newly initialised MLM head under
 * `modules_to_save: ["cls.predictions.transform"]` plus `base_model.model.cls.predictions.bias`.
 */
export async function writePeftAdapter(dir: string, tensors: NamedTensors, manifest: readonly TensorSpec[], info: PeftAdapterInfo): Promise<void> {
  await mkdir(dir, { recursive: true });
  const layout: QkRowLayout = info.modelConfig !== undefined && info.spec.peft.method === 'lora' ? 'hf' : 'gguf';
  // BERT has no RoPE: its rows are in the HF layout as trained (peft-bert.ts names its modules).
  const isBert = info.modelConfig !== undefined && isBertConfig(info.modelConfig);
  const values = layout === 'hf' && !isBert ? permuteLoraQk(tensors, info.modelConfig as LlamaConfig, 'gguf-to-hf') : tensors;
  const entries = manifest.map((spec) => ({ name: PEFT_KEY_PREFIX + spec.name, shape: [...spec.shape], data: values.get(spec.name)! }));
  await writeSafetensors(join(dir, 'adapter_model.safetensors'), entries, { format: 'pt' });
  const { peft, task } = info.spec;
  const isClassification = task === 'classification';
  // causal-lm on BERT is masked-LM: PEFT has no task type for it (a plain PeftModel over BertForMaskedLM), and a
  // newly initialised head travels as modules_to_save (its output bias, a bare parameter, under its own key).
  const isMlm = isBert && task === 'causal-lm';
  const mlmHeadSaved = isMlm && manifest.some((t) => t.name === BERT_MLM_DENSE_WEIGHT);
  const swarmtune = {
    qk_row_layout: layout,
    ...(isBert ? { architecture: 'bert' } : {}),
    ...(isMlm ? { task: 'masked-lm' } : {}),
    ...(isClassification ? { num_labels: info.spec.numLabels, pooling: info.spec.pooling, labels: info.labels ?? [] } : {}),
    ...(peft.method !== 'lora' ? { method_spec: peft } : {}),
  };
  const lora =
    peft.method === 'lora'
      ? {
          r: peft.r,
          lora_alpha: peft.loraAlpha,
          lora_dropout: peft.loraDropout,
          use_rslora: peft.useRslora,
          target_modules: isBert ? bertTargetModules(peft.targetModules) : peft.targetModules.map((t) => HF_MODULE_NAMES[t]),
          bias: 'none',
          fan_in_fan_out: false,
          init_lora_weights: true,
          use_dora: false,
          layers_to_transform: null,
        }
      : {};
  const config = {
    peft_type: PEFT_TYPES[peft.method] ?? null,
    task_type: isClassification ? 'SEQ_CLS' : isMlm ? null : 'CAUSAL_LM',
    base_model_name_or_path: info.baseModel,
    ...lora,
    modules_to_save: isClassification ? [isBert ? 'classifier' : 'score'] : mlmHeadSaved ? [BERT_MLM_MODULE] : null,
    inference_mode: true,
    revision: null,
    swarmtune,
  };
  await writeFile(join(dir, 'adapter_config.json'), `${JSON.stringify(config, null, 2)}\n`);
}

/** An adapter read back: the model spec it was trained with and its tensors by swarmtune name. */
export interface LoadedPeftAdapter {
  readonly spec: ModelSpec;
  readonly tensors: NamedTensors;
  readonly labels: readonly string[];
  /** Layout of the returned q/k `lora_B` rows: `gguf` (ready for this project's model) unless read without a config. */
  readonly qkRowLayout: QkRowLayout;
}

/**
 * Reads a LoRA adapter directory (written by {@link writePeftAdapter} or by Python PEFT for a LLaMA-family model).
 * With `modelConfig`, q/k `lora_B` rows come back in the GGUF layout and every LoRA tensor is checked against the
 * model's shapes; without it, they come back as stored (`qkRowLayout` says which).
 * @throws InputFileError E_MODEL_FILE when a file is missing or corrupt, the config is not a LoRA adapter this
 *   project can apply (`target_modules` not a list of LLaMA linear layers, `layers_to_transform`, DoRA), or a tensor is missing or
 *   misshapen for `modelConfig` (naming the file and the tensor).
 */
export async function loadPeftAdapter(dir: string, modelConfig?: LlamaConfig | BertConfig): Promise<LoadedPeftAdapter> {
  const configPath = join(dir, 'adapter_config.json');
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `cannot read adapter config ${configPath}: ${(err as Error).message}`, { cause: err });
  }
  const fail = (what: string): never => {
    throw new InputFileError(ErrorCode.MODEL_FILE, `${configPath}: ${what}`);
  };
  if (config.peft_type !== 'LORA') fail(`peft_type is ${String(config.peft_type)}, expected LORA`);
  if (!Array.isArray(config.target_modules) && typeof config.target_modules !== 'string') fail(`target_modules ${JSON.stringify(config.target_modules)} is not a list of module names`);
  if (config.layers_to_transform !== undefined && config.layers_to_transform !== null) fail('layers_to_transform is not supported');
  if (config.use_dora === true) fail('use_dora = true is not supported');
  const extraArch = (config.swarmtune as { architecture?: unknown } | undefined)?.architecture;
  if (extraArch === 'bert' || (modelConfig !== undefined && isBertConfig(modelConfig)) || (Array.isArray(config.modules_to_save) && config.modules_to_save.includes('classifier'))) {
    return loadBertPeftAdapter(dir, config, fail, modelConfig !== undefined && isBertConfig(modelConfig) ? modelConfig : undefined);
  }
  if (!Array.isArray(config.target_modules)) fail(`target_modules ${JSON.stringify(config.target_modules)} is not a list of module names`);
  const unknown = (config.target_modules as unknown[]).filter((m) => !Object.values(HF_MODULE_NAMES).includes(m as never) && !(LORA_MODULES as readonly unknown[]).includes(m));
  if (unknown.length > 0) fail(`target_modules ${JSON.stringify(unknown)} are not LLaMA linear layers or the embedding (${Object.values(HF_MODULE_NAMES).join(', ')})`);
  const shortNames = Object.fromEntries(Object.entries(HF_MODULE_NAMES).map(([short, hf]) => [hf, short])) as Record<string, LoraModule>;
  const extra = (config.swarmtune ?? {}) as { num_labels?: number; pooling?: 'mean' | 'last'; labels?: string[]; qk_row_layout?: QkRowLayout };
  const stored: QkRowLayout = extra.qk_row_layout ?? (config.swarmtune === undefined ? 'hf' : 'gguf');
  const peft: LoraSpec = {
    method: 'lora',
    r: Number(config.r),
    loraAlpha: Number(config.lora_alpha),
    loraDropout: Number(config.lora_dropout ?? 0),
    useRslora: Boolean(config.use_rslora),
    // Canonical order and no repeats, whatever order Python PEFT wrote (it saves a set).
    targetModules: LORA_MODULES.filter((m) => (config.target_modules as string[]).some((name) => (shortNames[name] ?? name) === m)),
  };
  const spec: ModelSpec = {
    task: config.task_type === 'SEQ_CLS' ? 'classification' : 'causal-lm',
    numLabels: extra.num_labels ?? 2,
    pooling: extra.pooling ?? 'mean',
    peft,
  };
  const filePath = join(dir, 'adapter_model.safetensors');
  const file = await readSafetensors(filePath);
  let tensors: NamedTensors = new Map(
    file.tensors.map((t) => [t.name.startsWith(PEFT_KEY_PREFIX) ? t.name.slice(PEFT_KEY_PREFIX.length) : t.name, t.data]),
  );
  if (modelConfig === undefined) return { spec, tensors, labels: extra.labels ?? [], qkRowLayout: stored };
  for (const { name, shape } of loraManifest(modelConfig, peft)) {
    const data = tensors.get(name);
    if (data === undefined) throw new InputFileError(ErrorCode.MODEL_FILE, `safetensors ${filePath}: tensor ${PEFT_KEY_PREFIX}${name} is missing`);
    if (data.length !== shape[0] * shape[1]) {
      const actual = file.tensors.find((t) => t.name === PEFT_KEY_PREFIX + name)?.shape ?? [data.length];
      throw new InputFileError(ErrorCode.MODEL_FILE, `safetensors ${filePath}: tensor ${PEFT_KEY_PREFIX}${name} has shape [${actual}], expected [${shape}]`);
    }
  }
  if (stored === 'hf') tensors = permuteLoraQk(tensors, modelConfig, 'hf-to-gguf');
  return { spec, tensors, labels: extra.labels ?? [], qkRowLayout: 'gguf' };
}

/**
 * The BERT branch of {@link loadPeftAdapter}: targets from `target_modules` (peft-bert.ts), the classifier from
 * `base_model.model.classifier.*` (its rows give the label count when the file has no `swarmtune` section); with
 * `modelConfig`, every manifest tensor is checked.
 */
async function loadBertPeftAdapter(dir: string, config: Record<string, unknown>, fail: (what: string) => never, modelConfig?: BertConfig): Promise<LoadedPeftAdapter> {
  const targets = bertTargetsOfModules(config.target_modules);
  if (targets === undefined) fail(`target_modules ${JSON.stringify(config.target_modules)} select no BERT encoder linear layers (query, key, value, attention.output.dense, intermediate.dense, output.dense)`);
  const filePath = join(dir, 'adapter_model.safetensors');
  const file = await readSafetensors(filePath);
  const tensors: NamedTensors = new Map(file.tensors.map((t) => [t.name.startsWith(PEFT_KEY_PREFIX) ? t.name.slice(PEFT_KEY_PREFIX.length) : t.name, t.data]));
  const extra = (config.swarmtune ?? {}) as { num_labels?: number; labels?: string[]; task?: string };
  const classifierRows = file.tensors.find((t) => t.name === `${PEFT_KEY_PREFIX}classifier.weight`)?.shape[0];
  // A masked-LM adapter (BertForMaskedLM): no classifier, PEFT task type none (or feature extraction).
  const isMlm = extra.task === 'masked-lm' || (classifierRows === undefined && (config.task_type === null || config.task_type === undefined || config.task_type === 'FEATURE_EXTRACTION'));
  const spec: ModelSpec = {
    task: isMlm ? 'causal-lm' : 'classification',
    numLabels: extra.num_labels ?? classifierRows ?? 2,
    pooling: 'mean',
    peft: {
      method: 'lora',
      r: Number(config.r),
      loraAlpha: Number(config.lora_alpha),
      loraDropout: Number(config.lora_dropout ?? 0),
      useRslora: Boolean(config.use_rslora),
      targetModules: targets as LoraTarget[],
    },
  };
  if (modelConfig !== undefined) {
    for (const { name, shape } of bertTrainableManifest(modelConfig, spec, { hasMlmHead: !tensors.has(BERT_MLM_DENSE_WEIGHT) })) {
      const data = tensors.get(name);
      if (data === undefined) throw new InputFileError(ErrorCode.MODEL_FILE, `safetensors ${filePath}: tensor ${PEFT_KEY_PREFIX}${name} is missing`);
      if (data.length !== shape.reduce((a, b) => a * b, 1)) {
        const actual = file.tensors.find((t) => t.name === PEFT_KEY_PREFIX + name)?.shape ?? [data.length];
        throw new InputFileError(ErrorCode.MODEL_FILE, `safetensors ${filePath}: tensor ${PEFT_KEY_PREFIX}${name} has shape [${actual}], expected [${shape}]`);
      }
    }
  }
  return { spec, tensors, labels: extra.labels ?? [], qkRowLayout: 'hf' };
}
