import type { MessageBody, MessageOf } from '../shared/protocol/messages.js';
import { MsgKind } from '../shared/protocol/messages.js';
import { wireToBatch } from '../shared/protocol/batch.js';
import { ErrorFeedback, encodeTensor, isLossy, resolveCodec, type CodecPolicy } from '../shared/codecs/index.js';
import { FP32_POLICY } from '../shared/codecs/index.js';
import type { NamedTensors } from '../shared/tensors.js';
import type { TaskModel } from '../shared/model/task-model.js';
import type { TensorBlob } from '../shared/protocol/messages.js';
import { HeldParams } from './held-params.js';
import { DEFAULT_TOPK_GRADIENT_OPTIONS, TopkGradientEncoder, type TopkGradientOptions } from './topk-gradients.js';

/**
 * The compute side of a data-parallel rank: holds the task model, installs parameters when the coordinator
 * sends a new version, and answers gradient and evaluation requests. Pure request → reply; no I/O.
 */
export class DataParallelRank {
  /** The installed parameters and their version, to which partial updates and deltas apply. */
  private readonly params: HeldParams;

  private readonly errorFeedback = new ErrorFeedback();
  private readonly topk: TopkGradientEncoder;

  /**
   * @param gradsPolicy codec of each gradient tensor on the wire. @default fp32 for all
   * @param useErrorFeedback keep what a lossy codec dropped and add it to the next step's gradient. @default true
   * @param topkOptions how `topk` tensors are chosen (warm-up, scope, ranking); its `errorFeedback` is
   *   `useErrorFeedback`. @default per-tensor magnitude, no warm-up
   */
  constructor(
    private readonly model: TaskModel,
    private readonly gradsPolicy: CodecPolicy = FP32_POLICY,
    private readonly useErrorFeedback = true,
    topkOptions: Omit<TopkGradientOptions, 'errorFeedback'> = DEFAULT_TOPK_GRADIENT_OPTIONS,
  ) {
    this.topk = new TopkGradientEncoder({ ...topkOptions, errorFeedback: useErrorFeedback });
    this.params = new HeldParams(model.manifest);
  }

  /**
   * Summed gradients for the request's batch.
   * @throws ShapeError when the parameters do not match the manifest (name, shape, dtype, finite values)
   * @throws OrchestratorError E_PROTOCOL_UNEXPECTED when parameters are omitted but this rank holds another version
   */
  gradients(request: MessageOf<typeof MsgKind.GRAD_REQUEST>): MessageBody<typeof MsgKind.GRAD_RESULT> {
    const started = performance.now();
    this.installParams(request);
    const { stats, grads } = this.model.computeGradients(wireToBatch(request.batch), { dropoutSeed: request.dropoutSeed });
    return {
      replyTo: request.id,
      step: request.step,
      grads: this.encodeGradients(request.step, grads),
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
    const sparseBlobs = this.topk.encode(step, sparse.map((t) => ({ name: t.name, shape: t.shape, values: t.values, spec: t.codec })));
    const byName = new Map(sparse.map((t, i) => [t.name, sparseBlobs[i]]));
    return specs.map((t) => byName.get(t.name) ?? this.encodeGradient(t.name, t.shape, t.values));
  }

  private encodeGradient(name: string, shape: readonly number[], values: Float32Array) {
    const spec = resolveCodec(this.gradsPolicy, name);
    return this.useErrorFeedback && isLossy(spec) ? this.errorFeedback.compress(name, shape, values, spec) : encodeTensor(name, shape, values, spec);
  }

  private installParams(request: MessageOf<typeof MsgKind.GRAD_REQUEST> | MessageOf<typeof MsgKind.EVAL_REQUEST>): void {
    // HeldParams validates every tensor before it changes anything: a bad frame leaves the parameters in place.
    const { params, changed } = this.params.apply(request);
    if (changed) this.model.setTrainable(params);
  }
}
