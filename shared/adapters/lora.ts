/**
 * LoRA (Hu et al. 2021) as PEFT defines it: for an adapted linear `y = W·x`, add `s · B·A·dropout(x)` with
 * `A` `[r, in]`, `B` `[out, r]`, `s = lora_alpha / r` (or `lora_alpha / sqrt(r)` with rsLoRA).
 *
 * This module owns the adapter's names, shapes, canonical order, initialisation, dropout masks and the merge into
 * the base weights; the differentiable product itself is `loraDelta` in shared/model/linear-ops.ts.
 *
 * Names are the Hugging Face / PEFT module paths without a prefix, e.g.
 * `model.layers.0.self_attn.q_proj.lora_A.weight`; a PEFT `adapter_model.safetensors` adds `base_model.model.`.
 *
 * Row order: the output rows of q and k (so the rows of their `lora_B`) follow the base weights as loaded, i.e.
 * the GGUF layout in which RoPE rotates ADJACENT pairs. llama.cpp permutes the q/k rows of Hugging Face checkpoints
 * into that layout on conversion, so an adapter meant for the Hugging Face original of such a model needs the
 * inverse permutation on q_proj / k_proj `lora_B` rows (llama2.c-born models such as stories260K have no HF original).
 */
import { ConfigError, ErrorCode, ShapeError } from '../errors.js';
import { GGUF_LINEAR_NAMES, linearShapeOf } from '../model/llama-config.js';
import type { BaseWeights, LlamaConfig, LoraSpec, LoraTarget } from '../model/types.js';
import { LORA_MODULES, LORA_TARGETS } from '../model/types.js';
import { initLoraEmbeddingTensors, loraEmbeddingManifest, mergeLoraEmbedding } from './lora-embedding.js';
import { mulberry32 } from '../random.js';
import type { NamedTensors, TensorSpec } from '../tensors.js';
import { sizeOf } from '../tensors.js';

/** Hugging Face module path (under `model.layers.{i}.`) of each LoRA target. */
export const LORA_MODULE_PATHS: Readonly<Record<LoraTarget, string>> = {
  q: 'self_attn.q_proj',
  k: 'self_attn.k_proj',
  v: 'self_attn.v_proj',
  o: 'self_attn.o_proj',
  gate: 'mlp.gate_proj',
  up: 'mlp.up_proj',
  down: 'mlp.down_proj',
};

/** Which LoRA factor: `A` `[r, in]` (down-projection) or `B` `[out, r]` (up-projection). */
export type LoraFactor = 'A' | 'B';

/** The tensor name of one LoRA factor, e.g. `model.layers.3.mlp.down_proj.lora_B.weight`. */
export function loraTensorName(layer: number, target: LoraTarget, factor: LoraFactor): string {
  return `model.layers.${layer}.${LORA_MODULE_PATHS[target]}.lora_${factor}.weight`;
}

/** The scale `s` applied to `B·A·x`: `loraAlpha / r`, or `loraAlpha / sqrt(r)` when `useRslora`. */
export function loraScale(spec: LoraSpec): number {
  return spec.useRslora ? spec.loraAlpha / Math.sqrt(spec.r) : spec.loraAlpha / spec.r;
}

/**
 * Throw unless `spec` can be built: `r` a positive integer, `loraAlpha` positive and finite, `loraDropout` in
 * `[0, 1)`, target modules known and not repeated.
 * @throws ConfigError E_CONFIG_INVALID naming the field.
 */
export function validateLoraSpec(spec: LoraSpec): void {
  if (!Number.isInteger(spec.r) || spec.r <= 0) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `peft.r must be a positive integer, got ${spec.r}`);
  }
  if (!(spec.loraAlpha > 0) || !Number.isFinite(spec.loraAlpha)) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `peft.lora_alpha must be a positive number, got ${spec.loraAlpha}`);
  }
  if (!(spec.loraDropout >= 0 && spec.loraDropout < 1)) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `peft.lora_dropout must be in [0, 1), got ${spec.loraDropout}`);
  }
  const seen = new Set<string>();
  for (const target of spec.targetModules) {
    if (!(LORA_MODULES as readonly string[]).includes(target)) {
      throw new ConfigError(
        ErrorCode.CONFIG_INVALID,
        `peft.target_modules: unknown module "${target}" (expected some of ${LORA_MODULES.join(', ')})`,
      );
    }
    if (seen.has(target)) throw new ConfigError(ErrorCode.CONFIG_INVALID, `peft.target_modules: "${target}" is listed twice`);
    seen.add(target);
  }
}

/**
 * The LINEAR targets of `spec` in canonical order (q, k, v, o, gate, up, down), whatever order the config used;
 * `embed` is not among them (see lora-embedding.ts).
 */
export function canonicalTargets(spec: LoraSpec): LoraTarget[] {
  return LORA_TARGETS.filter((t) => spec.targetModules.includes(t));
}

