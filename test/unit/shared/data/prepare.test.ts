import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compileConfig } from '../../../../shared/config.js';
import { loadTrainEval } from '../../../../shared/data/prepare.js';
import { ErrorCode, errorCodeOf } from '../../../../shared/errors.js';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/data/', import.meta.url));

describe('loadTrainEval', () => {
  it('splits the spam-assassin built-in with the defaults: 300 eval, 1000 train, labels ham/spam', async () => {
    const config = compileConfig({});
    const { train, eval: evaluation, labels } = await loadTrainEval(config);
    expect(evaluation).toHaveLength(300);
    expect(train).toHaveLength(1000);
    expect(labels).toEqual(['ham', 'spam']);
    // Disjoint as examples (by identity: the corpus has distinct messages with identical bodies).
    const evalSet = new Set(evaluation);
    expect(train.some((e) => evalSet.has(e))).toBe(false);
    // A shuffled sample has both classes in about the corpus ratio (31% spam).
    const spamShare = train.filter((e) => e.label === 'spam').length / train.length;
    expect(spamShare).toBeGreaterThan(0.2);
    expect(spamShare).toBeLessThan(0.45);
  });

  it('applies the caps after the split: a smaller cap is a prefix of a larger one', async () => {
    const big = await loadTrainEval(compileConfig({ max_train_samples: 200, max_eval_samples: 50 }));
    const small = await loadTrainEval(compileConfig({ max_train_samples: 20, max_eval_samples: 5 }));
    expect(small.train).toEqual(big.train.slice(0, 20));
    expect(small.eval).toEqual(big.eval.slice(0, 5));
    const other = await loadTrainEval(compileConfig({ max_train_samples: 20, seed: 7 }));
    expect(other.train).not.toEqual(small.train);
  });

  it('uses a separate eval dataset when given, with a label set over both', async () => {
    const config = compileConfig({
      dataset: `jsonl:${join(FIXTURES, 'emails.jsonl')}`,
      eval_dataset: `csv:${join(FIXTURES, 'emails.csv')}`,
      max_train_samples: -1,
    });
    const { train, eval: evaluation, labels } = await loadTrainEval(config);
    expect(train).toHaveLength(10);
    expect(evaluation).toHaveLength(6);
    expect(labels).toEqual(['ham', 'spam']);
    expect(new Set(evaluation.map((e) => e.text))).toContain('Hello, world');
  });

  it('returns no labels for causal-lm and resolves relative specs against baseDir', async () => {
    const config = compileConfig({ task: 'causal-lm', dataset: 'jsonl:stories.jsonl', eval_split_size: 2 });
    const { train, eval: evaluation, labels } = await loadTrainEval(config, { baseDir: FIXTURES });
    expect(train).toHaveLength(4);
    expect(evaluation).toHaveLength(2);
    expect(labels).toEqual([]);
  });

  it('fails clearly when the eval split would take everything', async () => {
    const config = compileConfig({ task: 'causal-lm', dataset: `jsonl:${join(FIXTURES, 'stories.jsonl')}` });
    let caught: unknown;
    try {
      await loadTrainEval(config);
    } catch (err) {
      caught = err;
    }
    expect(errorCodeOf(caught)).toBe(ErrorCode.CONFIG_INVALID);
    expect((caught as Error).message).toContain('eval_split_size 300');
  });
});
