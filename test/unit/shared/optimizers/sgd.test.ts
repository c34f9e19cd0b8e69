import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../../shared/errors.js';
import { DEFAULT_SGD_OPTIONS, initSgdState, sgdStep, validateSgdOptions, type SgdOptions } from '../../../../shared/optimizers/index.js';

/** Two steps from p = 1 with the constant gradient 0.5 and lr 0.1; returns p after each step. */
function twoSteps(options: Partial<SgdOptions>): number[] {
  const params = new Map([['w', Float64Array.from([1])]]);
  const grads = new Map([['w', Float64Array.from([0.5])]]);
  const state = initSgdState();
  const out: number[] = [];
  for (let t = 0; t < 2; t++) {
    sgdStep(params, grads, state, { ...DEFAULT_SGD_OPTIONS, ...options }, 0.1);
    out.push(params.get('w')![0]);
  }
  expect(state.step).toBe(2);
  return out;
}

// Expected values worked by hand from torch.optim.SGD's update (buffer = g on the first step).
describe('sgdStep', () => {
  it('plain SGD: p ← p − lr·g', () => {
    const [a, b] = twoSteps({});
    expect(a).toBeCloseTo(0.95, 12);
    expect(b).toBeCloseTo(0.9, 12);
  });

  it('momentum 0.9: b = g, then 0.9·b + g', () => {
    const [a, b] = twoSteps({ momentum: 0.9 });
    expect(a).toBeCloseTo(0.95, 12);
    expect(b).toBeCloseTo(0.855, 12);
  });

  it('coupled weight decay 0.1 with momentum: g + λ·p enters the buffer', () => {
    const [a, b] = twoSteps({ momentum: 0.9, weightDecay: 0.1 });
    expect(a).toBeCloseTo(0.94, 12);
    expect(b).toBeCloseTo(0.8266, 12);
  });

  it('Nesterov: the step uses g + μ·b', () => {
    const [a, b] = twoSteps({ momentum: 0.9, nesterov: true });
    expect(a).toBeCloseTo(0.905, 12);
    expect(b).toBeCloseTo(0.7695, 12);
  });

  it('dampening 0.5 applies from the second step on', () => {
    const [a, b] = twoSteps({ momentum: 0.9, dampening: 0.5 });
    expect(a).toBeCloseTo(0.95, 12);
    expect(b).toBeCloseTo(0.88, 12);
  });

  it('keeps no momentum buffer without momentum, and names a missing gradient', () => {
    const state = initSgdState();
    const params = new Map([['w', Float64Array.from([1])]]);
    sgdStep(params, new Map([['w', Float64Array.from([1])]]), state, DEFAULT_SGD_OPTIONS, 0.1);
    expect(state.momentumBuffer.size).toBe(0);
    expect(() => sgdStep(params, new Map(), state, DEFAULT_SGD_OPTIONS, 0.1)).toThrow('"w"');
    expect(params.get('w')![0]).toBeCloseTo(0.9, 12);
  });

  it('refuses impossible options with E_CONFIG_INVALID', () => {
    for (const bad of [{ momentum: 1 }, { momentum: -0.1 }, { dampening: 2 }, { weightDecay: -1 }, { nesterov: true }, { nesterov: true, momentum: 0.9, dampening: 0.1 }]) {
      expect(() => validateSgdOptions({ ...DEFAULT_SGD_OPTIONS, ...bad }), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
    }
    expect(() => validateSgdOptions({ ...DEFAULT_SGD_OPTIONS, momentum: 0.9, nesterov: true })).not.toThrow();
  });
});
