/**
 * Why LoRA instruction tuning of stories260K never stops: its EOS output row has ~170 look-alikes, so EOS cannot be
 * learnt without training the output layer. The detector on a tiny model, and the fact on the real checkpoint
 * (skipped when ../shared/models/stories260K.gguf is absent).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { baseTuningManifest } from '../../../../shared/adapters/base-tuning.js';
import { eosLearnabilityWarning, eosLookalikes, trainsOutputLayer } from '../../../../shared/model/eos-lookalikes.js';
import { loadLlamaGguf } from '../../../../shared/model/load-gguf.js';
import { randomBaseWeights } from '../../../../shared/model/random-weights.js';
import { trainableManifest } from '../../../../shared/model/trainable.js';
import { loraSpec, modelSpec, tinyConfig } from './tiny-models.js';

const MODEL_PATH = fileURLToPath(new URL('../../../../../shared/models/stories260K.gguf', import.meta.url));
const EOS = 2;

/** A tiny model whose output rows 5..14 copy EOS's row (plus noise below the tolerance), as never-seen tokens end up. */
function collapsedModel() {
  const config = tinyConfig({ vocabSize: 29 });
  const weights = randomBaseWeights(config, 3, { std: 0.1 });
  const output = Float32Array.from(weights.get('output.weight') ?? weights.get('token_embd.weight') ?? []);
  for (let id = 5; id < 15; id++) for (let k = 0; k < config.dim; k++) output[id * config.dim + k] = output[EOS * config.dim + k] + 1e-4 * ((id + k) % 3);
  weights.set('output.weight', output);
  return { config, weights, output };
}

describe('EOS look-alikes in the output layer', () => {
  it('finds the rows within tolerance of the EOS row, EOS excluded', () => {
    const { config, output } = collapsedModel();
    expect(eosLookalikes(output, config.vocabSize, config.dim, EOS)).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    expect(eosLookalikes(output, config.vocabSize, config.dim, EOS, 5e-5)).toEqual([]);
  });

  it('warns an instruction run whose method does not train the output layer, not one whose method does', () => {
    const { config, weights } = collapsedModel();
    const lora = trainableManifest(config, modelSpec('causal-lm'), weights);
    expect(trainsOutputLayer(lora, weights)).toBe(false);
    expect(eosLearnabilityWarning(config, weights, EOS, lora)).toMatch(/EOS \(id 2\) is not learnable.*10 other tokens.*ln 11 = 2\.40 nats.*peft\.method feature/);
    const feature = baseTuningManifest(config, { method: 'feature', trainableTopLayers: 0 }, 'causal-lm', true);
    expect(trainsOutputLayer(feature, weights)).toBe(true);
    expect(eosLearnabilityWarning(config, weights, EOS, feature)).toBeUndefined();
    const distinct = randomBaseWeights(config, 3, { std: 0.1 });
    expect(eosLearnabilityWarning(config, distinct, EOS, lora)).toBeUndefined();
  });

  it.skipIf(!existsSync(MODEL_PATH))('stories260K: EOS never trained, its row has 168 look-alikes, so LoRA cannot learn to stop', async () => {
    const loaded = await loadLlamaGguf(MODEL_PATH);
    expect(loaded.tokenizer.eosId).toBe(EOS);
    const output = loaded.weights.get('output.weight') as Float32Array;
    const lookalikes = eosLookalikes(output, loaded.config.vocabSize, loaded.config.dim, EOS);
    expect(lookalikes.length).toBe(168);
    // Byte-fallback pieces that merged pieces always replace, e.g. <0x24> "$" and <0x38> "8": greedy's picks.
    expect(lookalikes).toEqual(expect.arrayContaining([39, 59]));
    const lora = trainableManifest(loaded.config, modelSpec('causal-lm', { peft: loraSpec({ targetModules: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] }) }), loaded.weights);
    expect(eosLearnabilityWarning(loaded.config, loaded.weights, EOS, lora)).toMatch(/ln 169 = 5\.13 nats/);
  });
});
