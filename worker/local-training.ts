/**
 * A federated client's local training for one round: start from the global trainable values, take local optimizer
 * steps on the client's own examples, and return the update `delta = client − global` with the counts the
 * coordinator weights it by.
 *
 * Each step, on a batch B drawn from a seeded shuffle of the client's examples:
 *   g = (1/|B|) · ∇ Σ_{i∈B} loss_i(w)             mean over the batch's loss-bearing items (as data-parallel)
 *   g ← g + μ·(w − w_global)                      FedProx: the gradient of μ/2·‖w − w_global‖² (μ = 0: FedAvg)
 *   g ← clip(g, maxGradNorm)                      global L2 norm over the trained tensors (0: off)
 *   w ← optimizer(w, g, learningRate)             SGD (torch semantics) or AdamW; float64 master weights
 * Frozen tensors (FFA-LoRA freezes every `lora_A`) keep their global values, get no update, no decay, and are
 * absent from the delta. The same inputs give the same delta: shuffles and dropout come from `config.seed`.
 */
import type { TrainableModel } from '../shared/model/trainable-model.js';
import type { LocalTrainingConfig } from '../shared/protocol/messages.js';
import type { TokenizedItem } from '../shared/data/types.js';
import type { NamedTensors, TensorSpec } from '../shared/tensors.js';
import { sizeOf } from '../shared/tensors.js';
import { batchIndices, collateBatch, mixSeeds } from '../shared/data/index.js';
import { adamWStep, clipGlobalNorm, initAdamWState, initSgdState, sgdStep, validateSgdOptions } from '../shared/optimizers/index.js';
import type { AdamWOptions, AdamWState, SgdOptions, SgdState } from '../shared/optimizers/index.js';
import { ConfigError, ErrorCode, OrchestratorError, ShapeError } from '../shared/errors.js';

/** Stream id mixed into `config.seed` for LoRA dropout masks (the shuffle uses shared/data/batching.ts's). */
const DROPOUT_STREAM = 0xd40f;

/** The examples of one client: positions in a dataset the worker holds. */
export interface ClientShard {
  /** Tokenized examples: the worker's training set, or the examples shipped with the request. */
  readonly dataset: readonly TokenizedItem[];
  /** This client's examples, as indices into `dataset` (in the order of the shard plan). */
  readonly indices: readonly number[];
}

/** How items are padded into batches (the task comes from the model). */
export interface PaddingOptions {
  /** Id written at padded positions. */
  readonly padId: number;
  /** Padded length: `longest` per batch or a fixed number of tokens. @default 'longest' */
  readonly seqLen?: 'longest' | number;
}

/**
 * The round's {@link LocalTrainingConfig} (as the `fit_request` frame carries it) plus optimizer settings the
 * frame leaves at their PyTorch defaults.
 */
export interface LocalTrainingOptions extends LocalTrainingConfig {
  /** SGD dampening. @default 0 */
  readonly dampening?: number;
  /** SGD Nesterov momentum. @default false */
  readonly nesterov?: boolean;
  /** AdamW β1. @default 0.9 */
  readonly adamBeta1?: number;
  /** AdamW β2. @default 0.999 */
  readonly adamBeta2?: number;
  /** AdamW ε. @default 1e-8 */
  readonly adamEpsilon?: number;
}

/** A client's local optimizer state, kept between rounds when the host keeps it. */
export type LocalOptimizerState = { readonly kind: 'sgd'; readonly state: SgdState } | { readonly kind: 'adamw'; readonly state: AdamWState };

/** Inputs of {@link trainLocally}. */
export interface LocalTrainingInput {
  /** The task model; its trainable tensors are overwritten (the caller reloads what it needs next). */
  readonly model: TrainableModel;
  /** The round's global value of every manifest tensor. */
  readonly global: NamedTensors;
  readonly shard: ClientShard;
  readonly config: LocalTrainingOptions;
  readonly padding: PaddingOptions;
  /** State from this client's previous round; a fresh one when absent or of another optimizer. */
  readonly optimizerState?: LocalOptimizerState;
}

/** What one client's local training produced. */
export interface LocalTrainingResult {
  /** `client − global` for every trained (not frozen) tensor, in manifest order. */
  readonly delta: NamedTensors;
  /** Examples in the client's shard (FedAvg's weight). */
  readonly numExamples: number;
  /** Real tokens in the client's shard (the token-weighted FedAvg's weight). */
  readonly numTokens: number;
  /** Examples processed over all local steps (an example seen twice counts twice). */
  readonly numExamplesSeen: number;
  /** Real tokens processed over all local steps. */
  readonly numTokensSeen: number;
  /** Mean loss over every loss-bearing item of every local step, each at the weights before its step, in nats. */
  readonly trainLoss: number;
  /** Optimizer steps taken. */
  readonly steps: number;
  /** The optimizer state after the last step (for the next round, if kept). */
  readonly optimizerState: LocalOptimizerState;
}

