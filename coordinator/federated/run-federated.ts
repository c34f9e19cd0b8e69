/**
 * `mode: federated`: the run's shard plan, strategy and rounds, with centralized evaluation on the held-out set
 * and federated evaluation on clients, written to the same outputs as a data-parallel run (metrics.jsonl,
 * checkpoint-<round>/, adapter/, eval_results.json).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunConfig } from '../../shared/config.js';
import type { PreparedRun } from '../run.js';
import type { MetricsLog } from '../metrics.js';
import type { WorkerRegistry } from '../registry.js';
import { buildShardPlan, shardPlanSha256, type ShardPlan, type ShardPlanSpec } from '../../shared/data/shard-plan.js';
import { summarizeShardPlan } from '../../shared/data/shard-plan-summary.js';
import { mixSeeds } from '../../shared/data/index.js';
import type { LocalTrainingConfig } from '../../shared/protocol/messages.js';
import { loraScale } from '../../shared/adapters/lora.js';
import type { BatchStats } from '../../shared/model/types.js';
import type { NamedTensors } from '../../shared/tensors.js';
import { ConfigError, ErrorCode } from '../../shared/errors.js';
import { writeSafetensors } from '../../shared/formats/safetensors.js';
import { encodeTensor, isLossy, resolveCodec } from '../../shared/codecs/index.js';
import { toCodecPolicy } from '../../shared/config.js';
import { createStrategy } from './strategy.js';
import { STRATEGY_OPTION_KEYS, type StrategyOptions } from './strategy-options.js';
import { FederatedTrainer, type FederatedTrainerSnapshot, type PlannedClient, type RoundReport } from './federated-trainer.js';
import { runFedBuff } from './fedbuff.js';

/** What the run hands the federated mode. */
export interface FederatedRunContext {
  readonly config: RunConfig;
  readonly prepared: PreparedRun;
  readonly registry: WorkerRegistry;
  readonly metrics: MetricsLog;
  readonly outputDir: string;
  readonly log: (line: string) => void;
  /** Writes the adapter of `params` into `dir` (PEFT layout). */
  readonly saveAdapter: (dir: string, params: NamedTensors) => Promise<void>;
  /** Resumable checkpoints (coordinator/checkpoint.ts): where to continue from, and how to save after a round. @default none */
  readonly checkpoints?: FederatedCheckpoints;
}

/** The federated side of checkpoints: `trainer` is what {@link trainFederated} saves (model snapshot + strategy state). */
export interface FederatedCheckpoints {
  /** Rounds 1..`round` are done; `trainer` is a saved `{ model, strategy }`. */
  readonly resumeFrom?: { readonly round: number; readonly trainer: unknown };
  /** Whether to save a checkpoint after `round` (`save_strategy`). */
  readonly isSaveRound: (round: number) => boolean;
  readonly save: (round: number, files: { writeAdapter: (dir: string) => Promise<void>; writeExtra: (dir: string) => Promise<void>; trainer: unknown }) => Promise<void>;
}

/** What a federated run produced. */
export interface FederatedOutcome {
  readonly rounds: RoundReport[];
  readonly finalEval: BatchStats;
  readonly params: NamedTensors;
}

/** The shard plans of a run: training examples among clients, and (for federated evaluation) held-out examples. */
export function shardPlansOf(config: RunConfig, prepared: Pick<PreparedRun, 'rawTrain' | 'train' | 'eval' | 'labels'>, numClients: number): { train: ShardPlan; eval?: ShardPlan } {
  const spec = shardPlanSpec(config, numClients, prepared.train.length);
  const labelsOf = (items: readonly { label?: number }[]) => (config.task === 'classification' ? items.map((item) => item.label!) : undefined);
  const train = buildShardPlan(spec, { numExamples: prepared.train.length, labels: labelsOf(prepared.train), naturalIds: naturalIdsOf(config, prepared) });
  if (config.fraction_evaluate === 0) return { train };
  // Held-out examples follow the same method (a natural plan has no column on the eval side: IID there).
  // A client may hold no held-out examples (it is then not sampled for evaluation): no minimum size there.
  const evalSpec: ShardPlanSpec =
    spec.method === 'natural'
      ? { method: 'iid', num_clients: train.num_clients, seed: config.seed }
      : spec.method === 'dirichlet'
        ? { ...spec, num_clients: train.num_clients, min_partition_size: 0 }
        : { ...spec, num_clients: train.num_clients };
  const evalPlan = buildShardPlan({ ...evalSpec, seed: mixSeeds(config.seed, 0xe7a1) }, { numExamples: prepared.eval.length, labels: labelsOf(prepared.eval) });
  return { train, eval: evalPlan };
}

function shardPlanSpec(config: RunConfig, numClients: number, numExamples: number): ShardPlanSpec {
  switch (config.partition) {
    case 'iid':
      return { method: 'iid', num_clients: numClients, seed: config.seed };
    case 'dirichlet':
      // Flower's floor of 10 examples per client, relaxed to a quarter of the mean share for small datasets.
      return { method: 'dirichlet', num_clients: numClients, seed: config.seed, alpha: config.dirichlet_alpha, min_partition_size: Math.min(10, Math.floor(numExamples / numClients / 4)) };
    case 'pathological':
      return { method: 'pathological', num_clients: numClients, seed: config.seed, labels_per_client: config.labels_per_client };
    case 'natural':
      return { method: 'natural', num_clients: numClients, seed: config.seed, column: config.partition_column ?? config.label_column };
  }
}

