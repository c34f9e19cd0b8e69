import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { RunConfig } from '../shared/config.js';
import { resolveOutputDir, toCodecPolicy, toPeftSpec } from '../shared/config.js';
import { encodeTensor, isLossy, resolveCodec } from '../shared/codecs/index.js';
import { batchIndices, batchesPerEpoch, prepareRunData, runDataSettings } from '../shared/data/index.js';
import type { RawExample, TokenizedItem } from '../shared/data/types.js';
import { describeBaseModel, loadBaseModel, trainablePlanOf, type LoadedBaseModel } from '../shared/model/load-model.js';
import { modelTaskOf, type BatchStats, type ModelSpec, type RunTask } from '../shared/model/types.js';
import { eosLearnabilityWarning } from '../shared/model/eos-lookalikes.js';
import { describeMlm, mlmMaskingOf } from '../shared/model/mlm-plan.js';
import type { MlmMasking } from '../shared/data/mlm-masking.js';
import type { TensorSpec } from '../shared/tensors.js';
import { writePeftAdapter } from '../shared/formats/peft-adapter.js';
import { resolveWarmupSteps } from '../shared/optimizers/index.js';
import { newRunId } from '../shared/ids.js';
import { ConfigError, ErrorCode, errorCodeOf } from '../shared/errors.js';
import { PACKAGE_VERSION } from '../shared/version.js';
import { DataParallelTrainer } from './data-parallel.js';
import { shardPlansOf, trainFederated } from './federated/run-federated.js';
import { formatShardSummary, summarizeShardPlan } from '../shared/data/shard-plan-summary.js';
import { shardPlanSha256 } from '../shared/data/shard-plan.js';
import { MetricsLog, type MetricsRecord } from './metrics.js';
import { WorkerRegistry } from './registry.js';
import { BlobServer } from './blob-server.js';
import { announceModel } from './model-announcement.js';
import { TrainableState, type TrainableStateSnapshot } from './trainable-state.js';
import { usesWorkerOptimizer, workerAdamWSettings } from './sparse-optimizer.js';
import { checkResumable, findResumePoint, isRoundSave, isStepSave, manifestLines, saveCheckpoint } from './checkpoint.js';
import type { CheckpointStateInput } from './checkpoint-state.js';
import { startWsServer, type WsServer } from './transport-ws.js';
import { createAuthenticator } from './auth.js';
import { createCoordinatorMetrics } from './prometheus.js';
import { registerTrainingMetrics, type WorkerFigures } from './prometheus-training.js';
import { handleHealthz } from './healthz.js';
import { authSettingsOf, tlsFilesOf } from './auth-settings.js';
import { redactSecrets } from '../shared/config/redact.js';
import { CHUNK_HEADER_SLACK_BYTES } from '../shared/protocol/chunking.js';
import { BestModelTracker, exportBestAdapter, type BestCheckpoint } from './best-model.js';
import { isStepEval } from '../shared/config/trainer-semantics.js';
import { createLiveDashboard, dashboardUrlOf } from './dashboard/live-dashboard.js';

/** Hooks into a run, for the CLI (start local workers once listening) and for tests. */
export interface RunHooks {
  /** Called once the WebSocket server listens, with the URL workers should dial. */
  readonly onListening?: (url: string) => void | Promise<void>;
  /** Each metrics record as it is written (the console reporter). */
  readonly onMetrics?: (record: MetricsRecord) => void;
  /** Progress lines for humans. @default console.error */
  readonly log?: (line: string) => void;
  /** Called once listening, with every worker's cumulative figures (progress bars read them as they redraw). */
  readonly onWorkerFigures?: (figures: () => WorkerFigures[]) => void;
}

/** What a finished run leaves behind. */
export interface RunResult {
  readonly outputDir: string;
  readonly steps: number;
  readonly evalLoss: number;
  readonly evalAccuracy: number;
  /** Final trainable parameters (float32, as workers saw them). */
  readonly params: Map<string, Float32Array>;
  /** Mean training loss of every step, in order. */
  readonly stepLosses: number[];
}

