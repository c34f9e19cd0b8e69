/**
 * `swarmtune eval`: the held-out metrics of a model, with or without an adapter, on the run configuration's
 * dataset and task (the same split a `run` with that configuration evaluates on). Prints one JSON object.
 * Either family: a LLaMA-family model (GGUF or HF directory) for every task, a BERT-family HF directory for
 * `classification` and `causal-lm` (which on an encoder is masked-LM, scored on the run's fixed evaluation mask).
 */
import { resolveConfig, toPeftSpec } from '../shared/config.js';
import { prepareRunData } from '../shared/data/index.js';
import { ConfigError, ErrorCode } from '../shared/errors.js';
import { loadPeftAdapter } from '../shared/formats/peft-adapter.js';
import { buildTrainableModel } from '../shared/model/build-trainable-model.js';
import { evaluateHeldOut, type HeldOutMetrics } from '../shared/model/held-out-eval.js';
import { loadBaseModel } from '../shared/model/load-model.js';
import { mlmMaskingOf } from '../shared/model/mlm-plan.js';
import { modelTaskOf, type ModelSpec } from '../shared/model/types.js';
import { selectBackend, type BackendPreference } from './backend.js';

/** The flags of `swarmtune eval`. */
export interface EvalFlags {
  readonly model?: string;
  readonly adapter?: string;
  readonly config?: string;
  readonly set: readonly string[];
  readonly backend: BackendPreference;
  /** Instruction: held-out prompts answered greedily. */
  readonly maxGenerate: string;
}

/**
 * Evaluate and return the metrics (also what the command prints), with `model` and `adapter` added.
 * Without an adapter the trainable tensors start as a run's would (seed `seed`; LoRA B = 0: the base model itself;
 * a classifier's head is the checkpoint's, else the seeded random one). Batches are `per_device_eval_batch_size`
 * consecutive held-out examples, as a run's evaluation cuts them, so an adapter's metrics equal the
 * `eval_results.json` of the run that wrote it (to float rounding).
 * @throws ConfigError E_CONFIG_INVALID for a bad flag, an adapter whose task does not match `task`, or
 *   `task: instruction` on a BERT model (an encoder does not generate); InputFileError for a missing or corrupt
 *   model, adapter or dataset.
 */
export async function evalCommand(flags: EvalFlags, log: (line: string) => void): Promise<HeldOutMetrics & { model: string; adapter: string | null }> {
  const maxGenerate = Number(flags.maxGenerate);
  if (!Number.isSafeInteger(maxGenerate) || maxGenerate < 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, `--max-generate must be an integer >= 0, got '${flags.maxGenerate}'`);
  const sets = flags.model === undefined ? flags.set : [...flags.set, `model=${JSON.stringify(flags.model)}`];
  const config = await resolveConfig({ file: flags.config, env: process.env, sets, onWarning: log });
  const backend = await selectBackend(flags.backend);
  log(`backend: ${backend.name}`);
  const loaded = await loadBaseModel(config.model);
  if (loaded.family === 'bert' && config.task === 'instruction') {
    throw new ConfigError(
      ErrorCode.CONFIG_INVALID,
      `task instruction needs a model that generates its answers, but ${config.model} is a BERT encoder: evaluate it with task classification or causal-lm (masked-LM)`,
    );
  }
  const adapter = flags.adapter ? await loadPeftAdapter(flags.adapter, loaded.config) : undefined;
  const data = await prepareRunData(config, loaded.tokenizer);
  const spec: ModelSpec = adapter?.spec ?? { task: modelTaskOf(config.task), numLabels: Math.max(2, data.labels.length), pooling: config.pooling, peft: toPeftSpec(config.peft) };
  if (spec.task !== modelTaskOf(config.task)) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `adapter ${flags.adapter} was trained for ${spec.task}, but task is ${config.task} (set task=...)`);
  }
  const mlm = mlmMaskingOf(loaded, spec, config.seed);
  const model = buildTrainableModel(loaded, spec);
  try {
    model.setTrainable(adapter ? adapter.tensors : model.initTrainable(config.seed));
    log(`evaluating ${data.eval.length} held-out examples of ${config.dataset} (${config.task}${mlm ? ', masked-LM' : ''})`);
    const metrics = evaluateHeldOut(model, loaded.tokenizer, config.task, data.eval, data.rawEval, { batchSize: config.per_device_eval_batch_size, maxGenerate, mlm });
    return { ...metrics, model: config.model, adapter: flags.adapter ?? null };
  } finally {
    model.dispose();
  }
}
