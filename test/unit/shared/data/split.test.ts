import { describe, expect, it } from 'vitest';
import { evalCount, seededShuffle, splitTrainEval, takeFirst } from '../../../../shared/data/split.js';
import { ConfigError, ErrorCode } from '../../../../shared/errors.js';

const items = Array.from({ length: 100 }, (_, i) => i);

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe(ErrorCode.CONFIG_INVALID);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('splitTrainEval', () => {
  it('takes a count of eval examples and leaves the rest, disjoint and complete', () => {
    const { train, eval: evaluation } = splitTrainEval(items, { seed: 42, evalSize: 30 });
    expect(evaluation).toHaveLength(30);
    expect(train).toHaveLength(70);
    expect([...train, ...evaluation].sort((a, b) => a - b)).toEqual(items);
  });

  it('is deterministic: same seed same split, other seed other split', () => {
    const a = splitTrainEval(items, { seed: 42, evalSize: 30 });
    expect(splitTrainEval(items, { seed: 42, evalSize: 30 })).toEqual(a);
    expect(splitTrainEval(items, { seed: 7, evalSize: 30 }).eval).not.toEqual(a.eval);
  });

  it('shuffles: eval is not simply the head or tail of the input', () => {
    const { eval: evaluation } = splitTrainEval(items, { seed: 42, evalSize: 30 });
    expect(evaluation).not.toEqual(items.slice(0, 30));
    expect(evaluation).not.toEqual(items.slice(70));
  });

  it('takes a fraction rounded up', () => {
    expect(splitTrainEval(items, { seed: 1, evalSize: 0.25 }).eval).toHaveLength(25);
    expect(splitTrainEval(items.slice(0, 10), { seed: 1, evalSize: 0.01 }).eval).toHaveLength(1);
    expect(evalCount(7, 0.5)).toBe(4);
  });

  it('is the shuffled order cut in two (what a separate eval set is shuffled with)', () => {
    const shuffled = seededShuffle(items, 42);
    const { train, eval: evaluation } = splitTrainEval(items, { seed: 42, evalSize: 10 });
    expect([...evaluation, ...train]).toEqual(shuffled);
  });

  it('rejects a split that leaves no training data, and invalid sizes', () => {
    expect(configError(() => splitTrainEval(items, { seed: 1, evalSize: 100 })).message).toContain('eval_split_size 100');
    configError(() => splitTrainEval(items.slice(0, 1), { seed: 1, evalSize: 0.5 }));
    configError(() => splitTrainEval(items, { seed: 1, evalSize: 0 }));
    configError(() => splitTrainEval(items, { seed: 1, evalSize: 2.5 }));
  });
});

describe('takeFirst', () => {
  it('caps after the shuffle, and -1 keeps everything', () => {
    const { train } = splitTrainEval(items, { seed: 3, evalSize: 20 });
    expect(takeFirst(train, 10)).toEqual(train.slice(0, 10));
    expect(takeFirst(train, -1)).toEqual(train);
    expect(takeFirst(train, 1000)).toEqual(train);
    expect(takeFirst(train, 0)).toEqual([]);
    configError(() => takeFirst(train, -2));
  });

  it('never moves an example between train and eval when a cap changes', () => {
    const a = splitTrainEval(items, { seed: 5, evalSize: 20 });
    const evalA = new Set(takeFirst(a.eval, 5));
    for (const x of takeFirst(a.train, 60)) expect(evalA.has(x)).toBe(false);
  });
});
