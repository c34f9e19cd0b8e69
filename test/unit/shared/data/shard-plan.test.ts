import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildShardPlan, canonicalJson, shardPlanSha256, specOf, verifyShardPlan, type ShardPlan, type ShardPlanSpec } from '../../../../shared/data/shard-plan.js';
import { shardPlanSpecOf } from '../../../../shared/data/shard-plan-config.js';
import { summarizeShardPlan } from '../../../../shared/data/shard-plan-summary.js';
import { ConfigError, ErrorCode, InputFileError, OrchestratorError } from '../../../../shared/errors.js';
import { mulberry32 } from '../../../../shared/random.js';

/** `numLabels` labels with the given per-label counts, in a seeded random order (as a shuffled split would be). */
function labelVector(counts: readonly number[], seed = 1): string[] {
  const labels = counts.flatMap((count, label) => new Array<string>(count).fill(`c${label}`));
  const random = mulberry32(seed);
  for (let i = labels.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [labels[i], labels[j]] = [labels[j], labels[i]];
  }
  return labels;
}

function expectPartition(plan: ShardPlan, n: number): void {
  const seen = new Int32Array(n);
  for (const client of plan.clients) {
    expect(client.indices.length).toBeGreaterThan(0);
    for (let i = 1; i < client.indices.length; i++) expect(client.indices[i]).toBeGreaterThan(client.indices[i - 1]);
    for (const index of client.indices) seen[index]++;
  }
  expect(plan.clients.map((c) => c.id)).toEqual(Array.from({ length: plan.num_clients }, (_, i) => i));
  expect(Array.from(seen).every((count) => count === 1)).toBe(true);
}

function errorOf(fn: () => unknown): OrchestratorError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(OrchestratorError);
    return err as OrchestratorError;
  }
  throw new Error('expected an error');
}

const balanced = labelVector(new Array(10).fill(100));

describe('buildShardPlan: determinism and hashing', () => {
  const specs: ShardPlanSpec[] = [
    { method: 'iid', num_clients: 7, seed: 42 },
    { method: 'dirichlet', num_clients: 20, seed: 42, alpha: 0.5 },
    { method: 'pathological', num_clients: 20, seed: 42, labels_per_client: 2 },
  ];
  for (const spec of specs) {
    it(`${spec.method}: same inputs give the same plan and hash; another seed another plan`, () => {
      const data = { numExamples: balanced.length, labels: balanced };
      const a = buildShardPlan(spec, data);
      const b = buildShardPlan(spec, { numExamples: balanced.length, labels: balanced.slice() });
      expect(b).toEqual(a);
      expect(shardPlanSha256(b)).toBe(shardPlanSha256(a));
      expect(shardPlanSha256(a)).toMatch(/^[0-9a-f]{64}$/);
      const other = buildShardPlan({ ...spec, seed: 43 }, data);
      expect(other.clients).not.toEqual(a.clients);
      expect(shardPlanSha256(other)).not.toBe(shardPlanSha256(a));
      expectPartition(a, balanced.length);
    });
  }

  it('hashes a canonical JSON: key order does not matter, a moved index does', () => {
    const plan = buildShardPlan({ method: 'iid', num_clients: 3, seed: 42 }, { numExamples: 10 });
    const reordered = JSON.parse(JSON.stringify({ clients: plan.clients, seed: plan.seed, params: plan.params, num_examples: 10, num_clients: 3, method: 'iid' })) as ShardPlan;
    expect(shardPlanSha256(reordered)).toBe(shardPlanSha256(plan));
    expect(canonicalJson({ b: 1, a: [1, { d: 2, c: 'x' }] })).toBe('{"a":[1,{"c":"x","d":2}],"b":1}');
    const moved = structuredClone(plan);
    moved.clients[1].indices.push(moved.clients[0].indices.pop() as number);
    expect(shardPlanSha256(moved)).not.toBe(shardPlanSha256(plan));
  });

  it('pins the iid plan of 10 examples, 3 clients, seed 42 (a change here breaks every recorded plan)', () => {
    const plan = buildShardPlan({ method: 'iid', num_clients: 3, seed: 42 }, { numExamples: 10 });
    expect(plan.clients.map((c) => c.indices.length)).toEqual([4, 3, 3]);
    expect(plan.clients.map((c) => c.indices)).toEqual([
      [1, 4, 5, 6],
      [0, 3, 7],
      [2, 8, 9],
    ]);
  });

  it('verifyShardPlan accepts the same data and names a mismatch', () => {
    const spec: ShardPlanSpec = { method: 'dirichlet', num_clients: 10, seed: 3, alpha: 0.3 };
    const plan = buildShardPlan(spec, { numExamples: balanced.length, labels: balanced });
    expect(verifyShardPlan(plan, { numExamples: balanced.length, labels: balanced })).toEqual(plan);
    expect(specOf(plan)).toEqual({ ...spec, min_partition_size: 10, self_balancing: true });
    const changed = balanced.slice();
    [changed[0], changed[999]] = [changed[999], changed[0]];
    const err = errorOf(() => verifyShardPlan(plan, { numExamples: changed.length, labels: changed }));
    expect(err).toBeInstanceOf(InputFileError);
    expect(err.code).toBe(ErrorCode.SHARD_PLAN_MISMATCH);
    expect(err.message).toContain(shardPlanSha256(plan));
  });
});