/** The prepared inputs of a run: model facts, tokenized data and the trainable manifest with initial values. */
export interface PreparedRun {
  readonly loaded: LoadedBaseModel;
  readonly modelSpec: ModelSpec;
  readonly labels: string[];
  readonly train: TokenizedItem[];
  readonly eval: TokenizedItem[];
  /** The raw training examples behind `train`, same order (shard plans read labels and columns from them). */
  readonly rawTrain: readonly RawExample[];
  /** The raw evaluation examples behind `eval`, same order (instruction runs compare greedy answers with them). */
  readonly rawEval?: readonly RawExample[];
  /** Digest of the tokenized training set (see `digestItems`): clients that load data themselves check it. */
  readonly trainSha256: string;
  readonly manifest: TensorSpec[];
  readonly initial: Map<string, Float32Array>;
  /** Masked-LM runs (`task: causal-lm` on BERT): how every batch is masked where it is collated. */
  readonly mlm?: MlmMasking;
}

/**
 * Runs synchronous data-parallel fine-tuning as the coordinator: prepares model and data, listens for workers,
 * waits for `config.workers` of them, trains for the configured epochs/steps with evaluation after each epoch,
 * and writes `run_config.json`, `manifest.json`, `metrics.jsonl`, `checkpoint-<step>/` adapters, `adapter/` and
 * `eval_results.json` into the output directory.
 */
