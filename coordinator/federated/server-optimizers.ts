/**
 * Server optimizers over the aggregated client delta `Δ` (Reddi et al. 2021, "Adaptive Federated Optimization"),
 * with the update rules and defaults of Flower's FedAvgM, FedAdam, FedYogi and FedAdagrad strategies:
 *
 * - `none` (FedAvg): `x ← x + Δ`.
 * - `fedavgm` (Hsu et al. 2019, PyTorch SGD convention): pseudo-gradient `g = −Δ`; with momentum `μ > 0`,
 *   `m ← g` the first time, else `m ← μ·m + g`, and `g ← m`; then `x ← x − η·g`.
 * - `fedadam`: `m ← β₁m + (1−β₁)Δ`, `v ← β₂v + (1−β₂)Δ²`,
 *   `x ← x + η·√(1−β₂^(t+1))/(1−β₁^(t+1)) · m/(√v + τ)` with `t` the 1-based round number (Flower's bias
 *   correction, `server_round + 1`, kept as is so results match Flower's).
 * - `fedyogi`: `m` as Adam, `v ← v − (1−β₂)Δ²·sign(v − Δ²)`, `x ← x + η·m/(√v + τ)`.
 * - `fedadagrad`: `m` as Adam (Flower fixes `β₁ = 0`, so `m = Δ`), `v ← v + Δ²`, `x ← x + η·m/(√v + τ)`.
 *
 * Moments start at zero (Flower's `np.zeros_like`), in float64 like the coordinator's master weights.
 */
import { ConfigError, ErrorCode, ShapeError } from '../../shared/errors.js';
import type { NamedTensors64 } from './types.js';

/** Which server optimizer. */
export const ServerOptimizerKind = {
  NONE: 'none',
  FEDAVGM: 'fedavgm',
  FEDADAM: 'fedadam',
  FEDYOGI: 'fedyogi',
  FEDADAGRAD: 'fedadagrad',
} as const;
export type ServerOptimizerKind = (typeof ServerOptimizerKind)[keyof typeof ServerOptimizerKind];

/** Hyper-parameters; which apply depends on `kind` (see {@link defaultServerOptimizerOptions}). */
export interface ServerOptimizerOptions {
  readonly kind: ServerOptimizerKind;
  /** `η`, the server learning rate (Flower's `eta` / `server_learning_rate`). */
  readonly learningRate: number;
  /** `μ`, FedAvgM's server momentum. */
  readonly momentum: number;
  readonly beta1: number;
  readonly beta2: number;
  /** `τ`, the adaptivity constant added to `√v`. */
  readonly tau: number;
}

/**
 * Flower's defaults: fedavgm η 1, μ 0; fedadam η 0.1, β₁ 0.9, β₂ 0.99, τ 1e-9; fedyogi η 0.01, β₁ 0.9, β₂ 0.99,
 * τ 1e-3; fedadagrad η 0.1, β₁ 0, τ 1e-9; none η 1.
 */
export function defaultServerOptimizerOptions(kind: ServerOptimizerKind): ServerOptimizerOptions {
  const base = { kind, learningRate: 1, momentum: 0, beta1: 0, beta2: 0, tau: 0 };
  switch (kind) {
    case 'none':
    case 'fedavgm':
      return base;
    case 'fedadam':
      return { ...base, learningRate: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-9 };
    case 'fedyogi':
      return { ...base, learningRate: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3 };
    case 'fedadagrad':
      return { ...base, learningRate: 0.1, beta1: 0, tau: 1e-9 };
  }
}

/**
 * The optimizer's state: plain data and Float64Arrays, JSON-able apart from the typed arrays (which
 * msgpack and safetensors carry as they are), saved with a run checkpoint.
 */
export interface ServerOptimizerState {
  readonly kind: ServerOptimizerKind;
  /** Number of server steps applied so far. */
  step: number;
  /** First moment (FedAvgM's momentum buffer, adaptive methods' `m`) by tensor name; empty until first used. */
  m: Record<string, Float64Array>;
  /** Second moment `v` by tensor name; empty until first used and for `none` / `fedavgm`. */
  v: Record<string, Float64Array>;
}

/** A fresh state (step 0, no moments). */
export function initServerOptimizerState(kind: ServerOptimizerKind): ServerOptimizerState {
  return { kind, step: 0, m: {}, v: {} };
}

/**
 * Throw unless the hyper-parameters are usable: η > 0, μ in [0, 1), β₁, β₂ in [0, 1), τ ≥ 0, all finite.
 * @throws ConfigError E_CONFIG_INVALID naming the option.
 */
export function validateServerOptimizerOptions(o: ServerOptimizerOptions): void {
  const bad = (key: string, value: number, want: string): never => {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `${key} for ${o.kind} must be ${want}, got ${value}`);
  };
  if (!(o.learningRate > 0) || !Number.isFinite(o.learningRate)) bad('server_learning_rate', o.learningRate, 'a positive number');
  if (!(o.momentum >= 0 && o.momentum < 1)) bad('server_momentum', o.momentum, 'in [0, 1)');
  if (!(o.beta1 >= 0 && o.beta1 < 1)) bad('beta_1', o.beta1, 'in [0, 1)');
  if (!(o.beta2 >= 0 && o.beta2 < 1)) bad('beta_2', o.beta2, 'in [0, 1)');
  if (!(o.tau >= 0) || !Number.isFinite(o.tau)) bad('tau', o.tau, 'a finite number ≥ 0');
}

/** The moment buffer for `name`, created as zeros on first use. */
function buffer(store: Record<string, Float64Array>, name: string, size: number): Float64Array {
  let b = store[name];
  if (!b) {
    b = new Float64Array(size);
    store[name] = b;
  }
  return b;
}