describe('buildShardPlan: every index exactly once (property)', () => {
  const labelsArb = fc
    .record({ numLabels: fc.integer({ min: 1, max: 6 }), n: fc.integer({ min: 1, max: 300 }), seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }) })
    .chain(({ numLabels, n, seed }) =>
      fc.record({
        labels: fc.array(fc.integer({ min: 0, max: numLabels - 1 }), { minLength: n, maxLength: n }),
        numClients: fc.integer({ min: 1, max: n }),
        k: fc.integer({ min: 1, max: numLabels }),
        seed: fc.constant(seed),
      }),
    );

  it('iid, dirichlet, pathological and natural', () => {
    fc.assert(
      fc.property(labelsArb, fc.double({ min: 0.01, max: 100, noNaN: true }), ({ labels, numClients, k, seed }, alpha) => {
        const n = labels.length;
        const data = { numExamples: n, labels, naturalIds: labels };
        const distinct = new Set(labels).size;
        const plans = [
          buildShardPlan({ method: 'iid', num_clients: numClients, seed }, data),
          buildShardPlan({ method: 'dirichlet', num_clients: numClients, seed, alpha, min_partition_size: 0 }, data),
          buildShardPlan({ method: 'pathological', num_clients: numClients, seed, labels_per_client: Math.min(k, distinct) }, data),
          buildShardPlan({ method: 'natural', num_clients: Math.min(numClients, distinct), seed, column: 'label' }, data),
        ];
        for (const plan of plans) {
          const seen = new Int32Array(n);
          for (const client of plan.clients) for (const index of client.indices) seen[index]++;
          expect(Array.from(seen).every((count) => count === 1)).toBe(true);
        }
        // iid, pathological and natural also leave no client empty.
        for (const plan of [plans[0], plans[2], plans[3]]) expect(plan.clients.every((c) => c.indices.length > 0)).toBe(true);
        expect(plans[0].clients.map((c) => c.indices.length).every((size) => Math.abs(size - n / numClients) < 1)).toBe(true);
      }),
      { numRuns: 150, seed: 7 },
    );
  });
});