export async function runCoordinator(config: RunConfig, hooks: RunHooks = {}): Promise<RunResult> {
  const log = hooks.log ?? ((line: string) => console.error(line));
  const runId = newRunId();
  const startedAt = new Date();
  // Resuming continues in the checkpoint's run folder (checkpoint.ts); the state is restored once the data is ready.
  const resumePoint = await findResumePoint(config, startedAt, (line) => log(`resume: ${line}`));
  const outputDir = resumePoint?.outputDir ?? resolve(resolveOutputDir(config.output_dir, startedAt));
  await mkdir(outputDir, { recursive: true });
  await writeJson(join(outputDir, 'run_config.json'), redactSecrets(config));
  // Read the secrets and certificates now, so that a missing file fails before the model is loaded.
  const security = { auth: authSettingsOf(config), tls: tlsFilesOf(config) };

  const prepared = await prepareRun(config);
  const { loaded, modelSpec, manifest } = prepared;
  log(`model ${loaded.path}: ${describeBaseModel(loaded)}; ${manifest.length} trainable tensors (${countParams(manifest)} parameters)`);
  if (prepared.mlm) log(describeMlm(loaded, config.seed));
  if (config.task === 'instruction' && loaded.family === 'llama') {
    const warning = eosLearnabilityWarning(loaded.config, loaded.weights, loaded.tokenizer.eosId, manifest);
    if (warning) log(`warning: ${warning}`);
  }
  log(`data: ${prepared.train.length} training and ${prepared.eval.length} evaluation examples${prepared.labels.length ? `, labels ${prepared.labels.join('/')}` : ''}`);

  const { globalBatchSize, totalSteps } = trainingPlan(config, prepared.train.length);
  const state = createTrainableState(config, prepared, totalSteps);
  if (resumePoint) {
    checkResumable(resumePoint, { config, modelSha256: loaded.sha256, trainSha256: prepared.trainSha256, manifest });
    log(`resuming from ${resumePoint.checkpointDir}`);
    if (resumePoint.state.progress.mode === 'data-parallel') state.restoreState(resumePoint.state.trainer as TrainableStateSnapshot);
  }
  const checkpointState = (progress: CheckpointStateInput['progress'], trainer: unknown): CheckpointStateInput => ({
    runId,
    config,
    modelSha256: loaded.sha256,
    trainSha256: prepared.trainSha256,
    manifest: manifestLines(manifest),
    progress,
    rng: { seed: config.seed },
    trainer,
  });
  const isFederated = config.mode === 'federated';
  const shardPlans = isFederated ? shardPlansOf(config, prepared, config.num_clients === -1 ? config.workers : config.num_clients) : undefined;
  const exampleLabels = config.task === 'classification' ? prepared.train.map((item) => prepared.labels[item.label!]) : undefined;
  const shardSummary = shardPlans ? summarizeShardPlan(shardPlans.train, exampleLabels) : undefined;
  if (shardSummary) log(`shard plan: ${formatShardSummary(shardSummary)}`);
  await writeJson(join(outputDir, 'manifest.json'), {
    run_id: runId,
    swarmtune_version: PACKAGE_VERSION,
    model: { path: loaded.path, sha256: loaded.sha256, config: loaded.config },
    tokenizer_sha256: loaded.tokenizer.sha256,
    model_spec: modelSpec,
    labels: prepared.labels,
    trainable: manifest,
    seed: config.seed,
    num_train_examples: prepared.train.length,
    num_eval_examples: prepared.eval.length,
    mode: config.mode,
    ...(shardPlans
      ? {
          shard_plan: { sha256: shardPlanSha256(shardPlans.train), summary: shardSummary, plan: shardPlans.train },
          ...(shardPlans.eval ? { eval_shard_plan: { sha256: shardPlanSha256(shardPlans.eval), plan: shardPlans.eval } } : {}),
        }
      : { global_batch_size: globalBatchSize, total_steps: totalSteps }),
  });

  const metrics = new MetricsLog(join(outputDir, 'metrics.jsonl'), hooks.onMetrics);
  // The dashboard page (coordinator/dashboard/), served beside /metrics: every record, and the worker table.
  const dashboard = createLiveDashboard({ run: { outputDir, mode: config.mode, workers: config.workers }, liveWorkers: () => registry.all() });
  metrics.addListener((record) => dashboard.onRecord(record));
  // Workers that lack the model (a GGUF file, or an HF directory's files) fetch it from here (worker/blob-fetch.ts).
  const blobs = new BlobServer();
  const modelRef = await announceModel(loaded.path, loaded.sha256, blobs, log).catch(async (err: unknown) => {
    await blobs.close();
    throw err;
  });
  const workerAdamW = workerAdamWSettings(config, manifest, totalSteps);
  const registry = new WorkerRegistry({
    blobs,
    runId,
    model: modelRef,
    modelSpec,
    manifest,
    quarantineStrikes: config.quarantine_strikes,
    settings: {
      mode: config.mode,
      data_delivery: config.data_delivery,
      data: runDataSettings(config),
      train_sha256: prepared.trainSha256,
      task: config.task,
      max_length: config.max_length,
      grads_codec: config.grads_codec,
      grads_codec_overrides: config.grads_codec_overrides,
      error_feedback: config.error_feedback,
      sparse_warmup_steps: config.sparse_warmup_steps,
      topk_scope: config.topk_scope,
      topk_selection: config.topk_selection,
      adam_beta2: config.adam_beta2,
      // sparse_optimizer: worker: the workers step AdamW themselves (coordinator/sparse-optimizer.ts).
      ...(workerAdamW ? { worker_adamw: workerAdamW } : {}),
      // Workers chunk their sends at the run's size (worker/worker-runtime.ts), under this side's maxPayload.
      chunk_size_bytes: config.chunk_size_bytes,
      // Workers stretch their own ping watchdog to fit this side's timers (worker/transport-ws.ts).
      heartbeat_interval_ms: config.heartbeat_interval_ms,
      heartbeat_timeout_ms: config.heartbeat_timeout_ms,
    },
  });
  registry.subscribe((event) => {
    if (event.type === 'joined') {
      const { session } = event;
      log(`worker ${session.id} joined from ${session.transport.peer} (${session.backend?.name}, ${session.capabilities?.cores} cores)`);
      metrics.write({ event: 'worker_joined', worker_id: session.id, backend: session.backend?.name, peer: session.transport.peer });
    } else if (event.type === 'lost') {
      log(`worker ${event.session.id} lost: ${event.reason}`);
      metrics.write({ event: 'worker_lost', worker_id: event.session.id, reason: event.reason });
    } else if (event.type === 'quarantined') {
      log(event.message);
      metrics.write({ event: 'worker_quarantined', worker_id: event.session.id, strikes: event.strikes, code: event.code, reason: event.message });
    } else log(`refused a worker from ${event.peer}: ${event.code} ${event.message}`);
  });

  const prometheus = createCoordinatorMetrics();
  // Steps, losses, throughput, per-worker bytes, failures, durations on /metrics (coordinator/prometheus-training.ts).
  const training = registerTrainingMetrics(prometheus.registry, registry);
  metrics.addListener((record) => training.onRecord(record));
  hooks.onWorkerFigures?.(() => training.workers());
  const server: WsServer = await startWsServer({
    host: config.host,
    port: config.port,
    chunkSizeBytes: config.chunk_size_bytes,
    maxPayloadBytes: config.chunk_size_bytes + CHUNK_HEADER_SLACK_BYTES,
    pingIntervalMs: config.heartbeat_interval_ms,
    pongTimeoutMs: config.heartbeat_timeout_ms,
    authenticator: createAuthenticator(security.auth, {
      onReject: ({ peer, reason, message }) => {
        log(`refused a worker from ${peer}: ${message}`);
        metrics.write({ event: 'auth_rejected', peer, reason });
      },
    }),
    tls: security.tls,
    onHttpRequest: (req, res) => prometheus.handleHttpRequest(req, res) || handleHealthz(req, res, { workersReady: () => registry.ready().length }) || dashboard.handleHttpRequest(req, res),
    onConnection: (connection) => {
      prometheus.watchConnection(connection);
      void registry.admit(connection);
      training.watchConnection(connection);
      dashboard.watchConnection(connection);
    },
  });
  try {
    log(`coordinator listening on ${server.url}; waiting for ${config.workers} worker(s)`);
    log(`dashboard: ${dashboardUrlOf(server.url)}`);
    await hooks.onListening?.(server.url);
    await registry.waitForReady(config.workers, config.join_timeout_ms);
    if (shardPlans) {
      metrics.write({ event: 'run_start', round: 0, num_rounds: config.num_rounds, num_clients: shardPlans.train.num_clients, workers: registry.ready().length });
      const outcome = await trainFederated(
        {
          config,
          prepared,
          registry,
          metrics,
          outputDir,
          log,
          saveAdapter: (dir, params) => writePeftAdapter(dir, params, prepared.manifest, { spec: prepared.modelSpec, baseModel: config.model, labels: prepared.labels, modelConfig: prepared.loaded.config }),
          checkpoints: {
            resumeFrom: resumePoint?.state.progress.mode === 'federated' ? { round: resumePoint.state.progress.round, trainer: resumePoint.state.trainer } : undefined,
            isSaveRound: (round) => isRoundSave(config, round, config.num_rounds),
            save: async (round, files) => {
              await saveCheckpoint({ runDir: outputDir, number: round, totalLimit: config.save_total_limit, writeAdapter: files.writeAdapter, writeExtra: files.writeExtra, state: checkpointState({ mode: 'federated', round }, files.trainer) });
            },
          },
        },
        shardPlans,
      );
      return await finishRun({ outputDir, config, prepared, registry, metrics, log }, outcome.finalEval, outcome.params, config.num_rounds, outcome.rounds.map((r) => r.trainLoss));
    }

    const paramsPolicy = toCodecPolicy(config.params_codec, config.params_codec_overrides);
    const trainer = new DataParallelTrainer(registry, state, {
      task: config.task,
      padId: loaded.tokenizer.padId,
      mlm: prepared.mlm,
      stepTimeoutMs: config.step_timeout_ms,
      onWorkerLoss: config.on_worker_loss,
      seed: config.seed,
      encodeParam: (name, shape, values) => encodeTensor(name, shape, values, resolveCodec(paramsPolicy, name)),
      isParamLossless: (name) => !isLossy(resolveCodec(paramsPolicy, name)),
      onSliceFailure: ({ workerId, sliceIndex, error, outcome }) => {
        log(`worker ${workerId} failed slice ${sliceIndex} of step ${state.step}, ${outcome}: ${errorCodeOf(error)} ${error.message}`);
        metrics.write({ event: 'slice_failed', step: state.step, worker_id: workerId, slice: sliceIndex, code: errorCodeOf(error), outcome });
      },
    });
    metrics.write({ event: 'run_start', step: state.step, ...(resumePoint ? { resumed_from: resumePoint.checkpointDir } : {}), total_steps: totalSteps, global_batch_size: globalBatchSize, workers: registry.ready().length });

    if (config.eval_on_start && !resumePoint) {
      const atStart = await trainer.evaluate(prepared.eval, config.per_device_eval_batch_size);
      metrics.write({ event: 'eval', step: 0, epoch: 0, ...evalFields(atStart, config.task) });
    }
    const stepLosses: number[] = [];
    const emptyWindow = { loss: 0, steps: 0, samples: 0, tokens: 0, ms: 0, paramBytes: 0, gradBytes: 0 };
    let window = emptyWindow;
    let lastEval: BatchStats | undefined;
    let lastEvalStep = -1;
    const resumedAt = resumePoint?.state.progress.mode === 'data-parallel' ? resumePoint.state.progress : undefined;
    // HF Trainer evaluation and best-model tracking (coordinator/best-model.ts); trainer_state.json in every checkpoint.
    const bestModel = new BestModelTracker(config);
    if (resumePoint) await bestModel.restoreFrom(resumePoint.checkpointDir);
    const evaluateAt = async (epoch: number) => {
      lastEval = await trainer.evaluate(prepared.eval, config.per_device_eval_batch_size);
      lastEvalStep = state.step;
      const fields = evalFields(lastEval, config.task);
      metrics.write({ event: 'eval', step: state.step, epoch, ...fields });
      bestModel.recordEval({ step: state.step, epoch, ...fields });
    };
    const saveDp = async (epoch: number, batchInEpoch: number) => {
      const checkpointDir = join(outputDir, `checkpoint-${state.step}`);
      if (config.load_best_model_at_end) bestModel.considerSave(checkpointDir, state.step);
      return saveCheckpoint({
        runDir: outputDir,
        number: state.step,
        totalLimit: config.save_total_limit,
        keepAlso: bestModel.best?.checkpointDir,
        writeAdapter: async (dir) => {
          await saveAdapter(dir, state, prepared, config);
          await bestModel.writeTrainerState(dir, state.step, round4(epoch + batchInEpoch / batchesPerEpoch(prepared.train.length, globalBatchSize)), totalSteps);
        },
        state: checkpointState({ mode: 'data-parallel', step: state.step, epoch, batchInEpoch, totalSteps }, state.exportState()),
      });
    };
    for (let epoch = resumedAt?.epoch ?? 0; state.step < totalSteps; epoch++) {
      const batches = batchIndices(prepared.train.length, { batchSize: globalBatchSize, seed: config.seed, epoch });
      // Data order is a pure function of (seed, epoch): a resumed run skips the batches its checkpoint had trained.
      const firstBatch = epoch === resumedAt?.epoch ? resumedAt.batchInEpoch : 0;
      for (const [batchIndex, globalBatch] of batches.entries()) {
        if (batchIndex < firstBatch) continue;
        if (state.step >= totalSteps) break;
        const report = await trainer.step(prepared.train, globalBatch);
        training.observeStep(report);
        stepLosses.push(report.loss);
        window = {
          loss: window.loss + report.loss,
          steps: window.steps + 1,
          samples: window.samples + report.stats.numSamples,
          tokens: window.tokens + report.stats.numTokens,
          ms: window.ms + report.wallMs,
          paramBytes: window.paramBytes + report.paramBytes,
          gradBytes: window.gradBytes + report.gradBytes,
        };
        const step = report.step + 1;
        if (step % config.logging_steps === 0 || step === totalSteps) {
          metrics.write({
            event: 'train',
            step,
            epoch: round4(epoch + (batchIndex + 1) / batches.length),
            loss: window.loss / window.steps,
            learning_rate: report.learningRate,
            grad_norm: report.gradNorm,
            samples_per_s: (window.samples / window.ms) * 1000,
            tokens_per_s: (window.tokens / window.ms) * 1000,
            param_bytes_per_step: window.paramBytes / window.steps,
            grad_bytes_per_step: window.gradBytes / window.steps,
            workers: report.numWorkers,
          });
          window = emptyWindow;
        }
        if (isStepEval(config, step)) await evaluateAt(round4(epoch + (batchIndex + 1) / batches.length));
        if (isStepSave(config, step, totalSteps)) await saveDp(epoch, batchIndex + 1);
      }
      if (config.eval_strategy === 'epoch') await evaluateAt(epoch + 1);
      if (config.save_strategy === 'epoch') await saveDp(epoch + 1, 0);
    }

    const finalEval = lastEval !== undefined && lastEvalStep === state.step ? lastEval : await trainer.evaluate(prepared.eval, config.per_device_eval_batch_size);
    const best = config.load_best_model_at_end ? bestModel.best : undefined;
    const result = await finishRun({ outputDir, config, prepared, registry, metrics, log }, finalEval, state.paramsFloat32(), state.step, stepLosses, best);
    await bestModel.writeTrainerState(outputDir, state.step, round4(state.step / batchesPerEpoch(prepared.train.length, globalBatchSize)), totalSteps);
    return result;
  } catch (err) {
    await registry.stopAll(`run failed: ${(err as Error).message}`);
    throw err;
  } finally {
    dashboard.close();
    await server.close();
    await blobs.close();
  }
}

