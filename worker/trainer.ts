import type { MessageBody, MessageOf } from '../shared/protocol/messages.js';
import { MsgKind } from '../shared/protocol/messages.js';
import { wireToBatch } from '../shared/protocol/batch.js';
import { ErrorFeedback, encodeTensor, isLossy, resolveCodec, type CodecPolicy } from '../shared/codecs/index.js';
import { FP32_POLICY } from '../shared/codecs/index.js';
import type { NamedTensors } from '../shared/tensors.js';
import type { TrainableModel } from '../shared/model/trainable-model.js';
import type { TensorBlob } from '../shared/protocol/messages.js';
import { HeldParams } from './held-params.js';
import { DEFAULT_TOPK_GRADIENT_OPTIONS, TopkGradientEncoder, type TopkGradientOptions } from './topk-gradients.js';
import { LocalAdamWUpdates } from './local-adamw-updates.js';
import type { WorkerAdamWSettings } from '../shared/optimizers/index.js';

/**
 * The compute side of a data-parallel rank: holds the task model, installs parameters when the coordinator
 * sends a new version, and answers gradient and evaluation requests. Pure request → reply; no I/O.
 */
export class DataParallelRank {
  /** The installed parameters and their version, to which partial updates and deltas apply. */
  private readonly params: HeldParams;

  private readonly errorFeedback = new ErrorFeedback();
  private readonly topk: TopkGradientEncoder;
  /** Set with `sparse_optimizer: worker`: results are this worker's AdamW updates, not gradients. */
  private readonly localOptimizer?: LocalAdamWUpdates;
  private readonly lookahead: boolean;
  private readonly finalFlushStep?: number;
  private readonly localSettings?: WorkerAdamWSettings;
  private heldParams?: NamedTensors;
  /** `lookahead`: the model holds θ + residual, not the held θ. */
  private isShifted = false;

  /**
   * @param gradsPolicy codec of each gradient tensor on the wire. @default fp32 for all
   * @param useErrorFeedback keep what a lossy codec dropped and add it to the next step's gradient. @default true
   * @param topkOptions how `topk` tensors are chosen (warm-up, scope, ranking); its `errorFeedback` is
   *   `useErrorFeedback`. @default per-tensor magnitude, no warm-up
   * @param localOptimizer when given (`sparse_optimizer: worker`), every result is this worker's own AdamW update
   *   θ_new − θ (worker/local-adamw-updates.ts), encoded and error-fed like a gradient. @default undefined (gradients)
   */
  constructor(
    private readonly model: TrainableModel,
    private readonly gradsPolicy: CodecPolicy = FP32_POLICY,
    private readonly useErrorFeedback = true,
    topkOptions: Omit<TopkGradientOptions, 'errorFeedback'> = DEFAULT_TOPK_GRADIENT_OPTIONS,
    localOptimizer?: WorkerAdamWSettings,
  ) {
    this.topk = new TopkGradientEncoder({ ...topkOptions, errorFeedback: useErrorFeedback });
    this.params = new HeldParams(model.manifest);
    if (localOptimizer !== undefined) this.localOptimizer = new LocalAdamWUpdates(model.manifest, localOptimizer);
    this.lookahead = localOptimizer?.lookahead === true && useErrorFeedback;
    this.finalFlushStep = localOptimizer?.finalFlush === true ? localOptimizer.schedule.totalSteps - 1 : undefined;
    this.localSettings = localOptimizer;
  }

  /**
   * Summed gradients for the request's batch; with a local optimizer, this worker's AdamW update instead (its
   * gradient taken at θ + its residual when `lookahead` is set; topk entries ranked by |δ|·√v̂ with `selection:
   * fisher`, then momentum masking and residual decay as its settings say).
   * @throws ShapeError when the parameters do not match the manifest (name, shape, dtype, finite values)
   * @throws OrchestratorError E_PROTOCOL_UNEXPECTED when parameters are omitted but this rank holds another version
   */
  gradients(request: MessageOf<typeof MsgKind.GRAD_REQUEST>): MessageBody<typeof MsgKind.GRAD_RESULT> {
    const started = performance.now();
    this.installParams(request);
    if (this.lookahead) this.shiftByResidual();
    const { stats, grads } = this.model.computeGradients(wireToBatch(request.batch), { dropoutSeed: request.dropoutSeed });
    const values = this.localOptimizer ? this.localOptimizer.update(request.step, this.heldParams!, grads, stats.numLossItems) : grads;
    const encoded = this.encodeGradients(request.step, values);
    this.afterSparseSend(encoded);
    return {
      replyTo: request.id,
      step: request.step,
      grads: encoded,
      stats,
      computeMs: performance.now() - started,
    };
  }