/** Natural partitions group by a column; the prepared examples carry their label column only. */
function naturalIdsOf(config: RunConfig, prepared: Pick<PreparedRun, 'rawTrain'>): string[] | undefined {
  if (config.partition !== 'natural') return undefined;
  const column = config.partition_column ?? config.label_column;
  if (column !== config.label_column) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `partition "natural" by column "${column}": only the label column ("${config.label_column}") is read from the dataset today`);
  }
  return prepared.rawTrain.map((example) => example.label ?? '');
}

/** The strategy keys of the configuration, leaving unset (null) ones to the strategy's own defaults. */
export function strategyOptionsOf(config: RunConfig): StrategyOptions {
  const picked = Object.fromEntries(STRATEGY_OPTION_KEYS.map((key) => [key, config[key]]).filter(([, value]) => value !== null));
  return picked as StrategyOptions;
}

/** Runs `config.num_rounds` federated rounds; see the module comment. */
export async function trainFederated(ctx: FederatedRunContext, plans: { train: ShardPlan; eval?: ShardPlan }): Promise<FederatedOutcome> {
  const { config, prepared, registry, metrics, log } = ctx;
  const clients: PlannedClient[] = plans.train.clients.map((client) => ({
    id: clientName(client.id),
    indices: client.indices,
    evalIndices: plans.eval?.clients[client.id]?.indices,
  }));
  const strategy = createStrategy(strategyOptionsOf(config), { manifest: prepared.manifest, loraScale: prepared.modelSpec.peft.method === 'lora' ? loraScale(prepared.modelSpec.peft) : 1 });
  const paramsPolicy = toCodecPolicy(config.params_codec, config.params_codec_overrides);
  const clientIndex = new Map(clients.map((c, i) => [c.id, i]));
  const trainer = new FederatedTrainer(registry, strategy, {
    manifest: prepared.manifest,
    clients,
    placement: config.num_clients === -1 ? 'pinned' : 'virtual',
    delivery: config.data_delivery,
    train: prepared.train,
    eval: prepared.eval,
    initial: prepared.initial,
    seed: config.seed,
    localConfig: (round, clientId) => localTrainingConfigOf(config, round, clientIndex.get(clientId)!),
    roundTimeoutMs: config.round_timeout * 1000,
    minCompletionRate: config.min_completion_rate,
    minAvailableClients: config.min_available_clients,
    evalBatchSize: config.per_device_eval_batch_size,
    encodeParam: (name, shape, values) => encodeTensor(name, shape, values, resolveCodec(paramsPolicy, name)),
    isParamLossless: (name) => !isLossy(resolveCodec(paramsPolicy, name)),
  });
  const resumeFrom = ctx.checkpoints?.resumeFrom;
  if (resumeFrom) {
    if (config.async_buffer_size > 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, 'resume_from_checkpoint: FedBuff runs (async_buffer_size > 0) cannot resume yet');
    const saved = resumeFrom.trainer as { model: FederatedTrainerSnapshot; strategy: unknown };
    trainer.restoreState(saved.model);
    strategy.restore(saved.strategy);
  }
  const padId = prepared.loaded.tokenizer.padId;
  const evaluate = () => trainer.evaluateCentrally(prepared.eval, config.per_device_eval_batch_size, padId, config.task);

  if (config.eval_on_start && !resumeFrom) metrics.write({ event: 'eval', round: 0, ...evalFields(await evaluate()) });
  if (config.async_buffer_size > 0) {
    let aggregations = 0;
    await runFedBuff(trainer, registry, strategy, {
      numAggregations: config.num_rounds,
      bufferSize: config.async_buffer_size,
      stalenessExponent: config.staleness_exponent,
      serverLearningRate: config.server_learning_rate ?? 1,
      clientTimeoutMs: config.round_timeout * 1000,
      seed: config.seed,
      weightBy: config.weight_by,
      onAggregate: (report) => {
        aggregations++;
        metrics.write({
          event: 'round',
          round: report.version,
          mode: 'fedbuff',
          completed: report.clients.length,
          completed_clients: report.clients,
          staleness: report.staleness,
          failures: report.failures.map((f) => ({ client: f.clientId, code: f.code })),
          dropped: report.dropped,
          aggregated: true,
          train_loss: report.trainLoss,
          num_examples: report.numExamples,
          round_ms: report.wallMs,
        });
        log(`aggregation ${report.version}/${config.num_rounds} (FedBuff, K=${config.async_buffer_size}): staleness ${report.staleness.join(',')}, train_loss ${report.trainLoss.toFixed(4)}`);
      },
    });
    const finalEval = await evaluate();
    metrics.write({ event: 'eval', round: aggregations, ...evalFields(finalEval) });
    return { rounds: [], finalEval, params: trainer.globalFloat32() };
  }
  const rounds: RoundReport[] = [];
  let lastEval: BatchStats | undefined;
  // Sampling and local-training seeds derive from (seed, round): a resumed run draws what the uninterrupted one would.
  for (let round = (resumeFrom?.round ?? 0) + 1; round <= config.num_rounds; round++) {
    const report = await trainer.fitRound(round);
    rounds.push(report);
    const overhead = report.wallMs > 0 ? 1 - report.busiestWorkerComputeMs / report.wallMs : 0;
    metrics.write({
      event: 'round',
      round,
      sampled: report.sampled,
      completed: report.completed,
      completed_clients: report.completedClients,
      failures: report.failures.map((f) => ({ client: f.clientId, code: f.code })),
      stale: report.stale,
      aggregated: report.aggregated,
      train_loss: report.trainLoss,
      num_examples: report.numExamples,
      round_ms: report.wallMs,
      client_compute_ms: report.clientComputeMs,
      overhead_fraction: overhead,
      param_bytes: report.paramBytes,
      update_bytes: report.updateBytes,
      ...report.metrics,
    });
    const failed = report.failures.map((f) => `${f.clientId} ${f.code}`).join(', ');
    log(
      `round ${round}/${config.num_rounds}: ${report.completed}/${report.sampled} clients${report.aggregated ? '' : ' (skipped: below min_completion_rate)'}, ` +
        `train_loss ${report.trainLoss.toFixed(4)}, ${(report.wallMs / 1000).toFixed(1)} s${failed ? `; failed: ${failed}` : ''}${report.stale ? `; ${report.stale} stale` : ''}`,
    );
    if (plans.eval && config.fraction_evaluate > 0) {
      const federated = await trainer.evaluateRound(round);
      metrics.write({ event: 'federated_eval', round, ...federated.metrics, per_client: federated.results.map((r) => ({ client: r.clientId, loss: r.loss, accuracy: r.accuracy, examples: r.numExamples })) });
    }
    const isLast = round === config.num_rounds;
    const isEvalRound = isLast || (config.eval_every_rounds > 0 && round % config.eval_every_rounds === 0);
    if (isEvalRound) {
      lastEval = await evaluate();
      metrics.write({ event: 'eval', round, ...evalFields(lastEval) });
    }
    if (ctx.checkpoints?.isSaveRound(round)) {
      await ctx.checkpoints.save(round, {
        writeAdapter: (dir) => ctx.saveAdapter(dir, trainer.globalFloat32()),
        writeExtra: (dir) => saveResiduals(dir, trainer),
        trainer: { model: trainer.exportState(), strategy: strategy.state() },
      });
    } else if (isEvalRound) {
      await ctx.saveAdapter(join(ctx.outputDir, `checkpoint-${round}`), trainer.globalFloat32());
      await saveResiduals(join(ctx.outputDir, `checkpoint-${round}`), trainer);
    }
  }
  const finalEval = lastEval ?? (await evaluate());
  await saveResiduals(ctx.outputDir, trainer);
  return { rounds, finalEval, params: trainer.globalFloat32() };
}

