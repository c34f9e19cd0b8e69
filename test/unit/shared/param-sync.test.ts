import { describe, expect, it } from 'vitest';
import { float32Blob } from '../../../shared/codec.js';
import { ParamSync, applyParamUpdate, type ParamUpdate } from '../../../shared/param-sync.js';
import { mulberry32 } from '../../../shared/random.js';
import { ErrorCode } from '../../../shared/errors.js';
import type { NamedTensors } from '../../../shared/tensors.js';

const manifest = [
  { name: 'a', shape: [2, 3] },
  { name: 'b', shape: [4] },
];

function values(seed: number): NamedTensors {
  const rng = mulberry32(seed);
  return new Map(manifest.map((s) => [s.name, Float32Array.from({ length: s.shape.reduce((x, y) => x * y) }, () => rng() - 0.5)]));
}

/** A lossy wire: keeps 2 decimal places. */
const coarse = (name: string, shape: readonly number[], v: Float32Array) => float32Blob(name, shape, v.map((x) => Math.round(x * 100) / 100));

describe('ParamSync', () => {
  it('sends everything first, nothing when current, and only the changed tensor after a change', () => {
    const sync = new ParamSync(manifest, float32Blob, () => true);
    const v1 = values(1);
    const first = sync.updateFor('w', 1, v1);
    expect(first.baseVersion).toBeUndefined();
    expect(first.params?.map((b) => b.name)).toEqual(['a', 'b']);
    expect(sync.updateFor('w', 1, v1)).toEqual({ paramsVersion: 1 });
    const v2 = new Map(v1);
    v2.set('b', Float32Array.from([1, 2, 3, 4]));
    const second = sync.updateFor('w', 2, v2);
    expect(second.baseVersion).toBe(1);
    expect(second.params?.map((b) => b.name)).toEqual(['b']);
    expect(second.paramsDelta).toBeUndefined();
  });

  it('with a lossy codec the worker copy equals the mirror bit for bit and converges to the target', () => {
    const sync = new ParamSync(manifest, coarse, () => false);
    let worker: NamedTensors | undefined;
    const apply = (u: ParamUpdate) => (worker = applyParamUpdate(u.baseVersion === undefined ? undefined : worker, u, manifest));
    for (let version = 1; version <= 20; version++) apply(sync.updateFor('w', version, values(version)));
    // The target stops moving: repeated deltas against the exact copy close the gap that lossy encoding left.
    const target = values(99);
    for (let version = 21; version <= 30; version++) apply(sync.updateFor('w', version, target));
    for (const [name, t] of target) {
      const got = worker!.get(name)!;
      for (let i = 0; i < t.length; i++) expect(Math.abs(got[i] - t[i])).toBeLessThan(6e-3);
    }
    const deltaUpdate = sync.updateFor('w', 31, values(5));
    expect(deltaUpdate.paramsDelta?.length).toBe(2);
  });

  it('gives a full sync again after forget()', () => {
    const sync = new ParamSync(manifest, float32Blob, () => true);
    sync.updateFor('w', 1, values(1));
    sync.forget('w');
    expect(sync.updateFor('w', 2, values(2)).baseVersion).toBeUndefined();
  });

  it('validates before applying: a NaN delta leaves the held copy untouched', () => {
    const held = values(3);
    const before = new Float32Array(held.get('b')!);
    const bad: ParamUpdate = { paramsVersion: 2, baseVersion: 1, paramsDelta: [float32Blob('b', [4], Float32Array.from([0, Number.NaN, 0, 0]))] };
    expect(() => applyParamUpdate(held, bad, manifest)).toThrow(expect.objectContaining({ code: ErrorCode.TENSOR_NON_FINITE }));
    expect(held.get('b')).toEqual(before);
  });
});
