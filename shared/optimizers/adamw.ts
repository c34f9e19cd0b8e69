import type { TensorSpec } from '../tensors.js';
import { sizeOf } from '../tensors.js';

/** AdamW hyper-parameters (PyTorch/Hugging Face names and defaults). */
export interface AdamWOptions {
  /** @default 0.9 */
  readonly beta1: number;
  /** @default 0.999 */
  readonly beta2: number;
  /** @default 1e-8 */
  readonly epsilon: number;
  /** Decoupled weight decay, applied as `p -= lr * weightDecay * p`. @default 0 */
  readonly weightDecay: number;
}

/** Serialisable optimizer state: the step count and both moment estimates per parameter. */
export interface AdamWState {
  /** Number of updates applied so far. */
  step: number;
  readonly firstMoment: Map<string, Float64Array>;
  readonly secondMoment: Map<string, Float64Array>;
}

/** Fresh zero state for a manifest. */
export function initAdamWState(manifest: readonly TensorSpec[]): AdamWState {
  const firstMoment = new Map<string, Float64Array>();
  const secondMoment = new Map<string, Float64Array>();
  for (const spec of manifest) {
    firstMoment.set(spec.name, new Float64Array(sizeOf(spec.shape)));
    secondMoment.set(spec.name, new Float64Array(sizeOf(spec.shape)));
  }
  return { step: 0, firstMoment, secondMoment };
}

/**
 * One AdamW update in place, in float64, exactly as `torch.optim.AdamW`:
 *   p ← p − lr·λ·p;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
 *   p ← p − lr · (m / (1−β1ᵗ)) / (√(v / (1−β2ᵗ)) + ε)
 * `params` and `grads` hold the same names as the state.
 */
export function adamWStep(
  params: Map<string, Float64Array>,
  grads: Map<string, Float64Array>,
  state: AdamWState,
  options: AdamWOptions,
  learningRate: number,
): void {
  state.step += 1;
  const { beta1, beta2, epsilon, weightDecay } = options;
  const biasCorrection1 = 1 - beta1 ** state.step;
  const biasCorrection2 = 1 - beta2 ** state.step;
  for (const [name, p] of params) {
    const g = grads.get(name);
    const m = state.firstMoment.get(name);
    const v = state.secondMoment.get(name);
    if (!g || !m || !v) throw new Error(`adamWStep: no gradient or optimizer state for "${name}"`);
    for (let i = 0; i < p.length; i++) {
      p[i] -= learningRate * weightDecay * p[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g[i];
      v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
      p[i] -= (learningRate * (m[i] / biasCorrection1)) / (Math.sqrt(v[i] / biasCorrection2) + epsilon);
    }
  }
}
