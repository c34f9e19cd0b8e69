/**
 * The trainable tensors of a model on the device, shared by every model family: checked upload from plain arrays
 * and read-back in manifest order.
 */
import * as tf from '@tensorflow/tfjs';
import { ErrorCode, ShapeError } from '../errors.js';
import type { NamedTensors, TensorSpec } from '../tensors.js';
import { sizeOf } from '../tensors.js';

/**
 * Device copies of `values` for every tensor of `manifest` (copied: later changes to `values` do not reach them),
 * kept outside any tidy scope; the caller disposes the tensors they replace.
 * @throws ShapeError E_TENSOR_NAME for a missing or unknown name, E_TENSOR_SHAPE for a wrong element count.
 */
export function uploadTrainable(manifest: readonly TensorSpec[], values: NamedTensors): Map<string, tf.Tensor> {
  for (const name of values.keys()) {
    if (!manifest.some((s) => s.name === name)) {
      throw new ShapeError(ErrorCode.TENSOR_NAME, `setTrainable: "${name}" is not a trainable tensor of this model`);
    }
  }
  for (const { name, shape } of manifest) {
    const v = values.get(name);
    if (!v) throw new ShapeError(ErrorCode.TENSOR_NAME, `setTrainable: "${name}" is missing`);
    if (v.length !== sizeOf(shape)) {
      throw new ShapeError(ErrorCode.TENSOR_SHAPE, `setTrainable: "${name}" has ${v.length} values, expected [${shape.join(', ')}]`);
    }
  }
  const next = new Map<string, tf.Tensor>();
  for (const { name, shape } of manifest) next.set(name, tf.keep(tf.tensor(Float32Array.from(values.get(name) as Float32Array), [...shape], 'float32')));
  return next;
}

/** The values of `tensors` in manifest order, as plain float32 arrays. */
export function readTrainable(manifest: readonly TensorSpec[], tensors: ReadonlyMap<string, tf.Tensor>): NamedTensors {
  const out: NamedTensors = new Map();
  for (const { name } of manifest) out.set(name, (tensors.get(name) as tf.Tensor).dataSync() as Float32Array);
  return out;
}
