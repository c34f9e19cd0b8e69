import type { MessageBody, MessageOf } from '../shared/protocol/messages.js';
import { MsgKind } from '../shared/protocol/messages.js';
import { wireToBatch } from '../shared/protocol/batch.js';
import { tensorsToBlobs, validateTensors } from '../shared/codec.js';
import { ErrorCode, OrchestratorError } from '../shared/errors.js';
import type { TaskModel } from '../shared/model/task-model.js';

/**
 * The compute side of a data-parallel rank: holds the task model, installs parameters when the coordinator
 * sends a new version, and answers gradient and evaluation requests. Pure request → reply; no I/O.
 */
export class DataParallelRank {
  /** Version of the trainable parameters installed in the model (-1 before the first). */
  private paramsVersion = -1;

  constructor(private readonly model: TaskModel) {}

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
      grads: tensorsToBlobs(grads, this.model.manifest),
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

  private installParams(request: MessageOf<typeof MsgKind.GRAD_REQUEST> | MessageOf<typeof MsgKind.EVAL_REQUEST>): void {
    if (request.params) {
      // Validated before it replaces anything, so a bad frame leaves the current parameters in place.
      this.model.setTrainable(validateTensors(request.params, this.model.manifest));
      this.paramsVersion = request.paramsVersion;
    } else if (request.paramsVersion !== this.paramsVersion) {
      throw new OrchestratorError(
        ErrorCode.PROTOCOL_UNEXPECTED,
        `request for parameter version ${request.paramsVersion} came without parameters, but this worker holds version ${this.paramsVersion}`,
      );
    }
  }
}