/**
 * Exact LoRA aggregation leaves part of the global model in the base weights: `base_residuals.safetensors` holds
 * it (GGUF weight names, `[out, in]`), to add to the base before applying the adapter. Nothing is written otherwise.
 */
async function saveResiduals(dir: string, trainer: FederatedTrainer): Promise<void> {
  const residuals = trainer.baseResiduals();
  if (residuals.size === 0) return;
  await mkdir(dir, { recursive: true });
  const tensors = [...residuals].map(([name, r]) => ({ name, shape: [...r.shape], data: r.values }));
  await writeSafetensors(join(dir, 'base_residuals.safetensors'), tensors, { format: 'pt', swarmtune: 'exact LoRA aggregation residuals: add to the base weights' });
}

/**
 * What client `clientIndex` (its position in the shard plan) trains with in `round`: the run's local-training keys
 * and a seed of its own for that round (shuffles and dropout), so its update does not depend on where it runs.
 * `proximalMu` and `frozen` come from the strategy.
 */
export function localTrainingConfigOf(config: RunConfig, round: number, clientIndex: number): Omit<LocalTrainingConfig, 'frozen' | 'proximalMu'> {
  return {
    localEpochs: config.local_epochs,
    ...(config.local_steps > 0 ? { localSteps: config.local_steps } : {}),
    learningRate: config.learning_rate,
    batchSize: config.per_device_train_batch_size,
    optimizer: config.client_optimizer,
    momentum: config.client_momentum,
    weightDecay: config.weight_decay,
    maxGradNorm: config.max_grad_norm,
    seed: mixSeeds(config.seed, round, clientIndex),
  };
}

/** A client's id on the wire and in metrics. */
export function clientName(planId: number): string {
  return `client-${String(planId).padStart(4, '0')}`;
}

function evalFields(stats: BatchStats): { eval_loss: number; eval_accuracy: number } {
  return { eval_loss: stats.lossSum / stats.numLossItems, eval_accuracy: stats.numCorrect / stats.numLossItems };
}

export { shardPlanSha256, summarizeShardPlan };
