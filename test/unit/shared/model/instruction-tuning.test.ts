import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { collateBatch } from '../../../../shared/data/collate.js';
import { tokenizeForInstruction } from '../../../../shared/data/instruction-tokenize.js';
import type { DataTokenizer } from '../../../../shared/data/tokenize.js';
import type { RawExample } from '../../../../shared/data/types.js';
import { evaluateHeldOut } from '../../../../shared/model/held-out-eval.js';
import { isPrefixMatch } from '../../../../shared/model/instruction-eval.js';
import { randomBaseWeights } from '../../../../shared/model/random-weights.js';
import { TaskModel } from '../../../../shared/model/task-model.js';
import { mulberry32 } from '../../../../shared/random.js';
import { selectBackend } from '../../../../worker/backend.js';
import { modelSpec, tinyConfig } from './tiny-models.js';

/** Ids: 0 pad, 1 BOS, 2 EOS, 3 + (letter - 'a'); decode maps back (BOS/EOS/pad dropped). */
const tokenizer: DataTokenizer & { decode(ids: readonly number[]): string } = {
  padId: 0,
  bosId: 1,
  eosId: 2,
  encode: (text) => [...text].map((c) => 3 + c.charCodeAt(0) - 97),
  decode: (ids) => ids.filter((i) => i > 2).map((i) => String.fromCharCode(97 + i - 3)).join(''),
};

/** "Does the input hold a z? Answer y or n": prompt `q` + 6 random letters + `a`, response `y` or `n`. */
function examples(seed: number, count: number): RawExample[] {
  const rng = mulberry32(seed);
  return Array.from({ length: count }, () => {
    const letters = Array.from({ length: 6 }, () => String.fromCharCode(97 + Math.floor(rng() * 26)));
    if (rng() < 0.5) letters[Math.floor(rng() * 6)] = 'z';
    return { text: `q${letters.join('')}a`, response: letters.includes('z') ? 'y' : 'n' };
  });
}

describe('instruction tuning', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('bears loss on response tokens only, and a few LoRA steps lower the held-out response loss', () => {
    const config = tinyConfig({ vocabSize: 29 });
    const model = TaskModel.create(config, randomBaseWeights(config, 7, { std: 0.1 }), modelSpec('causal-lm'));
    const train = tokenizeForInstruction(examples(1, 32), tokenizer, { maxLength: 16 });
    const heldRaw = examples(2, 16);
    const held = tokenizeForInstruction(heldRaw, tokenizer, { maxLength: 16 });
    try {
      const before = evaluateHeldOut(model, tokenizer, 'instruction', held, heldRaw, { maxGenerate: 4 });
      // One response token and its EOS per example.
      expect(before.eval_loss_items).toBe(2 * held.length);
      expect(before.eval_generations).toHaveLength(3);
      expect(before.eval_exact_match_examples).toBe(4);
      expect(before.perplexity).toBeCloseTo(Math.exp(before.eval_loss), 6);
      const tensorsAtStart = tf.memory().numTensors;
      let params = model.getTrainable();
      for (let step = 0; step < 20; step++) {
        const batch = collateBatch(train, { task: 'instruction', padId: 0 });
        const { stats, grads } = model.computeGradients(batch);
        expect(stats.numLossItems).toBe(2 * train.length);
        params = new Map([...params].map(([name, v]) => [name, Float32Array.from(v, (x, i) => x - (0.5 * (grads.get(name) as Float32Array)[i]) / stats.numLossItems)]));
        model.setTrainable(params);
      }
      expect(tf.memory().numTensors).toBe(tensorsAtStart);
      const after = evaluateHeldOut(model, tokenizer, 'instruction', held, heldRaw, { maxGenerate: 4 });
      expect(after.eval_loss).toBeLessThan(before.eval_loss - 0.5);
    } finally {
      model.dispose();
    }
  });

  it('counts an answer as a prefix match when it starts with the reference as a whole word', () => {
    expect(isPrefixMatch(' no$es$', 'no')).toBe(true);
    expect(isPrefixMatch('No, it is not', 'no')).toBe(true);
    expect(isPrefixMatch('nothing', 'no')).toBe(false);
    expect(isPrefixMatch('yes', 'no')).toBe(false);
    expect(isPrefixMatch('', '')).toBe(true);
  });
});