/**
 * The end of every run: the final adapter, `eval_results.json`, the `run_end` record, and the workers stopped.
 * `steps` counts optimizer steps (data-parallel) or rounds (federated).
 */
async function finishRun(
  ctx: { outputDir: string; config: RunConfig; prepared: PreparedRun; registry: WorkerRegistry; metrics: MetricsLog; log: (line: string) => void },
  finalEval: BatchStats,
  params: Map<string, Float32Array>,
  steps: number,
  stepLosses: number[],
  best?: BestCheckpoint,
): Promise<RunResult> {
  const { outputDir, config, prepared, registry, metrics, log } = ctx;
  await writePeftAdapter(join(outputDir, 'adapter'), params, prepared.manifest, { spec: prepared.modelSpec, baseModel: config.model, labels: prepared.labels, modelConfig: prepared.loaded.config });
  // load_best_model_at_end: the exported adapter is the best checkpoint's, and its evaluation is the run's result.
  if (best) {
    await exportBestAdapter(best.checkpointDir, join(outputDir, 'adapter'));
    log(`best checkpoint: ${best.checkpointDir} (${config.metric_for_best_model ?? 'loss'} ${best.metric.toFixed(4)}); exported as adapter/`);
  }
  const stepKey = config.mode === 'federated' ? 'round' : 'step';
  const bestFields = best ? { ...best.evalMetrics, best_metric: best.metric, best_model_checkpoint: best.checkpointDir, best_global_step: best.step } : {};
  const results = { ...evalFields(finalEval, config.task), [stepKey]: steps, eval_samples: finalEval.numSamples, ...bestFields };
  await writeJson(join(outputDir, 'eval_results.json'), results);
  metrics.write({ event: 'run_end', [stepKey]: steps, ...evalFields(finalEval, config.task) });
  log(`done: ${steps} ${stepKey}s, eval_loss ${results.eval_loss.toFixed(4)}, eval_accuracy ${results.eval_accuracy.toFixed(4)}; outputs in ${outputDir}`);
  await registry.stopAll('training finished');
  return { outputDir, steps, evalLoss: results.eval_loss, evalAccuracy: results.eval_accuracy, params, stepLosses };
}

