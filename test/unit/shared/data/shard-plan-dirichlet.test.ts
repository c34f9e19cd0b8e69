import { describe, expect, it } from 'vitest';
import { dirichletPartition, logGamma, sampleDirichlet } from '../../../../shared/data/shard-plan-dirichlet.js';
import { mulberry32 } from '../../../../shared/random.js';

describe('gamma and Dirichlet sampling', () => {
  for (const shape of [0.3, 1, 2.5, 20]) {
    it(`Gamma(${shape}) has mean and variance ${shape}`, () => {
      const rng = mulberry32(1234);
      const draws = Array.from({ length: 40_000 }, () => Math.exp(logGamma(rng, shape)));
      const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
      const variance = draws.reduce((a, b) => a + (b - mean) ** 2, 0) / draws.length;
      // Standard error of the mean is sqrt(shape / n) (< 0.025 here); allow about 4 of them.
      expect(Math.abs(mean - shape)).toBeLessThan(4 * Math.sqrt(shape / draws.length) + 1e-3);
      expect(Math.abs(variance / shape - 1)).toBeLessThan(0.08);
    });
  }

  it('Dirichlet draws sum to 1, have mean 1/k, and concentrate as alpha grows', () => {
    const rng = mulberry32(7);
    const k = 5;
    const spread = (alpha: number): number => {
      let maxSum = 0;
      const sums = new Float64Array(k);
      const n = 4000;
      for (let t = 0; t < n; t++) {
        const p = sampleDirichlet(rng, alpha, k);
        expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
        for (let i = 0; i < k; i++) sums[i] += p[i];
        maxSum += Math.max(...p);
      }
      for (let i = 0; i < k; i++) expect(sums[i] / n).toBeCloseTo(1 / k, 1);
      return maxSum / n;
    };
    const small = spread(0.05);
    const large = spread(50);
    expect(small).toBeGreaterThan(0.85); // nearly all mass on one client
    expect(large).toBeLessThan(0.3); // near uniform 0.2
  });

  it('stays finite for alpha 1e-4 (log-space boost)', () => {
    const rng = mulberry32(3);
    for (let t = 0; t < 100; t++) {
      const p = sampleDirichlet(rng, 1e-4, 10);
      expect(p.every((x) => Number.isFinite(x) && x >= 0)).toBe(true);
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    }
  });
});

/**
 * Flower's DirichletPartitioner loop written out as in flwr_datasets (per label: Dirichlet proportions, zero for
 * clients above the average when self-balancing, renormalise, cut at floor(cumsum · count); retry while a client is
 * under min_partition_size), fed the same gamma stream.
 */
function flowerReference(labels: number[], numLabels: number, numClients: number, alpha: number, minSize: number, seed: number): number[][] {
  const rng = mulberry32(seed);
  const average = labels.length / numClients;
  for (let attempt = 0; attempt < 10; attempt++) {
    const nodes: number[][] = Array.from({ length: numClients }, () => []);
    for (let k = 0; k < numLabels; k++) {
      const members = labels.flatMap((label, i) => (label === k ? [i] : []));
      const p = Array.from(sampleDirichlet(rng, alpha, numClients));
      for (let c = 0; c < numClients; c++) if (nodes[c].length > average) p[c] = 0;
      const total = p.reduce((a, b) => a + b, 0);
      const fractions = p.map((x) => x / total);
      let cumulative = 0;
      const cuts = fractions.map((f) => Math.floor((cumulative += f) * members.length)).slice(0, -1);
      const bounds = [0, ...cuts, members.length];
      for (let c = 0; c < numClients; c++) nodes[c].push(...members.slice(bounds[c], Math.max(bounds[c], bounds[c + 1])));
    }
    if (Math.min(...nodes.map((n) => n.length)) >= minSize) return nodes;
  }
  throw new Error('reference gave up');
}

describe('dirichletPartition', () => {
  it('equals the Flower DirichletPartitioner loop on the same random stream', () => {
    const rng = mulberry32(99);
    const labels = Array.from({ length: 600 }, () => Math.floor(rng() * 4));
    for (const [alpha, numClients, minSize] of [
      [0.5, 10, 10],
      [5, 7, 20],
      [0.2, 5, 0],
    ] as const) {
      const ours = dirichletPartition(Int32Array.from(labels), 4, numClients, { alpha, min_partition_size: minSize }, 1234);
      expect(ours.groups).toEqual(flowerReference(labels, 4, numClients, alpha, minSize, 1234));
    }
  });
});
