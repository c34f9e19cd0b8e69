/**
 * Reading the adapter's tensor names (shared/adapters/lora.ts): which tensors are LoRA factors, which module
 * they belong to, and which frozen base weight that module adapts.
 */
import { LORA_MODULE_PATHS } from '../../../shared/adapters/lora.js';
import type { LoraFactor } from '../../../shared/adapters/lora.js';
import { GGUF_LINEAR_NAMES } from '../../../shared/model/llama-config.js';
import type { LoraTarget } from '../../../shared/model/types.js';
import type { TensorSpec } from '../../../shared/tensors.js';

const LORA_NAME = /^model\.layers\.(\d+)\.(.+)\.lora_([AB])\.weight$/;

/** A parsed LoRA factor name. */
export interface LoraFactorName {
  /** Module path, e.g. `model.layers.0.self_attn.q_proj`. */
  readonly module: string;
  readonly layer: number;
  readonly target: LoraTarget;
  readonly factor: LoraFactor;
}

/** The LoRA factor `name` denotes, or undefined for any other tensor (e.g. `score.weight`). */
export function parseLoraName(name: string): LoraFactorName | undefined {
  const m = LORA_NAME.exec(name);
  if (!m) return undefined;
  const target = (Object.keys(LORA_MODULE_PATHS) as LoraTarget[]).find((t) => LORA_MODULE_PATHS[t] === m[2]);
  if (!target) return undefined;
  return { module: `model.layers.${m[1]}.${m[2]}`, layer: Number(m[1]), target, factor: m[3] as LoraFactor };
}

/** Whether `name` is a LoRA `A` factor (the tensors freeze-A keeps at their initial values). */
export function isLoraA(name: string): boolean {
  return parseLoraName(name)?.factor === 'A';
}

/** GGUF name of the frozen base weight a LoRA module adapts, e.g. `blk.0.attn_q.weight`. */
export function baseWeightNameOf(parsed: LoraFactorName): string {
  return `blk.${parsed.layer}.${GGUF_LINEAR_NAMES[parsed.target]}.weight`;
}

/** One LoRA module of a manifest: its factor specs (`A` `[r, in]`, `B` `[out, r]`). */
export interface LoraModuleSpec {
  readonly module: string;
  readonly baseWeightName: string;
  readonly a: TensorSpec;
  readonly b: TensorSpec;
}

/** The LoRA modules whose two factors both appear in `specs`, in manifest order. */
export function loraModulesOf(specs: readonly TensorSpec[]): LoraModuleSpec[] {
  const byModule = new Map<string, { parsed: LoraFactorName; a?: TensorSpec; b?: TensorSpec }>();
  for (const spec of specs) {
    const parsed = parseLoraName(spec.name);
    if (!parsed) continue;
    const entry = byModule.get(parsed.module) ?? { parsed };
    if (parsed.factor === 'A') entry.a = spec;
    else entry.b = spec;
    byModule.set(parsed.module, entry);
  }
  const out: LoraModuleSpec[] = [];
  for (const { parsed, a, b } of byModule.values()) {
    if (a && b) out.push({ module: parsed.module, baseWeightName: baseWeightNameOf(parsed), a, b });
  }
  return out;
}
