/**
 * Whether instruction tuning can teach a decoder to stop: the response's EOS target is learnable only if the output
 * layer tells EOS apart from the other tokens. A pre-training corpus that never holds EOS (llama2.c's TinyStories
 * models add BOS only) leaves its output row where every other never-seen token's row went: near one shared vector.
 * A method that trains only the body (LoRA, adapters, prompt tuning) moves the hidden state, which raises all those
 * logits together, so the EOS target costs at least ln(1 + look-alikes) nats and greedy decoding writes a look-alike
 * instead of stopping.
 */
import { EMBED_TOKENS, LM_HEAD } from '../adapters/base-tuning.js';
import type { TensorSpec } from '../tensors.js';
import type { BaseWeights, LlamaConfig } from './types.js';

/** Largest per-component difference at which an output row counts as a look-alike of EOS's. @default 1e-3 */
export const EOS_LOOKALIKE_TOLERANCE = 1e-3;

/** Look-alikes from which a run is warned that its method cannot learn to stop. @default 8 */
export const EOS_LOOKALIKE_WARN_COUNT = 8;

/**
 * Ids of the output-layer rows whose every component is within `tolerance` of EOS's row (EOS excluded), ascending.
 * @param outputWeight `[vocabSize, dim]` row-major (`output.weight`, or the tied embedding).
 */
export function eosLookalikes(outputWeight: Float32Array, vocabSize: number, dim: number, eosId: number, tolerance = EOS_LOOKALIKE_TOLERANCE): number[] {
  const eos = outputWeight.subarray(eosId * dim, (eosId + 1) * dim);
  const ids: number[] = [];
  for (let id = 0; id < vocabSize; id++) {
    if (id === eosId) continue;
    const row = id * dim;
    let isClose = true;
    for (let k = 0; k < dim && isClose; k++) isClose = Math.abs(outputWeight[row + k] - eos[k]) <= tolerance;
    if (isClose) ids.push(id);
  }
  return ids;
}

/** Whether a trainable manifest includes the output layer (its own `lm_head`, or the embedding it is tied to). */
export function trainsOutputLayer(manifest: readonly Pick<TensorSpec, 'name'>[], weights: BaseWeights): boolean {
  const isTied = weights.get('output.weight') === weights.get('token_embd.weight');
  return manifest.some((t) => t.name === LM_HEAD || (isTied && t.name === EMBED_TOKENS));
}

/**
 * The warning for an instruction run whose EOS the method cannot learn (the base's EOS row has at least
 * {@link EOS_LOOKALIKE_WARN_COUNT} look-alikes and the output layer does not train), else `undefined`.
 */
export function eosLearnabilityWarning(config: LlamaConfig, weights: BaseWeights, eosId: number, manifest: readonly Pick<TensorSpec, 'name'>[]): string | undefined {
  const output = weights.get('output.weight') ?? weights.get('token_embd.weight');
  if (output === undefined || trainsOutputLayer(manifest, weights)) return undefined;
  const lookalikes = eosLookalikes(output, config.vocabSize, config.dim, eosId);
  if (lookalikes.length < EOS_LOOKALIKE_WARN_COUNT) return undefined;
  return (
    `EOS (id ${eosId}) is not learnable with this method: its output-layer row is within ${EOS_LOOKALIKE_TOLERANCE} of ${lookalikes.length} other tokens' ` +
    `(the base model never learnt EOS), and the method does not train the output layer, so the EOS target costs at least ` +
    `ln ${lookalikes.length + 1} = ${Math.log(lookalikes.length + 1).toFixed(2)} nats and greedy answers will not stop; ` +
    `use peft.method feature (trains the output layer) or full`
  );
}
