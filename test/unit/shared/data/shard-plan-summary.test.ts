import { describe, expect, it } from 'vitest';
import { buildShardPlan, shardPlanSha256, type ShardPlan } from '../../../../shared/data/shard-plan.js';
import { allocateShards } from '../../../../shared/data/shard-plan-pathological.js';
import { formatShardSummary, summarizeShardPlan } from '../../../../shared/data/shard-plan-summary.js';

describe('summarizeShardPlan', () => {
  it('counts examples and labels per client and the TV distance against a hand computation', () => {
    // Global label distribution: a 4/6, b 2/6; client 0 holds a a a, client 1 holds b b a.
    const labels = ['a', 'a', 'b', 'a', 'b', 'a'];
    const plan: ShardPlan = {
      method: 'iid',
      num_clients: 2,
      seed: 0,
      params: {},
      num_examples: 6,
      clients: [
        { id: 0, indices: [0, 1, 3] },
        { id: 1, indices: [2, 4, 5] },
      ],
    };
    const summary = summarizeShardPlan(plan, labels);
    expect(summary.labels).toEqual(['a', 'b']);
    expect(summary.clients).toEqual([
      { id: 0, num_examples: 3, label_counts: [3, 0] },
      { id: 1, num_examples: 3, label_counts: [1, 2] },
    ]);
    const tv0 = 0.5 * (Math.abs(1 - 4 / 6) + Math.abs(0 - 2 / 6));
    const tv1 = 0.5 * (Math.abs(1 / 3 - 4 / 6) + Math.abs(2 / 3 - 2 / 6));
    expect(summary.heterogeneity?.mean_tv_distance).toBeCloseTo((tv0 + tv1) / 2, 12);
    expect(summary.heterogeneity?.max_tv_distance).toBeCloseTo(Math.max(tv0, tv1), 12);
    expect(summary.labels_per_client).toEqual({ min: 1, max: 2, mean: 1.5, std: 0.5 });
    expect(summary.examples_per_client).toEqual({ min: 3, max: 3, mean: 3, std: 0 });
    expect(summary.sha256).toBe(shardPlanSha256(plan));
    expect(formatShardSummary(summary)).toMatch(/^shard plan iid: 2 clients, 3\.\.3 examples \(mean 3\.0\), 1\.5 labels\/client, TV 0\.333, sha256 [0-9a-f]{12}$/);
  });

  it('without labels reports sizes only', () => {
    const plan = buildShardPlan({ method: 'iid', num_clients: 4, seed: 1 }, { numExamples: 10 });
    const summary = summarizeShardPlan(plan);
    expect(summary.heterogeneity).toBeNull();
    expect(summary.clients.map((c) => c.num_examples)).toEqual([3, 3, 2, 2]);
    expect(formatShardSummary(summary)).not.toContain('TV');
  });
});

describe('allocateShards (pathological shard counts)', () => {
  it('is proportional (D\'Hondt) within [1, min(clients, count)] and sums to the target', () => {
    expect(allocateShards([100, 100, 100, 100], 10, 8)).toEqual([2, 2, 2, 2]);
    expect(allocateShards([670, 330], 20, 40)).toEqual([20, 20]); // ham capped at 20 clients
    expect(allocateShards([670, 330], 100, 40)).toEqual([27, 13]);
    expect(allocateShards([500, 3], 10, 20)).toEqual([10, 3]); // a rare label cannot fill its share
    expect(allocateShards([5, 5, 5], 1, 1)).toEqual([1, 1, 1]); // every label keeps one shard
  });
});
