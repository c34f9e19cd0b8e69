/**
 * Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and (coupled, L2) weight
 * decay, exactly as `torch.optim.SGD`: a federated client's local optimizer and a plain reference.
 */
import { ConfigError, ErrorCode } from '../errors.js';

/** SGD hyper-parameters (PyTorch names and defaults). */
export interface SgdOptions {
  /** Momentum factor in [0, 1). @default 0 */
  readonly momentum: number;
  /** Dampening of the gradient added to the momentum buffer, in [0, 1]. @default 0 */
  readonly dampening: number;
  /** Nesterov momentum (requires `momentum` > 0 and `dampening` 0). @default false */
  readonly nesterov: boolean;
  /** L2 penalty added to the gradient as `g += weightDecay * p` (coupled, unlike AdamW's). @default 0 */
  readonly weightDecay: number;
}

/** Plain SGD: no momentum, no decay. */
export const DEFAULT_SGD_OPTIONS: SgdOptions = { momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 };

/** Serialisable optimizer state: the step count and one momentum buffer per parameter (made on first use). */
export interface SgdState {
  /** Number of updates applied so far. */
  step: number;
  readonly momentumBuffer: Map<string, Float64Array>;
}

/** Fresh state: no step taken, no momentum buffers yet. */
export function initSgdState(): SgdState {
  return { step: 0, momentumBuffer: new Map() };
}

/**
 * Throw unless `options` describe a valid SGD.
 * @throws ConfigError E_CONFIG_INVALID naming the option.
 */
export function validateSgdOptions(options: SgdOptions): void {
  const { momentum, dampening, nesterov, weightDecay } = options;
  if (!(momentum >= 0 && momentum < 1)) throw new ConfigError(ErrorCode.CONFIG_INVALID, `SGD momentum must be in [0, 1), got ${momentum}`);
  if (!(dampening >= 0 && dampening <= 1)) throw new ConfigError(ErrorCode.CONFIG_INVALID, `SGD dampening must be in [0, 1], got ${dampening}`);
  if (!(weightDecay >= 0) || !Number.isFinite(weightDecay)) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `SGD weight decay must be a finite number >= 0, got ${weightDecay}`);
  }
  if (nesterov && (momentum === 0 || dampening !== 0)) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `SGD Nesterov momentum needs momentum > 0 and dampening 0, got momentum ${momentum}, dampening ${dampening}`);
  }
}

/**
 * One SGD update in place, in float64, exactly as `torch.optim.SGD` (maximize off):
 *   g ← g + λ·p;  b ← g on the first step, else b ← μ·b + (1−τ)·g;  g ← g + μ·b (Nesterov) or g ← b;  p ← p − lr·g
 * (the momentum lines only when μ > 0). `grads` must hold every name of `params`; it is not modified.
 * @throws Error naming the tensor when a gradient is missing.
 */
export function sgdStep(
  params: Map<string, Float64Array>,
  grads: ReadonlyMap<string, Float64Array>,
  state: SgdState,
  options: SgdOptions,
  learningRate: number,
): void {
  const { momentum, dampening, nesterov, weightDecay } = options;
  for (const name of params.keys()) {
    if (!grads.has(name)) throw new Error(`sgdStep: no gradient for "${name}"`);
  }
  state.step += 1;
  for (const [name, p] of params) {
    const g = grads.get(name) as Float64Array;
    let buffer = momentum > 0 ? state.momentumBuffer.get(name) : undefined;
    const isFirst = buffer === undefined;
    if (momentum > 0 && !buffer) {
      buffer = new Float64Array(p.length);
      state.momentumBuffer.set(name, buffer);
    }
    for (let i = 0; i < p.length; i++) {
      let d = g[i] + weightDecay * p[i];
      if (buffer) {
        buffer[i] = isFirst ? d : momentum * buffer[i] + (1 - dampening) * d;
        d = nesterov ? d + momentum * buffer[i] : buffer[i];
      }
      p[i] -= learningRate * d;
    }
  }
}
