/**
 * Error feedback for lossy codecs: what an encoding dropped is remembered per tensor name and added to that
 * tensor's next values, so over T calls Σ decoded = Σ inputs − final residual and nothing is lost for good.
 */
import { ErrorCode, ShapeError } from '../errors.js';
import type { TensorBlob } from '../protocol/messages.js';
import { checkLength } from './common.js';
import { decodeTensor, encodeTensor } from './tensor.js';
import type { CodecSpec } from './spec.js';

/**
 * Per-tensor residual memory around {@link encodeTensor}. Works for every codec (fp32 leaves a zero residual).
 * A tensor's shape is fixed by its first call; {@link reset} forgets everything (e.g. after a resync).
 */
export class ErrorFeedback {
  private readonly residuals = new Map<string, { shape: readonly number[]; residual: Float32Array }>();

  /**
   * Encodes `values` + the residual kept for `name`, then keeps as the new residual what the encoding dropped:
   * (values + residual) − decode(blob). The returned blob owns its data (it never views `values`).
   * @throws ShapeError E_TENSOR_SHAPE when `values` does not match `shape` or `name` was seen with another
   *   element count; E_TENSOR_NON_FINITE / E_TENSOR_RANGE from the codec (the residual is then left unchanged).
   */
  compress(name: string, shape: readonly number[], values: Float32Array, spec: CodecSpec): TensorBlob {
    const corrected = this.corrected(name, shape, values);
    const blob = encodeTensor(name, shape, corrected, spec);
    if (spec.codec === 'fp32') {
      this.residuals.get(name)?.residual.fill(0);
      return blob;
    }
    this.keep(name, shape, corrected, blob);
    return blob;
  }

  /**
   * `values` + the residual kept for `name` (a fresh array; the residual itself is unchanged). The first half of
   * {@link compress}, for callers that choose what to send themselves; finish with {@link keep}.
   * @throws ShapeError E_TENSOR_SHAPE as {@link compress}.
   */
  corrected(name: string, shape: readonly number[], values: Float32Array): Float32Array {
    const n = checkLength(name, shape, values);
    const entry = this.entry(name, shape, n);
    const corrected = new Float32Array(values);
    if (entry !== undefined) {
      const r = entry.residual;
      for (let i = 0; i < n; i++) corrected[i] += r[i];
    }
    return corrected;
  }

  /**
   * Keeps as the residual of `name` what `blob` dropped of `corrected`: corrected − decode(blob).
   * @throws ShapeError E_TENSOR_SHAPE as {@link compress}; CodecError when `blob` does not decode.
   */
  keep(name: string, shape: readonly number[], corrected: Float32Array, blob: TensorBlob): void {
    const n = checkLength(name, shape, corrected);
    const decoded = decodeTensor(blob);
    let entry = this.entry(name, shape, n);
    if (entry === undefined) {
      entry = { shape: [...shape], residual: new Float32Array(n) };
      this.residuals.set(name, entry);
    }
    const r = entry.residual;
    for (let i = 0; i < n; i++) r[i] = corrected[i] - decoded[i];
  }

  private entry(name: string, shape: readonly number[], n: number) {
    const entry = this.residuals.get(name);
    if (entry !== undefined && entry.residual.length !== n) {
      throw new ShapeError(
        ErrorCode.TENSOR_SHAPE,
        `tensor "${name}": error feedback holds a residual of shape [${entry.shape.join(', ')}], got [${shape.join(', ')}]`,
      );
    }
    return entry;
  }

  /** The residual currently held for `name` (a copy), or undefined when none is. */
  residual(name: string): Float32Array | undefined {
    const entry = this.residuals.get(name);
    return entry === undefined ? undefined : entry.residual.slice();
  }

  /**
   * Multiplies every residual by `factor` (residual decay: what is scaled away is dropped for good, so the sum of
   * what was sent plus the residual then falls short of the sum of the inputs by exactly the amounts removed).
   * @throws RangeError when `factor` is not in [0, 1]
   */
  scale(factor: number): void {
    if (!(factor >= 0 && factor <= 1)) throw new RangeError(`ErrorFeedback.scale: factor ${factor} is not in [0, 1]`);
    if (factor === 1) return;
    for (const { residual } of this.residuals.values()) {
      for (let i = 0; i < residual.length; i++) residual[i] *= factor;
    }
  }

  /** Forgets every residual. */
  reset(): void {
    this.residuals.clear();
  }
}