/** Names of every `lora_A` tensor of a manifest: what FFA-LoRA freezes. */
export function loraANames(manifest: readonly TensorSpec[]): string[] {
  return manifest.filter((spec) => spec.name.includes('.lora_A.')).map((spec) => spec.name);
}

/**
 * Trains one client for one round; see the module comment for the maths.
 * @throws ConfigError E_CONFIG_INVALID for an invalid config (names the field).
 * @throws ShapeError E_TENSOR_NAME for a frozen name that is not trainable or a missing global tensor, E_TENSOR_SHAPE
 *   for a global tensor of the wrong size, E_TENSOR_RANGE for an index outside the dataset, E_TENSOR_NON_FINITE when
 *   training diverges (the delta is not finite).
 * @throws OrchestratorError E_DATASET when the client has no examples.
 */
export async function trainLocally(input: LocalTrainingInput): Promise<LocalTrainingResult> {
  const { model, global, shard, config, padding } = input;
  validateLocalConfig(config);
  const frozen = new Set(config.frozen ?? []);
  for (const name of frozen) {
    if (!model.manifest.some((spec) => spec.name === name)) {
      throw new ShapeError(ErrorCode.TENSOR_NAME, `local training: frozen tensor "${name}" is not a trainable tensor of this model`);
    }
  }
  checkShard(shard);
  // Validates every global tensor's name and size before anything else changes.
  model.setTrainable(global);
  const trained = model.manifest.filter((spec) => !frozen.has(spec.name));
  const globalTrained = new Map(trained.map((spec) => [spec.name, Float64Array.from(global.get(spec.name) as Float32Array)]));
  const params = new Map([...globalTrained].map(([name, p]) => [name, Float64Array.from(p)]));
  const optimizer = optimizerFor(config, trained, input.optimizerState);

  const numExamples = shard.indices.length;
  let numTokens = 0;
  for (const i of shard.indices) numTokens += shard.dataset[i].ids.length;
  const totalSteps = config.localSteps ?? config.localEpochs * Math.ceil(numExamples / config.batchSize);
  let lossSum = 0;
  let numLossItems = 0;
  let numExamplesSeen = 0;
  let numTokensSeen = 0;
  let step = 0;
  for (let epoch = 0; step < totalSteps; epoch++) {
    for (const positions of batchIndices(numExamples, { batchSize: config.batchSize, seed: config.seed, epoch })) {
      if (step >= totalSteps) break;
      if (step > 0) model.setTrainable(withFrozen(params, global));
      const items = positions.map((p) => shard.dataset[shard.indices[p]]);
      const batch = collateBatch(items, { task: model.spec.task, padId: padding.padId, seqLen: padding.seqLen });
      const { stats, grads } = model.computeGradients(batch, { dropoutSeed: mixSeeds(config.seed, DROPOUT_STREAM, step) });
      // Mean over the batch's loss-bearing items; a batch without any (causal-lm of 1-token items) has zero gradient.
      const scale = stats.numLossItems > 0 ? 1 / stats.numLossItems : 0;
      const g = new Map<string, Float64Array>();
      for (const [name, p] of params) {
        const raw = grads.get(name) as Float32Array;
        const w0 = globalTrained.get(name) as Float64Array;
        const out = new Float64Array(raw.length);
        for (let i = 0; i < out.length; i++) out[i] = raw[i] * scale + config.proximalMu * (p[i] - w0[i]);
        g.set(name, out);
      }
      clipGlobalNorm(g, config.maxGradNorm);
      optimizer.step(params, g, config.learningRate);
      lossSum += stats.lossSum;
      numLossItems += stats.numLossItems;
      numExamplesSeen += stats.numSamples;
      numTokensSeen += stats.numTokens;
      step++;
      // A turn of the event loop between steps: a client with many local steps must not keep its worker from
      // answering the coordinator's pings (liveness) while it trains.
      await new Promise((resolveTurn) => setImmediate(resolveTurn));
    }
  }

  const delta: NamedTensors = new Map();
  for (const [name, p] of params) {
    const w0 = globalTrained.get(name) as Float64Array;
    const d = new Float32Array(p.length);
    for (let i = 0; i < d.length; i++) {
      d[i] = p[i] - w0[i];
      if (!Number.isFinite(d[i])) {
        throw new ShapeError(ErrorCode.TENSOR_NON_FINITE, `local training diverged: the delta of "${name}" is not finite after ${step} steps (lower learning_rate?)`);
      }
    }
    delta.set(name, d);
  }
  return {
    delta,
    numExamples,
    numTokens,
    numExamplesSeen,
    numTokensSeen,
    trainLoss: numLossItems > 0 ? lossSum / numLossItems : 0,
    steps: step,
    optimizerState: optimizer.state,
  };
}