describe('buildShardPlan: methods', () => {
  it('dirichlet: small alpha is more heterogeneous than large alpha', () => {
    const tv = (alpha: number, seed: number): number => {
      const plan = buildShardPlan({ method: 'dirichlet', num_clients: 20, seed, alpha, min_partition_size: 1 }, { numExamples: balanced.length, labels: balanced });
      return summarizeShardPlan(plan, balanced).heterogeneity?.mean_tv_distance ?? NaN;
    };
    for (const seed of [1, 2, 3]) {
      const small = tv(0.1, seed);
      const medium = tv(1, seed);
      const large = tv(100, seed);
      expect(small).toBeGreaterThan(medium);
      expect(medium).toBeGreaterThan(large);
      expect(small).toBeGreaterThan(0.5);
      expect(large).toBeLessThan(0.2);
    }
  });

  it('dirichlet: meets min_partition_size and gives up with a clear error when it cannot', () => {
    const plan = buildShardPlan({ method: 'dirichlet', num_clients: 20, seed: 5, alpha: 0.3, min_partition_size: 15 }, { numExamples: 1000, labels: balanced });
    expect(Math.min(...plan.clients.map((c) => c.indices.length))).toBeGreaterThanOrEqual(15);
    const err = errorOf(() =>
      buildShardPlan({ method: 'dirichlet', num_clients: 50, seed: 5, alpha: 0.001, min_partition_size: 20, self_balancing: false }, { numExamples: 1000, labels: balanced }),
    );
    expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(err.message).toMatch(/after 10 draws.*min_partition_size 20/);
  });

  it('dirichlet: tiny alpha stays finite and assigns everything', () => {
    const plan = buildShardPlan({ method: 'dirichlet', num_clients: 10, seed: 9, alpha: 1e-3, min_partition_size: 0 }, { numExamples: 1000, labels: balanced });
    expect(plan.clients.reduce((sum, c) => sum + c.indices.length, 0)).toBe(1000);
  });

  it('pathological: exactly k distinct labels per client when possible', () => {
    for (const [counts, numClients, k] of [
      [new Array(10).fill(100), 20, 2],
      [new Array(10).fill(100), 100, 2],
      [new Array(10).fill(100), 7, 3],
      [[670, 330], 20, 1],
      [[670, 330], 20, 2],
      [[500, 300, 150, 50], 30, 2],
    ] as const) {
      const labels = labelVector(counts, 11);
      const plan = buildShardPlan({ method: 'pathological', num_clients: numClients, seed: 4, labels_per_client: k }, { numExamples: labels.length, labels });
      expectPartition(plan, labels.length);
      const summary = summarizeShardPlan(plan, labels);
      expect(summary.labels_per_client).toMatchObject({ min: k, max: k });
    }
  });

  it('pathological: pairs labels at random (not a fixed stride) and keeps all data when k labels are impossible', () => {
    const plan = buildShardPlan({ method: 'pathological', num_clients: 50, seed: 4, labels_per_client: 2 }, { numExamples: 1000, labels: balanced });
    const pairs = new Set(plan.clients.map((c) => [...new Set(c.indices.map((i) => balanced[i]))].sort().join('+')));
    expect(pairs.size).toBeGreaterThan(10);
    // 3 clients × 2 labels cannot hold 10 labels: every example is still placed, some clients get more labels.
    const few = buildShardPlan({ method: 'pathological', num_clients: 3, seed: 4, labels_per_client: 2 }, { numExamples: 1000, labels: balanced });
    expectPartition(few, 1000);
    expect(summarizeShardPlan(few, balanced).labels_per_client?.max).toBeGreaterThan(2);
  });

  it('natural: one client per distinct value, or whole values grouped into num_clients', () => {
    const users = ['bob', 'alice', 'bob', 'carol', 'alice', 'dave', 'bob', 'erin', 'erin', 'alice'];
    const data = { numExamples: users.length, naturalIds: users };
    const each = buildShardPlan({ method: 'natural', seed: 1, column: 'user' }, data);
    expect(each.num_clients).toBe(5);
    expect(each.clients.map((c) => c.natural_ids)).toEqual([['alice'], ['bob'], ['carol'], ['dave'], ['erin']]);
    expect(each.clients[1].indices).toEqual([0, 2, 6]);
    const grouped = buildShardPlan({ method: 'natural', num_clients: 2, seed: 1, column: 'user' }, data);
    expectPartition(grouped, users.length);
    expect(grouped.clients.map((c) => c.indices.length).sort()).toEqual([5, 5]);
    for (const client of grouped.clients) {
      const held = new Set(client.indices.map((i) => users[i]));
      expect([...held].sort()).toEqual(client.natural_ids);
    }
    expect(grouped.params).toEqual({ column: 'user' });
  });

  it('natural: numeric values sort numerically', () => {
    const plan = buildShardPlan({ method: 'natural', seed: 1, column: 'device' }, { numExamples: 4, naturalIds: [10, 2, 10, 1] });
    expect(plan.clients.map((c) => c.natural_ids)).toEqual([['1'], ['2'], ['10']]);
  });
});

