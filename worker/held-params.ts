/**
 * The trainable parameters a worker holds, at a version, exactly as the coordinator's ParamSync mirror of this
 * worker believes them to be: requests bring a full sync, a delta against the held version, or nothing when the
 * worker is current. Updates are validated whole before anything changes, so a bad frame leaves them in place.
 */
import type { ParamUpdate } from '../shared/protocol/messages.js';
import { applyParamUpdate } from '../shared/param-sync.js';
import type { NamedTensors, TensorSpec } from '../shared/tensors.js';
import { ErrorCode, OrchestratorError } from '../shared/errors.js';

export class HeldParams {
  /** Version held (-1 before the first sync). */
  private version = -1;
  private held?: NamedTensors;

  constructor(private readonly manifest: readonly TensorSpec[]) {}

  /** Version of the parameters held (-1 before the first). */
  get heldVersion(): number {
    return this.version;
  }

  /**
   * Brings the held parameters to the request's version and returns them, plus whether they changed.
   * @throws OrchestratorError E_PARAMS_VERSION when the update is relative to a version this worker does not hold,
   *   or brings no parameters for a version it does not hold (the coordinator answers with a full sync)
   * @throws ShapeError when a tensor does not match the manifest (name, shape, dtype, finite values)
   */
  apply(update: ParamUpdate): { params: NamedTensors; changed: boolean } {
    if (this.held && update.paramsVersion === this.version && !update.params && !update.paramsDelta) return { params: this.held, changed: false };
    const isFullSync = update.baseVersion === undefined;
    if (!isFullSync && (update.baseVersion !== this.version || !this.held)) {
      throw new OrchestratorError(
        ErrorCode.PARAMS_VERSION,
        `update to parameter version ${update.paramsVersion} is relative to version ${update.baseVersion}, but this worker holds version ${this.version}`,
      );
    }
    if (isFullSync && !update.params) {
      throw new OrchestratorError(
        ErrorCode.PARAMS_VERSION,
        `request for parameter version ${update.paramsVersion} came without parameters, but this worker holds version ${this.version}`,
      );
    }
    const next = applyParamUpdate(isFullSync ? undefined : this.held, update, this.manifest);
    this.held = next;
    this.version = update.paramsVersion;
    return { params: next, changed: true };
  }
}
