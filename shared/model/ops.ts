/**
 * The products a forward pass needs, behind one table so that the decoder can run either formulation:
 * `fast` (plain 2-D products with hand-written gradients: the default) or `naive` (textbook `tf.matMul` with
 * autodiff: the correctness reference and the benchmark baseline).
 */
import type * as tf from '@tensorflow/tfjs';
import { attention } from './attention.js';
import type { FrozenMatrix } from './linear-ops.js';
import { frozenLeftMatMul, frozenLinear, loraDelta, trainableLinear } from './linear-ops.js';
import { naiveAttention, naiveFrozenLeftMatMul, naiveFrozenLinear, naiveLoraDelta, naiveTrainableLinear } from './naive-ops.js';

/** How the model's products are written. */
export const FORMULATIONS = ['fast', 'naive'] as const;
export type Formulation = (typeof FORMULATIONS)[number];

/** The differentiable products of the model (see linear-ops.ts and attention.ts for their contracts). */
export interface ModelOps {
  readonly frozenLinear: (x: tf.Tensor2D, m: FrozenMatrix) => tf.Tensor2D;
  readonly frozenLeftMatMul: (m: FrozenMatrix, x: tf.Tensor2D) => tf.Tensor2D;
  readonly trainableLinear: (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D;
  readonly loraDelta: (x: tf.Tensor2D, a: tf.Tensor2D, b: tf.Tensor2D, scale: number) => tf.Tensor2D;
  readonly attention: (q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor3D, scale: number) => tf.Tensor4D;
}

const FAST_OPS: ModelOps = { frozenLinear, frozenLeftMatMul, trainableLinear, loraDelta, attention };
const NAIVE_OPS: ModelOps = {
  frozenLinear: naiveFrozenLinear,
  frozenLeftMatMul: naiveFrozenLeftMatMul,
  trainableLinear: naiveTrainableLinear,
  loraDelta: naiveLoraDelta,
  attention: naiveAttention,
};

/** The op table of a formulation. */
export function opsFor(formulation: Formulation): ModelOps {
  return formulation === 'fast' ? FAST_OPS : NAIVE_OPS;
}
