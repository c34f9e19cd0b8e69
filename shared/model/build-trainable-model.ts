/**
 * The model-family dispatch on workers: a loaded base model and a spec to the {@link TrainableModel} that trains
 * it (kept apart from load-model.ts so that the coordinator, which only loads, does not pull in TF.js models).
 */
import { BertTaskModel } from './bert/bert-task-model.js';
import type { LoadedBaseModel } from './load-model.js';
import { TaskModel } from './task-model.js';
import type { TrainableModel } from './trainable-model.js';
import type { ModelSpec } from './types.js';

/**
 * Builds the trainable model for `spec` (uploads the base weights; select the TF.js backend first).
 * @throws ConfigError E_CONFIG_INVALID for a spec the model cannot build (for BERT: a target it lacks, a
 *   checkpoint classifier with another label count; `causal-lm` builds the masked-LM model).
 */
export function buildTrainableModel(loaded: LoadedBaseModel, spec: ModelSpec): TrainableModel {
  if (loaded.family === 'bert') return BertTaskModel.create(loaded, spec);
  return TaskModel.create(loaded.config, loaded.weights, spec);
}
