/**
 * What a shard plan looks like, for the run manifest and the log: examples per client, the label histogram of each
 * client, and how far the clients' label distributions are from the global one.
 */
import { shardPlanSha256, labelIdsOf, type ShardPlan } from './shard-plan.js';

/** Minimum, maximum, mean and (population) standard deviation of a per-client count. */
export interface CountStats {
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  readonly std: number;
}

/** The summary of a plan (snake_case: written to the manifest and metrics as is). */
export interface ShardPlanSummary {
  readonly method: ShardPlan['method'];
  readonly num_clients: number;
  readonly num_examples: number;
  /** {@link shardPlanSha256} of the plan. */
  readonly sha256: string;
  readonly examples_per_client: CountStats;
  /** Label names in id order; empty without labels. */
  readonly labels: string[];
  /** Distinct labels held per client; null without labels. */
  readonly labels_per_client: CountStats | null;
  /** Per client: its example count and (with labels) its count of each label, in `labels` order. */
  readonly clients: { id: number; num_examples: number; label_counts?: number[] }[];
  /**
   * Label heterogeneity: the total-variation distance `0.5 · Σ_l |p_c(l) − p(l)|` of each client's label
   * distribution from the global one, averaged over clients (unweighted) and its maximum; 0 is identical, 1 disjoint.
   * Null without labels.
   */
  readonly heterogeneity: { readonly mean_tv_distance: number; readonly max_tv_distance: number } | null;
}

/**
 * Summarise `plan`; `labels` are the same per-example labels it was built from (split order), optional.
 */
export function summarizeShardPlan(plan: ShardPlan, labels?: readonly (string | number)[]): ShardPlanSummary {
  const sizes = plan.clients.map((client) => client.indices.length);
  const base = {
    method: plan.method,
    num_clients: plan.num_clients,
    num_examples: plan.num_examples,
    sha256: shardPlanSha256(plan),
    examples_per_client: countStats(sizes),
  };
  if (labels === undefined) {
    return { ...base, labels: [], labels_per_client: null, clients: plan.clients.map((c) => ({ id: c.id, num_examples: c.indices.length })), heterogeneity: null };
  }
  const { ids, names } = labelIdsOf(labels);
  const global = new Array<number>(names.length).fill(0);
  for (const id of ids) global[id]++;
  const total = ids.length;
  const clients = plan.clients.map((client) => {
    const counts = new Array<number>(names.length).fill(0);
    for (const index of client.indices) counts[ids[index]]++;
    return { id: client.id, num_examples: client.indices.length, label_counts: counts };
  });
  const distances = clients.map(({ num_examples, label_counts }) =>
    num_examples === 0 ? 1 : 0.5 * label_counts.reduce((sum, count, l) => sum + Math.abs(count / num_examples - global[l] / total), 0),
  );
  return {
    ...base,
    labels: names,
    labels_per_client: countStats(clients.map((c) => c.label_counts.filter((count) => count > 0).length)),
    clients,
    heterogeneity: { mean_tv_distance: mean(distances), max_tv_distance: Math.max(...distances) },
  };
}

/** One log line: `shard plan dirichlet: 20 clients, 12..93 examples (mean 50.0), 1.8 labels/client, TV 0.312, sha256 ab12…`. */
export function formatShardSummary(summary: ShardPlanSummary): string {
  const sizes = summary.examples_per_client;
  const parts = [`shard plan ${summary.method}: ${summary.num_clients} clients, ${sizes.min}..${sizes.max} examples (mean ${sizes.mean.toFixed(1)})`];
  if (summary.labels_per_client) parts.push(`${summary.labels_per_client.mean.toFixed(1)} labels/client`);
  if (summary.heterogeneity) parts.push(`TV ${summary.heterogeneity.mean_tv_distance.toFixed(3)}`);
  parts.push(`sha256 ${summary.sha256.slice(0, 12)}`);
  return parts.join(', ');
}

function countStats(values: readonly number[]): CountStats {
  const m = mean(values);
  const variance = mean(values.map((v) => (v - m) ** 2));
  return { min: Math.min(...values), max: Math.max(...values), mean: m, std: Math.sqrt(variance) };
}

function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}