  /** Loss and accuracy statistics for the request's batch, without gradients. */
  evaluate(request: MessageOf<typeof MsgKind.EVAL_REQUEST>): MessageBody<typeof MsgKind.EVAL_RESULT> {
    const started = performance.now();
    this.installParams(request);
    const stats = this.model.evaluate(wireToBatch(request.batch));
    return { replyTo: request.id, step: request.step, stats, computeMs: performance.now() - started };
  }

  /** Every gradient in manifest order; the topk ones together, since a global top-k ranks them as one. */
  private encodeGradients(step: number, grads: NamedTensors): TensorBlob[] {
    const specs = this.model.manifest.map((t) => ({ ...t, codec: resolveCodec(this.gradsPolicy, t.name), values: grads.get(t.name)! }));
    const sparse = specs.filter((t) => t.codec.codec === 'topk');
    // The last step of a run with `finalFlush` sends everything (topk at density 1 sends each value, residual included).
    const flush = this.finalFlushStep === step;
    const fisher = this.localSettings?.selection === 'fisher' ? this.localOptimizer : undefined;
    const sparseBlobs = this.topk.encode(
      step,
      sparse.map((t) => {
        const weights = fisher?.fisherWeights(t.name);
        return { name: t.name, shape: t.shape, values: t.values, spec: flush ? { codec: 'topk' as const, density: 1 } : t.codec, ...(weights ? { weights } : {}) };
      }),
    );
    const byName = new Map(sparse.map((t, i) => [t.name, sparseBlobs[i]]));
    return specs.map((t) => byName.get(t.name) ?? this.encodeGradient(t.name, t.shape, t.values));
  }

  /** Worker-side AdamW only: momentum masking of the coordinates just sent, then residual decay. */
  private afterSparseSend(blobs: readonly TensorBlob[]): void {
    const local = this.localOptimizer;
    const settings = this.localSettings;
    if (local === undefined || settings === undefined) return;
    if (settings.momentumMasking === true) {
      for (const blob of blobs) if (blob.codec === 'topk') local.maskFirstMoment(blob.name, topkIndices(blob.data));
    }
    if (settings.residualDecay !== undefined && settings.residualDecay !== 1) this.topk.scaleResiduals(settings.residualDecay);
  }

  private encodeGradient(name: string, shape: readonly number[], values: Float32Array) {
    const spec = resolveCodec(this.gradsPolicy, name);
    return this.useErrorFeedback && isLossy(spec) ? this.errorFeedback.compress(name, shape, values, spec) : encodeTensor(name, shape, values, spec);
  }

  private installParams(request: MessageOf<typeof MsgKind.GRAD_REQUEST> | MessageOf<typeof MsgKind.EVAL_REQUEST>): void {
    // HeldParams validates every tensor before it changes anything: a bad frame leaves the parameters in place.
    const { params, changed } = this.params.apply(request);
    this.heldParams = params;
    if (changed || this.isShifted) this.model.setTrainable(params);
    this.isShifted = false;
  }

  /** Installs θ + the residual of each topk tensor: where this worker's own AdamW would have taken the weights. */
  private shiftByResidual(): void {
    const shifted = new Map<string, Float32Array>();
    for (const [name, p] of this.heldParams!) {
      const r = this.topk.residual(name);
      shifted.set(name, r === undefined ? p : Float32Array.from(p, (x, i) => x + r[i]));
    }
    this.model.setTrainable(shifted);
    this.isShifted = true;
  }
}

/** The indices of a topk payload (its first half, 4 bytes each), copied out of the blob's bytes. */
function topkIndices(data: Uint8Array): Uint32Array {
  const k = data.byteLength / 8;
  const view = new DataView(data.buffer, data.byteOffset, 4 * k);
  return Uint32Array.from({ length: k }, (_, j) => view.getUint32(4 * j, true));
}
