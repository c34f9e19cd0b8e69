import { describe, expect, it } from 'vitest';
import { collateBatch, IGNORE_INDEX } from '../../../../shared/data/collate.js';
import { maskBatchForMlm, MLM_EVAL_ROUND, type MlmMasking } from '../../../../shared/data/mlm-masking.js';
import { errorCodeOf } from '../../../../shared/errors.js';

const MASK = 4;
const SPECIALS = [0, 1, 2, 3, 4];
const masking: MlmMasking = { seed: 7, maskTokenId: MASK, vocabSize: 100, specialTokenIds: SPECIALS };

/** `n` items of [CLS]=2, body ids 10.., [SEP]=3, lengths varying. */
function items(n: number) {
  return Array.from({ length: n }, (_, i) => {
    const body = Array.from({ length: 20 + (i % 17) }, (_, j) => 10 + ((i * 7 + j) % 80));
    return { ids: Int32Array.from([2, ...body, 3]) };
  });
}

describe('maskBatchForMlm', () => {
  it('chooses about 15 % of the real non-special tokens; 80 % [MASK], 10 % random, 10 % kept; labels only there', () => {
    const all = items(400);
    const batch = collateBatch(all, { task: 'causal-lm', padId: 0 });
    const masked = maskBatchForMlm(batch, all.map((_, i) => i), 3, masking);
    let eligible = 0;
    let chosen = 0;
    let asMask = 0;
    let kept = 0;
    for (let i = 0; i < batch.inputIds.length; i++) {
      const original = batch.inputIds[i];
      const real = batch.attentionMask[i] === 1;
      if (real && !SPECIALS.includes(original)) eligible++;
      if (masked.labels[i] === IGNORE_INDEX) {
        expect(masked.inputIds[i]).toBe(original);
        continue;
      }
      expect(real && !SPECIALS.includes(original)).toBe(true);
      expect(masked.labels[i]).toBe(original);
      chosen++;
      if (masked.inputIds[i] === MASK) asMask++;
      else if (masked.inputIds[i] === original) kept++;
    }
    expect(chosen / eligible).toBeGreaterThan(0.13);
    expect(chosen / eligible).toBeLessThan(0.17);
    expect(asMask / chosen).toBeGreaterThan(0.75);
    expect(asMask / chosen).toBeLessThan(0.85);
    // Kept: the 10 % unchanged plus the random draws that hit the original id (1 in 100 of them).
    expect(kept / chosen).toBeGreaterThan(0.06);
    expect(kept / chosen).toBeLessThan(0.14);
    expect(masked.attentionMask).toBe(batch.attentionMask);
  });

  it('is a pure function of (seed, example key, round): the same sequence gets the same mask in any batch or slice', () => {
    const all = items(6);
    const whole = maskBatchForMlm(collateBatch(all, { task: 'causal-lm', padId: 0 }), [0, 1, 2, 3, 4, 5], 9, masking);
    const slice = maskBatchForMlm(collateBatch(all.slice(4), { task: 'causal-lm', padId: 0 }), [4, 5], 9, masking);
    const wholeLen = whole.seqLen;
    for (const [b, sb] of [
      [4, 0],
      [5, 1],
    ]) {
      const n = all[b].ids.length;
      expect(slice.inputIds.subarray(sb * slice.seqLen, sb * slice.seqLen + n)).toEqual(whole.inputIds.subarray(b * wholeLen, b * wholeLen + n));
      expect(slice.labels.subarray(sb * slice.seqLen, sb * slice.seqLen + n)).toEqual(whole.labels.subarray(b * wholeLen, b * wholeLen + n));
    }
    // Another step masks other positions; the evaluation round is one fixed mask.
    const next = maskBatchForMlm(collateBatch(all, { task: 'causal-lm', padId: 0 }), [0, 1, 2, 3, 4, 5], 10, masking);
    expect(next.labels).not.toEqual(whole.labels);
    const evalA = maskBatchForMlm(collateBatch(all, { task: 'causal-lm', padId: 0 }), [0, 1, 2, 3, 4, 5], MLM_EVAL_ROUND, masking);
    const evalB = maskBatchForMlm(collateBatch(all, { task: 'causal-lm', padId: 0 }), [0, 1, 2, 3, 4, 5], MLM_EVAL_ROUND, masking);
    expect(evalA).toEqual(evalB);
  });

  it('refuses keys that do not match the batch', () => {
    const batch = collateBatch(items(2), { task: 'causal-lm', padId: 0 });
    let err: unknown;
    try {
      maskBatchForMlm(batch, [0], 0, masking);
    } catch (e) {
      err = e;
    }
    expect(errorCodeOf(err)).toBe('E_TENSOR_SHAPE');
  });
});