/** Global batch size and step counts of a run: the global batch is per-device batch × workers. */
export function trainingPlan(config: RunConfig, numTrainExamples: number): { globalBatchSize: number; stepsPerEpoch: number; totalSteps: number } {
  const globalBatchSize = config.per_device_train_batch_size * config.workers;
  const stepsPerEpoch = batchesPerEpoch(numTrainExamples, globalBatchSize);
  const totalSteps = config.max_steps > 0 ? config.max_steps : Math.ceil(config.num_train_epochs * stepsPerEpoch);
  return { globalBatchSize, stepsPerEpoch, totalSteps };
}

/** The global trainable state of a run: initial values, AdamW and the learning-rate schedule from the config. */
export function createTrainableState(config: RunConfig, prepared: Pick<PreparedRun, 'manifest' | 'initial'>, totalSteps: number): TrainableState {
  return new TrainableState(
    prepared.manifest,
    prepared.initial,
    { beta1: config.adam_beta1, beta2: config.adam_beta2, epsilon: config.adam_epsilon, weightDecay: config.weight_decay },
    {
      baseLearningRate: config.learning_rate,
      type: config.lr_scheduler_type,
      warmupSteps: resolveWarmupSteps(config.warmup_steps, config.warmup_ratio, totalSteps),
      totalSteps,
    },
    config.max_grad_norm,
    secondMomentFreezeStep(config, prepared.manifest),
    usesWorkerOptimizer(config, prepared.manifest) ? 'updates' : 'adamw',
  );
}

