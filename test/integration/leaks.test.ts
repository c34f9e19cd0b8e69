/**
 * S20: no leak over a long federated run. The coordinator and two workers share this process (real loopback
 * WebSockets), so `tf.memory().numTensors` counts every tensor either side holds; it must be the same at round 50
 * as at round 5, and RSS (after a full GC) must grow by at most 5% between rounds 10 and 50. `npm run soak`
 * runs the same measurement over more rounds (scripts/soak.ts).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend, type BackendReport } from '../../worker/backend.js';
import { makeDpFixture, type DpFixture } from '../helpers/dp-fixture.js';
import { measureRoundMemory } from '../helpers/leak-probe.js';
import { recordFigure } from '../helpers/reliability-figures.js';

let fixture: DpFixture;
let backend: BackendReport;

beforeAll(async () => {
  fixture = await makeDpFixture();
  backend = await selectBackend('auto');
});

describe('S20 leaks', () => {
  it('S20: over 50 federated rounds numTensors is flat from round 5 and RSS grows at most 5% from round 10', async () => {
    const { numTensors, rssBytes } = await measureRoundMemory(fixture, backend, 50);
    expect(numTensors).toHaveLength(50);
    expect(numTensors[49]).toBe(numTensors[4]);
    expect(Math.max(...numTensors.slice(4))).toBe(numTensors[4]);
    const rssGrowth = rssBytes[49] / rssBytes[9] - 1;
    expect(rssGrowth).toBeLessThanOrEqual(0.05);
    recordFigure('S20', `numTensors ${numTensors[4]} at round 5, ${numTensors[49]} at round 50; RSS ${(rssGrowth * 100).toFixed(1)}% from round 10 to 50`);
  }, 120_000);
});