/**
 * The adapter's tensors in canonical order: layers ascending, then q, k, v, o, gate, up, down, A before B; then,
 * when `embed` is targeted, `lora_embedding_A` and `lora_embedding_B` (lora-embedding.ts).
 */
export function loraManifest(config: LlamaConfig, spec: LoraSpec): TensorSpec[] {
  const out: TensorSpec[] = [];
  const targets = canonicalTargets(spec);
  for (let layer = 0; layer < config.nLayers; layer++) {
    for (const target of targets) {
      const [outFeatures, inFeatures] = linearShapeOf(config, target);
      out.push({ name: loraTensorName(layer, target, 'A'), shape: [spec.r, inFeatures] });
      out.push({ name: loraTensorName(layer, target, 'B'), shape: [outFeatures, spec.r] });
    }
  }
  out.push(...loraEmbeddingManifest(config, spec));
  return out;
}

/**
 * PEFT's initialisation, drawn in manifest order from one seeded stream: `A` ~ U(−1/√in, 1/√in) (PyTorch's
 * `kaiming_uniform_(a=√5)` bound), `B` = 0, so that the adapted model starts exactly at the base model; the
 * embedding adapter the other way round (`A` = 0, `B` ~ N(0, 1), see lora-embedding.ts).
 * @param rng uniform [0, 1) source, e.g. `mulberry32(seed)`; consumed in manifest order.
 */
export function initLoraTensors(config: LlamaConfig, spec: LoraSpec, rng: () => number): NamedTensors {
  const out: NamedTensors = new Map();
  for (const { name, shape } of loraManifest(config, spec)) {
    if (!name.endsWith('.weight')) continue;
    const values = new Float32Array(sizeOf(shape));
    if (name.endsWith('lora_A.weight')) {
      const bound = 1 / Math.sqrt(shape[1]);
      for (let i = 0; i < values.length; i++) values[i] = (2 * rng() - 1) * bound;
    }
    out.set(name, values);
  }
  initLoraEmbeddingTensors(config, spec, rng, out);
  return out;
}

/** A 32-bit seed from several integers (order matters), so that each (step, layer, module) gets its own stream. */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    h = Math.imul(h ^ (part | 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/**
 * An inverted-dropout mask: each entry is 0 with probability `p`, else `1 / (1 − p)`; deterministic in `seed`.
 * @param numel number of entries.
 * @param p drop probability in `[0, 1)`.
 */
export function dropoutMask(numel: number, p: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  const keep = 1 / (1 - p);
  const mask = new Float32Array(numel);
  for (let i = 0; i < numel; i++) mask[i] = rng() < p ? 0 : keep;
  return mask;
}

/**
 * Fold an adapter into a copy of the base weights: `W' = W + s · B·A` for every adapted linear (float64 sums,
 * float32 results), and the embedding adapter into `token_embd.weight` (a tied base is untied: see
 * `mergeLoraEmbedding`). Tensors that are not adapted are shared with `base`, not copied.
 * @throws ShapeError E_TENSOR_NAME / E_TENSOR_SHAPE when `lora` does not match the manifest of `config` and `spec`.
 */
export function mergeLora(config: LlamaConfig, base: BaseWeights, spec: LoraSpec, lora: NamedTensors): BaseWeights {
  const merged: BaseWeights = new Map(base);
  const scale = loraScale(spec);
  for (let layer = 0; layer < config.nLayers; layer++) {
    for (const target of canonicalTargets(spec)) {
      const [outFeatures, inFeatures] = linearShapeOf(config, target);
      const a = lora.get(loraTensorName(layer, target, 'A'));
      const b = lora.get(loraTensorName(layer, target, 'B'));
      if (!a || !b) {
        throw new ShapeError(ErrorCode.TENSOR_NAME, `mergeLora: missing ${loraTensorName(layer, target, a ? 'B' : 'A')}`);
      }
      if (a.length !== spec.r * inFeatures || b.length !== outFeatures * spec.r) {
        throw new ShapeError(ErrorCode.TENSOR_SHAPE, `mergeLora: layer ${layer} ${target}: factor sizes do not match r=${spec.r}`);
      }
      const name = `blk.${layer}.${GGUF_LINEAR_NAMES[target]}.weight`;
      const w = base.get(name);
      if (!w) throw new ShapeError(ErrorCode.TENSOR_NAME, `mergeLora: base weight "${name}" is missing`);
      const out = new Float32Array(w.length);
      const row = new Float64Array(inFeatures);
      for (let o = 0; o < outFeatures; o++) {
        row.fill(0);
        for (let k = 0; k < spec.r; k++) {
          const bk = scale * b[o * spec.r + k];
          if (bk === 0) continue;
          for (let i = 0; i < inFeatures; i++) row[i] += bk * a[k * inFeatures + i];
        }
        for (let i = 0; i < inFeatures; i++) out[o * inFeatures + i] = w[o * inFeatures + i] + row[i];
      }
      merged.set(name, out);
    }
  }
  mergeLoraEmbedding(config, merged, spec, scale, lora);
  return merged;
}