/**
 * Throw unless `config` describes a possible local training.
 * @throws ConfigError E_CONFIG_INVALID naming the field.
 */
export function validateLocalConfig(config: LocalTrainingOptions): void {
  const invalid = (what: string) => new ConfigError(ErrorCode.CONFIG_INVALID, `local training: ${what}`);
  if (config.localSteps !== undefined) {
    if (!Number.isInteger(config.localSteps) || config.localSteps < 1) throw invalid(`local_steps must be an integer >= 1, got ${config.localSteps}`);
  } else if (!Number.isInteger(config.localEpochs) || config.localEpochs < 1) {
    throw invalid(`local_epochs must be an integer >= 1, got ${config.localEpochs}`);
  }
  if (!Number.isInteger(config.batchSize) || config.batchSize < 1) throw invalid(`batch size must be an integer >= 1, got ${config.batchSize}`);
  if (!(config.learningRate >= 0) || !Number.isFinite(config.learningRate)) throw invalid(`learning_rate must be a finite number >= 0, got ${config.learningRate}`);
  if (!(config.proximalMu >= 0) || !Number.isFinite(config.proximalMu)) throw invalid(`proximal_mu must be a finite number >= 0, got ${config.proximalMu}`);
  if (!(config.maxGradNorm >= 0)) throw invalid(`max_grad_norm must be >= 0, got ${config.maxGradNorm}`);
  if (!Number.isInteger(config.seed)) throw invalid(`seed must be an integer, got ${config.seed}`);
  if (config.optimizer !== 'sgd' && config.optimizer !== 'adamw') throw invalid(`optimizer must be "sgd" or "adamw", got "${String(config.optimizer)}"`);
  if (config.optimizer === 'sgd') validateSgdOptions(sgdOptionsOf(config));
  else {
    const { beta1, beta2, epsilon, weightDecay } = adamWOptionsOf(config);
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) throw invalid(`AdamW betas must be in [0, 1), got ${beta1}, ${beta2}`);
    if (!(epsilon > 0) || !(weightDecay >= 0)) throw invalid(`AdamW epsilon must be > 0 and weight decay >= 0, got ${epsilon}, ${weightDecay}`);
  }
}

/** The trainable values with the trained ones replaced by `params` (float32, as the model computes). */
function withFrozen(params: ReadonlyMap<string, Float64Array>, global: NamedTensors): NamedTensors {
  const out: NamedTensors = new Map(global);
  for (const [name, p] of params) out.set(name, Float32Array.from(p));
  return out;
}

function checkShard(shard: ClientShard): void {
  if (shard.indices.length === 0) throw new OrchestratorError(ErrorCode.DATASET, 'local training: the client has no training examples');
  for (const i of shard.indices) {
    if (!Number.isInteger(i) || i < 0 || i >= shard.dataset.length) {
      throw new ShapeError(ErrorCode.TENSOR_RANGE, `local training: example index ${i} is outside the dataset of ${shard.dataset.length} examples`);
    }
  }
}

interface LocalOptimizer {
  readonly state: LocalOptimizerState;
  step(params: Map<string, Float64Array>, grads: Map<string, Float64Array>, learningRate: number): void;
}

function optimizerFor(config: LocalTrainingOptions, trained: readonly TensorSpec[], previous: LocalOptimizerState | undefined): LocalOptimizer {
  if (config.optimizer === 'sgd') {
    const options = sgdOptionsOf(config);
    const state = previous?.kind === 'sgd' && matches(previous.state.momentumBuffer, trained, true) ? previous.state : initSgdState();
    return { state: { kind: 'sgd', state }, step: (p, g, lr) => sgdStep(p, g, state, options, lr) };
  }
  const options = adamWOptionsOf(config);
  const state = previous?.kind === 'adamw' && matches(previous.state.firstMoment, trained, false) ? previous.state : initAdamWState(trained);
  return { state: { kind: 'adamw', state }, step: (p, g, lr) => adamWStep(p, g, state, options, lr) };
}

/** Whether kept state fits the tensors trained now (a changed freeze set or model starts afresh). */
function matches(buffers: ReadonlyMap<string, Float64Array>, trained: readonly TensorSpec[], mayBeEmpty: boolean): boolean {
  if (mayBeEmpty && buffers.size === 0) return true;
  return buffers.size === trained.length && trained.every((spec) => buffers.get(spec.name)?.length === sizeOf(spec.shape));
}

function sgdOptionsOf(config: LocalTrainingOptions): SgdOptions {
  return { momentum: config.momentum, dampening: config.dampening ?? 0, nesterov: config.nesterov ?? false, weightDecay: config.weightDecay };
}

function adamWOptionsOf(config: LocalTrainingOptions): AdamWOptions {
  return { beta1: config.adamBeta1 ?? 0.9, beta2: config.adamBeta2 ?? 0.999, epsilon: config.adamEpsilon ?? 1e-8, weightDecay: config.weightDecay };
}
