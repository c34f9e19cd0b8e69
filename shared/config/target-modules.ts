/**
 * LoRA target-module names: the short names of shared/model/types.ts from the spellings people write.
 */
import { LORA_MODULES, LORA_TARGETS, type LoraModule } from '../model/types.js';

/**
 * Every accepted spelling of each module: short, Hugging Face LLaMA (`*_proj`, `embed_tokens`), llama.cpp GGUF
 * tensor names (`token_embd`), and Meta's original checkpoint name of the embedding (`tok_embeddings`).
 */
const SPELLINGS: Readonly<Record<string, LoraModule>> = {
  q: 'q', q_proj: 'q', attn_q: 'q',
  k: 'k', k_proj: 'k', attn_k: 'k',
  v: 'v', v_proj: 'v', attn_v: 'v',
  o: 'o', o_proj: 'o', attn_output: 'o', attn_o: 'o',
  gate: 'gate', gate_proj: 'gate', ffn_gate: 'gate',
  up: 'up', up_proj: 'up', ffn_up: 'up',
  down: 'down', down_proj: 'down', ffn_down: 'down',
  embed: 'embed', embed_tokens: 'embed', token_embd: 'embed', tok_embeddings: 'embed',
};

/** PEFT's shorthand for every linear layer except the output head (not the embedding, as in PEFT). */
export const ALL_LINEAR = 'all-linear';

/**
 * One module name as its short {@link LoraModule}, or undefined if the spelling is unknown.
 * Case-insensitive; accepts `q`, `q_proj`, `attn_q`, ... and a fully qualified HF path ending in one of them
 * (`model.layers.0.self_attn.q_proj`).
 */
export function normaliseTargetName(name: string): LoraModule | undefined {
  const lower = name.trim().toLowerCase();
  const lastSegment = lower.slice(lower.lastIndexOf('.') + 1);
  return Object.hasOwn(SPELLINGS, lastSegment) ? SPELLINGS[lastSegment] : undefined;
}

/**
 * A list of module names as distinct short targets in canonical {@link LORA_MODULES} order, so that adapter
 * parameter names and their order do not depend on how the list was written. `all-linear` expands to the linear
 * targets ({@link LORA_TARGETS}); the embedding must be named.
 *
 * @returns the targets, or the index and spelling of the first name that is not a known module.
 */
export function normaliseTargetModules(
  names: readonly string[],
): { ok: true; targets: LoraModule[] } | { ok: false; index: number; name: string } {
  const chosen = new Set<LoraModule>();
  for (let i = 0; i < names.length; i++) {
    if (names[i].trim().toLowerCase() === ALL_LINEAR) {
      for (const target of LORA_TARGETS) chosen.add(target);
      continue;
    }
    const target = normaliseTargetName(names[i]);
    if (target === undefined) return { ok: false, index: i, name: names[i] };
    chosen.add(target);
  }
  return { ok: true, targets: LORA_MODULES.filter((target) => chosen.has(target)) };
}
