/**
 * Named float tensors as plain typed arrays: how trainable parameters and gradients move between the
 * model, the optimizer, checkpoints and the wire. TF.js tensors never leave the module that made them.
 */

/** Name and shape of one trainable tensor, in the canonical order of a model's manifest. */
export interface TensorSpec {
  readonly name: string;
  /** Row-major shape, PyTorch order (`[out, in]` for a linear weight). */
  readonly shape: readonly number[];
}

/** Trainable tensors or gradients by name; values are row-major float32. */
export type NamedTensors = Map<string, Float32Array>;

/** Number of elements of a shape. */
export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
