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
  /** Number of updates folded into the second moment (less than `step` once it is frozen). */
  secondMomentSteps: number;
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
  return { step: 0, secondMomentSteps: 0, firstMoment, secondMoment };
}

/**
 * One AdamW update in place, in float64, exactly as `torch.optim.AdamW`:
 *   p ← p − lr·λ·p;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
 *   p ← p − lr · (m / (1−β1ᵗ)) / (√(v / (1−β2ᵗ)) + ε)
 * `params` and `grads` hold the same names as the state.
 *
 * With `freezeSecondMoment` (1-bit Adam, Tang et al. 2021) v and its bias correction stay as they are, so the step
 * is linear in g: a gradient sent late by error feedback moves the weights as much as it would have on time, which
 * Adam's per-coordinate normalisation otherwise undoes (a residual held k steps becomes about one lr-sized step).
 * @default freezeSecondMoment false
 */
export function adamWStep(
  params: Map<string, Float64Array>,
  grads: Map<string, Float64Array>,
  state: AdamWState,
  options: AdamWOptions,
  learningRate: number,
  freezeSecondMoment = false,
): void {
  state.step += 1;
  if (!freezeSecondMoment) state.secondMomentSteps += 1;
  const { beta1, beta2, epsilon, weightDecay } = options;
  const biasCorrection1 = 1 - beta1 ** state.step;
  // A second moment frozen before any update is all zeros: dividing by ε alone would explode, so it is refused.
  if (state.secondMomentSteps === 0) throw new Error('adamWStep: the second moment is frozen before any update estimated it');
  const biasCorrection2 = 1 - beta2 ** state.secondMomentSteps;
  const decayV = freezeSecondMoment ? 1 : beta2;
  const gainV = freezeSecondMoment ? 0 : 1 - beta2;
  for (const [name, p] of params) {
    const g = grads.get(name);
    const m = state.firstMoment.get(name);
    const v = state.secondMoment.get(name);
    if (!g || !m || !v) throw new Error(`adamWStep: no gradient or optimizer state for "${name}"`);
    for (let i = 0; i < p.length; i++) {
      p[i] -= learningRate * weightDecay * p[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g[i];
      v[i] = decayV * v[i] + gainV * g[i] * g[i];
      p[i] -= (learningRate * (m[i] / biasCorrection1)) / (Math.sqrt(v[i] / biasCorrection2) + epsilon);
    }
  }
}
