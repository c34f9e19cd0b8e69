/**
 * `swarmtune eval`: the held-out metrics of a model, with or without an adapter, on the run configuration's
 * dataset and task (the same split a `run` with that configuration evaluates on). Prints one JSON object.
 */
import { resolveConfig, toPeftSpec } from '../shared/config.js';
import { prepareRunData } from '../shared/data/index.js';
import { ConfigError, ErrorCode } from '../shared/errors.js';
import { loadPeftAdapter } from '../shared/formats/peft-adapter.js';
import { evaluateHeldOut, type HeldOutMetrics } from '../shared/model/held-out-eval.js';
import { loadModel } from '../shared/model/load-model.js';
import { TaskModel } from '../shared/model/task-model.js';
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
 * Without an adapter the trainable tensors start as a run would (LoRA B = 0: the base model itself; a classifier's
 * head is then the seeded random one).
 * @throws ConfigError E_CONFIG_INVALID for a bad flag or an adapter whose task does not match `task`; InputFileError
 *   for a missing or corrupt model, adapter or dataset.
 */
export async function evalCommand(flags: EvalFlags, log: (line: string) => void): Promise<HeldOutMetrics & { model: string; adapter: string | null }> {
  const maxGenerate = Number(flags.maxGenerate);
  if (!Number.isSafeInteger(maxGenerate) || maxGenerate < 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, `--max-generate must be an integer >= 0, got '${flags.maxGenerate}'`);
  const sets = flags.model === undefined ? flags.set : [...flags.set, `model=${JSON.stringify(flags.model)}`];
  const config = await resolveConfig({ file: flags.config, env: process.env, sets, onWarning: log });
  const backend = await selectBackend(flags.backend);
  log(`backend: ${backend.name}`);
  const loaded = await loadModel(config.model);
  const adapter = flags.adapter ? await loadPeftAdapter(flags.adapter, loaded.config) : undefined;
  const data = await prepareRunData(config, loaded.tokenizer);
  const spec: ModelSpec = adapter?.spec ?? { task: modelTaskOf(config.task), numLabels: Math.max(2, data.labels.length), pooling: config.pooling, peft: toPeftSpec(config.peft) };
  if (spec.task !== modelTaskOf(config.task)) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `adapter ${flags.adapter} was trained for ${spec.task}, but task is ${config.task} (set task=...)`);
  }
  const model = TaskModel.create(loaded.config, loaded.weights, spec);
  try {
    model.setTrainable(adapter ? adapter.tensors : model.initTrainable(config.seed));
    log(`evaluating ${data.eval.length} held-out examples of ${config.dataset} (${config.task})`);
    const metrics = evaluateHeldOut(model, loaded.tokenizer, config.task, data.eval, data.rawEval, { batchSize: config.per_device_eval_batch_size, maxGenerate });
    return { ...metrics, model: config.model, adapter: flags.adapter ?? null };
  } finally {
    model.dispose();
  }
}