/**
 * One server step: returns NEW global values for every tensor of `delta` (inputs are not modified) and updates
 * `state` (moments, step) in place. Tensors of `current` absent from `delta` are not returned.
 * @param round 1-based round number (FedAdam's bias correction uses it, as Flower does).
 * @throws ShapeError E_TENSOR_NAME / E_TENSOR_SHAPE when `current` lacks a tensor of `delta` or sizes differ.
 * @throws ConfigError E_CONFIG_INVALID when `state.kind` is not `options.kind`.
 */
export function serverOptimizerStep(
  current: ReadonlyMap<string, Float64Array>,
  delta: ReadonlyMap<string, Float64Array>,
  state: ServerOptimizerState,
  options: ServerOptimizerOptions,
  round: number,
): NamedTensors64 {
  if (state.kind !== options.kind) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `server optimizer state is for ${state.kind}, the strategy uses ${options.kind}`);
  }
  const { learningRate: eta, momentum, beta1, beta2, tau } = options;
  const etaNorm =
    options.kind === 'fedadam' ? (eta * Math.sqrt(1 - beta2 ** (round + 1))) / (1 - beta1 ** (round + 1)) : eta;
  // Check every tensor before touching the moments, so a refused step leaves the state as it was.
  for (const [name, d] of delta) {
    const x = current.get(name);
    if (!x) throw new ShapeError(ErrorCode.TENSOR_NAME, `server optimizer: no current value for tensor "${name}"`);
    if (x.length !== d.length) throw new ShapeError(ErrorCode.TENSOR_SHAPE, `server optimizer: tensor "${name}" has ${x.length} values, its delta ${d.length}`);
    for (const store of [state.m, state.v]) {
      if (store[name] && store[name].length !== d.length) {
        throw new ShapeError(ErrorCode.TENSOR_SHAPE, `server optimizer: moment "${name}" has ${store[name].length} values, the tensor ${d.length}`);
      }
    }
  }
  const out: NamedTensors64 = new Map();
  for (const [name, d] of delta) {
    const x = current.get(name)!;
    const next = new Float64Array(x.length);
    switch (options.kind) {
      case 'none':
        for (let j = 0; j < x.length; j++) next[j] = x[j] + d[j];
        break;
      case 'fedavgm': {
        if (momentum > 0) {
          const isFirst = state.m[name] === undefined;
          const m = buffer(state.m, name, x.length);
          for (let j = 0; j < x.length; j++) m[j] = isFirst ? -d[j] : momentum * m[j] - d[j];
          for (let j = 0; j < x.length; j++) next[j] = x[j] - eta * m[j];
        } else {
          for (let j = 0; j < x.length; j++) next[j] = x[j] + eta * d[j];
        }
        break;
      }
      case 'fedadam':
      case 'fedyogi':
      case 'fedadagrad': {
        const m = buffer(state.m, name, x.length);
        const v = buffer(state.v, name, x.length);
        for (let j = 0; j < x.length; j++) {
          const g = d[j];
          const g2 = g * g;
          m[j] = beta1 * m[j] + (1 - beta1) * g;
          if (options.kind === 'fedadam') v[j] = beta2 * v[j] + (1 - beta2) * g2;
          else if (options.kind === 'fedyogi') v[j] = v[j] - (1 - beta2) * g2 * Math.sign(v[j] - g2);
          else v[j] = v[j] + g2;
          next[j] = x[j] + (etaNorm * m[j]) / (Math.sqrt(v[j]) + tau);
        }
        break;
      }
    }
    out.set(name, next);
  }
  state.step += 1;
  return out;
}

/** A deep copy of a state, e.g. to write it with a checkpoint while training goes on. */
export function cloneServerOptimizerState(state: ServerOptimizerState): ServerOptimizerState {
  const copy = (r: Record<string, Float64Array>) => Object.fromEntries(Object.entries(r).map(([k, b]) => [k, Float64Array.from(b)]));
  return { kind: state.kind, step: state.step, m: copy(state.m), v: copy(state.v) };
}

/**
 * A state read back from a checkpoint (after msgpack or JSON): checks its shape and copies the moments into
 * Float64Arrays (plain number arrays are accepted).
 * @throws ConfigError E_CONFIG_INVALID when `raw` is not a server optimizer state of `kind`.
 */
export function restoreServerOptimizerState(raw: unknown, kind: ServerOptimizerKind): ServerOptimizerState {
  const fail = (why: string): never => {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `server optimizer state in checkpoint: ${why}`);
  };
  if (typeof raw !== 'object' || raw === null) return fail('not an object');
  const r = raw as Record<string, unknown>;
  if (r.kind !== kind) return fail(`kind is ${JSON.stringify(r.kind)}, the strategy uses ${kind}`);
  if (!Number.isInteger(r.step) || (r.step as number) < 0) return fail(`step ${JSON.stringify(r.step)} is not an integer ≥ 0`);
  const moments = (key: 'm' | 'v'): Record<string, Float64Array> => {
    const value = r[key];
    if (typeof value !== 'object' || value === null) return fail(`"${key}" is not an object`);
    const out: Record<string, Float64Array> = {};
    for (const [name, arr] of Object.entries(value)) {
      if (!(arr instanceof Float64Array || arr instanceof Float32Array || Array.isArray(arr))) return fail(`"${key}.${name}" is not an array`);
      const copy = Float64Array.from(arr as ArrayLike<number>);
      if (!copy.every(Number.isFinite)) return fail(`"${key}.${name}" holds a non-finite value`);
      out[name] = copy;
    }
    return out;
  };
  return { kind, step: r.step as number, m: moments('m'), v: moments('v') };
}
