/** Seeded random client updates for the federated aggregation tests. */
import { mulberry32, randomNormal } from '../../../../shared/random.js';
import type { TensorSpec } from '../../../../shared/tensors.js';
import type { WeightedUpdate } from '../../../../coordinator/federated/types.js';

/** A small manifest of `numTensors` tensors with random shapes. */
export function randomSpecs(seed: number, numTensors: number): TensorSpec[] {
  const rng = mulberry32(seed);
  return Array.from({ length: numTensors }, (_, i) => ({
    name: `t${i}`,
    shape: [1 + Math.floor(rng() * 4), 1 + Math.floor(rng() * 5)],
  }));
}

/** `n` updates with N(0, scale²) deltas and weights in [0, 10) (some exactly 0 when `allowZero`). */
export function randomUpdates(seed: number, n: number, specs: readonly TensorSpec[], scale = 1, allowZero = false): WeightedUpdate[] {
  const rng = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => ({
    clientId: `c${i}`,
    weight: allowZero && rng() < 0.2 ? 0 : 0.1 + rng() * 10,
    deltas: new Map(
      specs.map(({ name, shape }) => {
        const size = shape.reduce((a, b) => a * b, 1);
        return [name, Float32Array.from({ length: size }, () => scale * randomNormal(rng))];
      }),
    ),
  }));
}

/** All tensors of an update concatenated in spec order, as plain float64 numbers. */
export function flat(tensors: ReadonlyMap<string, ArrayLike<number>>, specs: readonly TensorSpec[]): number[] {
  return specs.flatMap(({ name }) => Array.from(tensors.get(name)!));
}

/** Largest absolute difference of two number lists of equal length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
