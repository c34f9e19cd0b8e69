/**
 * Plain Adam on the host for model-level tests that only need parameters to move downhill (the system's optimizers
 * live in shared/optimizers and are tested there).
 */
import type { NamedTensors } from '../../shared/tensors.js';

/** One Adam step (β 0.9 / 0.999, ε 1e-8, bias-corrected at step `t` ≥ 1); `state` carries the moments between calls. */
export function adamStep(values: NamedTensors, grads: NamedTensors, state: Map<string, { m: Float32Array; v: Float32Array }>, t: number, lr: number): NamedTensors {
  const out: NamedTensors = new Map();
  for (const [name, p] of values) {
    const g = grads.get(name) as Float32Array;
    let s = state.get(name);
    if (!s) state.set(name, (s = { m: new Float32Array(p.length), v: new Float32Array(p.length) }));
    const next = new Float32Array(p.length);
    for (let i = 0; i < p.length; i++) {
      s.m[i] = 0.9 * s.m[i] + 0.1 * g[i];
      s.v[i] = 0.999 * s.v[i] + 0.001 * g[i] * g[i];
      next[i] = p[i] - (lr * s.m[i]) / (1 - 0.9 ** t) / (Math.sqrt(s.v[i] / (1 - 0.999 ** t)) + 1e-8);
    }
    out.set(name, next);
  }
  return out;
}
