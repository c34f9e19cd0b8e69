/**
 * Parameter synchronisation by deltas: the coordinator sends a worker only the tensors that changed since the
 * version the worker holds, and the worker applies them. Both sides run the same {@link applyParamUpdate}, so the
 * coordinator's mirror of each worker's copy is bit-exact and lossy codecs never drift: the next delta is taken
 * against what the worker really holds, which carries whatever an earlier lossy delta left out.
 */
import { blobToFloat32, validateTensors } from './codec.js';
import type { ParamUpdate, TensorBlob } from './protocol/messages.js';

export type { ParamUpdate };
import type { NamedTensors, TensorSpec } from './tensors.js';

/** Encodes one tensor for the wire (fp32 by default; a lossy codec for deltas when configured). */
export type TensorEncoder = (name: string, shape: readonly number[], values: Float32Array) => TensorBlob;

/** Whether a tensor's delta must travel as absolute values (lossless) or as a difference (lossy codec). */
export type IsLossless = (name: string) => boolean;

interface Mirror {
  version: number;
  readonly held: NamedTensors;
}

/**
 * The coordinator's side: one mirror per worker of the float32 parameters it holds.
 * A worker without a mirror (new, lost, or one that reported a version mismatch) gets a full sync.
 */
export class ParamSync {
  private readonly mirrors = new Map<string, Mirror>();

  constructor(
    private readonly manifest: readonly TensorSpec[],
    private readonly encode: TensorEncoder,
    private readonly isLossless: IsLossless,
  ) {}

  /** The update that brings `workerId` to `version` with values `current`, and records it as applied. */
  updateFor(workerId: string, version: number, current: NamedTensors): ParamUpdate {
    const mirror = this.mirrors.get(workerId);
    if (mirror?.version === version) return { paramsVersion: version };
    if (!mirror) {
      const params = this.manifest.map((spec) => this.encode(spec.name, spec.shape, current.get(spec.name)!));
      const update: ParamUpdate = { paramsVersion: version, params };
      this.mirrors.set(workerId, { version, held: applyParamUpdate(undefined, update, this.manifest) });
      return update;
    }
    const params: TensorBlob[] = [];
    const paramsDelta: TensorBlob[] = [];
    for (const spec of this.manifest) {
      const target = current.get(spec.name)!;
      const held = mirror.held.get(spec.name)!;
      if (equalValues(target, held)) continue;
      if (this.isLossless(spec.name)) params.push(this.encode(spec.name, spec.shape, target));
      else paramsDelta.push(this.encode(spec.name, spec.shape, difference(target, held)));
    }
    const update: ParamUpdate = {
      paramsVersion: version,
      baseVersion: mirror.version,
      ...(params.length ? { params } : {}),
      ...(paramsDelta.length ? { paramsDelta } : {}),
    };
    applyParamUpdate(mirror.held, update, this.manifest);
    mirror.version = version;
    return update;
  }

  /** Forgets a worker's copy (lost, failed a request, or reported a version it should not hold): next time, full sync. */
  forget(workerId: string): void {
    this.mirrors.delete(workerId);
  }
}

/**
 * Applies an update to `held` in place (or builds the full set from a full sync when `held` is undefined) and returns
 * it. Values are validated against the manifest (names, shapes, dtype, finiteness) before anything changes.
 * @throws ShapeError for a bad tensor; nothing is applied then.
 */
export function applyParamUpdate(held: NamedTensors | undefined, update: ParamUpdate, manifest: readonly TensorSpec[]): NamedTensors {
  const subset = (blobs: readonly TensorBlob[]) => {
    const names = new Set(blobs.map((b) => b.name));
    return manifest.filter((spec) => names.has(spec.name));
  };
  const absolute = update.params ? validateTensors(update.params, update.baseVersion === undefined ? manifest : subset(update.params)) : new Map<string, Float32Array>();
  const deltas = update.paramsDelta ? validateTensors(update.paramsDelta, subset(update.paramsDelta)) : new Map<string, Float32Array>();
  const result: NamedTensors = held ?? new Map();
  for (const [name, values] of absolute) result.set(name, Float32Array.from(values));
  for (const [name, delta] of deltas) {
    const values = result.get(name)!;
    // A Float32Array store rounds the double sum: the correctly rounded float32 sum, identical on both sides.
    for (let i = 0; i < values.length; i++) values[i] = values[i] + delta[i];
  }
  return result;
}

function equalValues(a: Float32Array, b: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function difference(target: Float32Array, held: Float32Array): Float32Array {
  const out = new Float32Array(target.length);
  for (let i = 0; i < out.length; i++) out[i] = target[i] - held[i];
  return out;
}

