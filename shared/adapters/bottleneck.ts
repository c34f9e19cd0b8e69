/**
 * Houlsby bottleneck adapters (Houlsby et al. 2019, AdapterHub's `HoulsbyConfig` placement): after the attention
 * sub-layer and after the MLP sub-layer of every block, before the residual addition, the sub-layer output `y`
 * `[n, dim]` becomes
 *   y + act(y·Dᵀ + b_D)·Uᵀ + b_U,   D `[adapterSize, dim]`, U `[dim, adapterSize]`
 * `D` is drawn like LoRA's A (U(−1/√dim, 1/√dim)), `U` and both biases start at zero, so the adapted model starts
 * exactly at the base model.
 *
 * Names (AdapterHub has no Hugging Face module path for them): `model.layers.{i}.attn_adapter.down.weight`,
 * `.down.bias`, `.up.weight`, `.up.bias`, and the same under `mlp_adapter`.
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError, ErrorCode } from '../errors.js';
import type { ModelOps } from '../model/ops.js';
import type { BottleneckSpec, LlamaConfig } from '../model/types.js';
import { ADAPTER_NON_LINEARITIES } from '../model/types.js';
import type { NamedTensors, TensorSpec } from '../tensors.js';
import { sizeOf } from '../tensors.js';

/** Where an adapter sits: after the attention sub-layer or after the MLP. */
export type AdapterSite = 'attn' | 'mlp';

/** The parts of one adapter. */
export type AdapterPart = 'down.weight' | 'down.bias' | 'up.weight' | 'up.bias';

const PARTS: readonly AdapterPart[] = ['down.weight', 'down.bias', 'up.weight', 'up.bias'];

/** Name of one adapter tensor, e.g. `model.layers.1.mlp_adapter.up.weight`. */
export function bottleneckTensorName(layer: number, site: AdapterSite, part: AdapterPart): string {
  return `model.layers.${layer}.${site}_adapter.${part}`;
}

/**
 * Throw unless `spec` can be built: `adapterSize` a positive integer, a known non-linearity.
 * @throws ConfigError E_CONFIG_INVALID naming the field.
 */
export function validateBottleneckSpec(spec: BottleneckSpec): void {
  if (!Number.isInteger(spec.adapterSize) || spec.adapterSize <= 0) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `peft.adapter_size must be a positive integer, got ${spec.adapterSize}`);
  }
  if (!(ADAPTER_NON_LINEARITIES as readonly string[]).includes(spec.nonLinearity)) {
    throw new ConfigError(
      ErrorCode.CONFIG_INVALID,
      `peft.adapter_non_linearity: unknown "${String(spec.nonLinearity)}" (expected one of ${ADAPTER_NON_LINEARITIES.join(', ')})`,
    );
  }
}

/** Adapter tensors in canonical order: layers ascending, attn before mlp, then down.weight, down.bias, up.weight, up.bias. */
export function bottleneckManifest(config: LlamaConfig, spec: BottleneckSpec): TensorSpec[] {
  const out: TensorSpec[] = [];
  const shapes: Record<AdapterPart, number[]> = {
    'down.weight': [spec.adapterSize, config.dim],
    'down.bias': [spec.adapterSize],
    'up.weight': [config.dim, spec.adapterSize],
    'up.bias': [config.dim],
  };
  for (let layer = 0; layer < config.nLayers; layer++) {
    for (const site of ['attn', 'mlp'] as const) {
      for (const part of PARTS) out.push({ name: bottleneckTensorName(layer, site, part), shape: shapes[part] });
    }
  }
  return out;
}

/**
 * Seeded initial values: `down.weight` ~ U(−1/√dim, 1/√dim) drawn in manifest order from `rng`, everything else 0.
 * @param rng uniform [0, 1) source, consumed in manifest order.
 */
export function initBottleneckTensors(config: LlamaConfig, spec: BottleneckSpec, rng: () => number): NamedTensors {
  const out: NamedTensors = new Map();
  const bound = 1 / Math.sqrt(config.dim);
  for (const { name, shape } of bottleneckManifest(config, spec)) {
    const values = new Float32Array(sizeOf(shape));
    if (name.endsWith('down.weight')) for (let i = 0; i < values.length; i++) values[i] = (2 * rng() - 1) * bound;
    out.set(name, values);
  }
  return out;
}

/** The adapter's non-linearity, elementwise. */
export function applyNonLinearity(x: tf.Tensor2D, kind: BottleneckSpec['nonLinearity']): tf.Tensor2D {
  switch (kind) {
    case 'relu':
      return tf.relu(x);
    case 'tanh':
      return tf.tanh(x);
    case 'silu':
      return tf.mul(x, tf.sigmoid(x));
  }
}

/**
 * The adapted sub-layer output `y + act(y·Dᵀ + b_D)·Uᵀ + b_U` for `y` `[n, dim]`, differentiable in `y` and in
 * every adapter tensor (read from `params` by name).
 */
export function bottleneckForward(
  y: tf.Tensor2D,
  layer: number,
  site: AdapterSite,
  spec: BottleneckSpec,
  params: ReadonlyMap<string, tf.Tensor>,
  ops: ModelOps,
): tf.Tensor2D {
  const get = (part: AdapterPart): tf.Tensor => params.get(bottleneckTensorName(layer, site, part)) as tf.Tensor;
  const down = tf.add(ops.trainableLinear(y, get('down.weight') as tf.Tensor2D), get('down.bias')) as tf.Tensor2D;
  const up = tf.add(ops.trainableLinear(applyNonLinearity(down, spec.nonLinearity), get('up.weight') as tf.Tensor2D), get('up.bias'));
  return tf.add(y, up) as tf.Tensor2D;
}