/** The step from which AdamW's second moment is frozen: after the dense warm-up of a run with topk gradients. */
function secondMomentFreezeStep(config: RunConfig, manifest: PreparedRun['manifest']): number {
  const policy = toCodecPolicy(config.grads_codec, config.grads_codec_overrides);
  const sparse = manifest.some((t) => resolveCodec(policy, t.name).codec === 'topk');
  return sparse && config.sparse_warmup_steps > 0 ? config.sparse_warmup_steps : Number.POSITIVE_INFINITY;
}

/** Loads the model and data, tokenizes, and builds the trainable manifest with its seeded initial values. */
export async function prepareRun(config: RunConfig): Promise<PreparedRun> {
  if (config.task === 'instruction' && config.mode === 'federated' && config.data_delivery === 'ship') {
    // Shipped examples carry ids and labels only, not where an instruction's prompt ends.
    throw new ConfigError(ErrorCode.CONFIG_INVALID, 'task: instruction with mode: federated needs data_delivery: local (shipped examples do not carry the prompt/response boundary)');
  }
  const loaded = await loadBaseModel(config.model);
  const data = await prepareRunData(config, loaded.tokenizer);
  const modelSpec: ModelSpec = {
    task: modelTaskOf(config.task),
    numLabels: Math.max(2, data.labels.length),
    pooling: config.pooling,
    peft: toPeftSpec(config.peft),
  };
  const plan = trainablePlanOf(loaded, modelSpec, config.seed, config.max_length);
  const mlm = mlmMaskingOf(loaded, modelSpec, config.seed);
  if (mlm && config.mode === 'federated') {
    // Federated clients collate their own batches (worker/local-training.ts), which do not mask yet.
    throw new ConfigError(ErrorCode.CONFIG_INVALID, 'task causal-lm on a BERT model (masked-LM) is not supported with mode: federated yet; use data-parallel');
  }
  return {
    loaded,
    modelSpec,
    labels: data.labels,
    train: data.train,
    eval: data.eval,
    rawTrain: data.rawTrain,
    rawEval: data.rawEval,
    trainSha256: data.trainSha256,
    manifest: plan.manifest,
    initial: plan.initial,
    ...(mlm ? { mlm } : {}),
  };
}

async function saveAdapter(dir: string, state: TrainableState, prepared: PreparedRun, config: RunConfig): Promise<void> {
  await writePeftAdapter(dir, state.paramsFloat32(), state.manifest, { spec: prepared.modelSpec, baseModel: config.model, labels: prepared.labels, modelConfig: prepared.loaded.config });
}

/**
 * The evaluation record: loss and accuracy (classification: per sequence; causal-lm and instruction: per target
 * token, instruction counting response tokens only), plus `perplexity` = exp(eval_loss) for the language-model tasks.
 */
function evalFields(stats: BatchStats, task: RunTask): { eval_loss: number; eval_accuracy: number; perplexity?: number } {
  const evalLoss = stats.lossSum / stats.numLossItems;
  const fields = { eval_loss: evalLoss, eval_accuracy: stats.numCorrect / stats.numLossItems };
  return task === 'classification' ? fields : { ...fields, perplexity: Math.exp(evalLoss) };
}

function countParams(manifest: readonly { shape: readonly number[] }[]): number {
  return manifest.reduce((n, spec) => n + spec.shape.reduce((a, b) => a * b, 1), 0);
}

function round4(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
}
