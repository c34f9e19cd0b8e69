import { describe, expect, it } from 'vitest';
import { adamWStep, clipGlobalNorm, initAdamWState, learningRateAt, resolveWarmupSteps } from '../../../../shared/optimizers/index.js';

const OPTIONS = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 };

describe('adamWStep', () => {
  it('moves each weight by about lr·sign(g) on the first step (bias correction)', () => {
    const params = new Map([['w', Float64Array.from([1, -2, 3])]]);
    const grads = new Map([['w', Float64Array.from([0.5, -4, 1e-3])]]);
    const state = initAdamWState([{ name: 'w', shape: [3] }]);
    adamWStep(params, grads, state, OPTIONS, 0.1);
    expect(state.step).toBe(1);
    const p = params.get('w')!;
    expect(p[0]).toBeCloseTo(0.9, 6);
    expect(p[1]).toBeCloseTo(-1.9, 6);
    expect(p[2]).toBeCloseTo(2.9, 4);
  });

  it('matches a step-by-step float64 reference of torch.optim.AdamW over 3 steps with weight decay', () => {
    const options = { beta1: 0.8, beta2: 0.95, epsilon: 1e-6, weightDecay: 0.1 };
    const gradsPerStep = [0.3, -0.2, 0.05];
    const lrs = [0.01, 0.02, 0.005];
    let p = 0.7, m = 0, v = 0;
    const params = new Map([['w', Float64Array.from([0.7])]]);
    const state = initAdamWState([{ name: 'w', shape: [1] }]);
    gradsPerStep.forEach((g, t) => {
      // torch: p.mul_(1 - lr*wd); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * mhat / (sqrt(vhat) + eps)
      p *= 1 - lrs[t] * options.weightDecay;
      m = options.beta1 * m + (1 - options.beta1) * g;
      v = options.beta2 * v + (1 - options.beta2) * g * g;
      const mHat = m / (1 - options.beta1 ** (t + 1));
      const vHat = v / (1 - options.beta2 ** (t + 1));
      p -= (lrs[t] * mHat) / (Math.sqrt(vHat) + options.epsilon);
      adamWStep(params, new Map([['w', Float64Array.from([g])]]), state, options, lrs[t]);
    });
    expect(params.get('w')![0]).toBeCloseTo(p, 12);
    expect(state.step).toBe(3);
  });

  it('with a frozen second moment keeps v and its bias correction, so the step is linear in the gradient', () => {
    const state = initAdamWState([{ name: 'w', shape: [2] }]);
    const params = new Map([['w', Float64Array.from([0, 0])]]);
    adamWStep(params, new Map([['w', Float64Array.from([2, -0.5])]]), state, OPTIONS, 0.1);
    const v = state.secondMoment.get('w')!.slice();
    const m = state.firstMoment.get('w')!.slice();
    const before = params.get('w')!.slice();
    adamWStep(params, new Map([['w', Float64Array.from([40, 0])]]), state, OPTIONS, 0.1, true);
    expect([...state.secondMoment.get('w')!]).toEqual([...v]);
    expect(state.step).toBe(2);
    expect(state.secondMomentSteps).toBe(1);
    const vHat = v.map((x) => x / (1 - OPTIONS.beta2));
    [40, 0].forEach((g, i) => {
      const mNew = OPTIONS.beta1 * m[i] + (1 - OPTIONS.beta1) * g;
      const expected = before[i] - (0.1 * (mNew / (1 - OPTIONS.beta1 ** 2))) / (Math.sqrt(vHat[i]) + OPTIONS.epsilon);
      expect(params.get('w')![i]).toBeCloseTo(expected, 12);
    });
    // A 20× larger gradient moves w[0] about 20× further than Adam's usual lr-sized step would.
    expect(before[0] - params.get('w')![0]).toBeGreaterThan(1);
  });

  it('refuses to step with a second moment frozen before any update estimated it', () => {
    const state = initAdamWState([{ name: 'w', shape: [1] }]);
    expect(() => adamWStep(new Map([['w', new Float64Array(1)]]), new Map([['w', Float64Array.from([1])]]), state, OPTIONS, 0.1, true)).toThrow(/frozen/);
  });

  it('names the tensor when a gradient is missing', () => {
    const state = initAdamWState([{ name: 'w', shape: [1] }]);
    expect(() => adamWStep(new Map([['w', new Float64Array(1)]]), new Map(), state, OPTIONS, 0.1)).toThrow(/"w"/);
  });
});

describe('learningRateAt', () => {
  const base = { baseLearningRate: 1e-3, type: 'linear' as const, warmupSteps: 10, totalSteps: 110 };
  it('warms up linearly from 0 then decays linearly to 0 (HF get_linear_schedule_with_warmup)', () => {
    expect(learningRateAt(0, base)).toBe(0);
    expect(learningRateAt(5, base)).toBeCloseTo(5e-4, 12);
    expect(learningRateAt(10, base)).toBeCloseTo(1e-3, 12);
    expect(learningRateAt(60, base)).toBeCloseTo(5e-4, 12);
    expect(learningRateAt(110, base)).toBe(0);
    expect(learningRateAt(200, base)).toBe(0);
  });
  it('stays constant after warm-up for the constant type', () => {
    expect(learningRateAt(100, { ...base, type: 'constant' })).toBe(1e-3);
  });
  it('prefers explicit warm-up steps over the ratio', () => {
    expect(resolveWarmupSteps(7, 0.5, 100)).toBe(7);
    expect(resolveWarmupSteps(0, 0.1, 95)).toBe(10);
  });
});

describe('clipGlobalNorm', () => {
  it('scales to the max norm across all tensors and returns the norm before clipping', () => {
    const grads = new Map([['a', Float64Array.from([3])], ['b', Float64Array.from([4])]]);
    expect(clipGlobalNorm(grads, 1)).toBeCloseTo(5, 12);
    expect(grads.get('a')![0]).toBeCloseTo(0.6, 5);
    expect(grads.get('b')![0]).toBeCloseTo(0.8, 5);
  });
  it('leaves small gradients alone', () => {
    const grads = new Map([['a', Float64Array.from([0.3, 0.4])]]);
    expect(clipGlobalNorm(grads, 1)).toBeCloseTo(0.5, 12);
    expect([...grads.get('a')!]).toEqual([0.3, 0.4]);
  });
});