describe('buildShardPlan: errors', () => {
  const data = { numExamples: 6, labels: ['a', 'b', 'a', 'b', 'a', 'b'] };
  const cases: [string, () => unknown, RegExp][] = [
    ['num_clients > examples', () => buildShardPlan({ method: 'iid', num_clients: 7, seed: 1 }, data), /num_clients 7 is more than the 6 training examples/],
    ['num_clients 0', () => buildShardPlan({ method: 'iid', num_clients: 0, seed: 1 }, data), /num_clients 0 must be an integer >= 1/],
    ['unknown method', () => buildShardPlan({ method: 'label-skew', num_clients: 2, seed: 1 } as unknown as ShardPlanSpec, data), /unknown shard plan method "label-skew": expected one of iid, dirichlet/],
    ['alpha 0', () => buildShardPlan({ method: 'dirichlet', num_clients: 2, seed: 1, alpha: 0 }, data), /alpha 0 must be a finite number > 0/],
    ['alpha negative', () => buildShardPlan({ method: 'dirichlet', num_clients: 2, seed: 1, alpha: -1 }, data), /alpha -1/],
    ['k > labels', () => buildShardPlan({ method: 'pathological', num_clients: 2, seed: 1, labels_per_client: 3 }, data), /labels_per_client 3 must be an integer in 1..2/],
    ['labels missing', () => buildShardPlan({ method: 'dirichlet', num_clients: 2, seed: 1, alpha: 1 }, { numExamples: 6 }), /needs labels/],
    ['natural ids missing', () => buildShardPlan({ method: 'natural', seed: 1, column: 'user' }, data), /column "user"/],
    ['natural num_clients > values', () => buildShardPlan({ method: 'natural', num_clients: 3, seed: 1, column: 'label' }, { ...data, naturalIds: data.labels }), /num_clients 3 is more than the 2 distinct values of column "label"/],
    ['label count', () => buildShardPlan({ method: 'iid', num_clients: 2, seed: 1 }, { numExamples: 5, labels: data.labels }), /6 labels for 5 examples/],
  ];
  for (const [name, fn, message] of cases) {
    it(name, () => {
      const err = errorOf(fn);
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
      expect(err.message).toMatch(message);
    });
  }
});

describe('shardPlanSpecOf', () => {
  const config = { partition: 'dirichlet', dirichlet_alpha: 0.5, labels_per_client: 2, partition_column: null, seed: 42 } as const;
  it('maps the run configuration keys', () => {
    expect(shardPlanSpecOf(config, 20)).toEqual({ method: 'dirichlet', num_clients: 20, seed: 42, alpha: 0.5 });
    expect(shardPlanSpecOf({ ...config, partition: 'pathological' }, 20)).toEqual({ method: 'pathological', num_clients: 20, seed: 42, labels_per_client: 2 });
    expect(shardPlanSpecOf({ ...config, partition: 'natural', partition_column: 'user' }, null)).toEqual({ method: 'natural', num_clients: null, seed: 42, column: 'user' });
    expect(errorOf(() => shardPlanSpecOf({ ...config, partition: 'natural' }, null)).message).toMatch(/partition_column/);
  });
});
