/**
 * Pathological label skew: each client holds examples of `k` labels only (McMahan et al. 2017: sort by label, cut
 * into `num_clients · k` shards, give each client `k`).
 *
 * McMahan's shards are cut from the label-sorted data at equal sizes, so a shard can straddle two labels and one
 * client can draw two shards of the same label: clients end up with 1 to 2k labels. Here shards are cut inside a
 * label and dealt so that each client gets `k` distinct labels whenever that is possible, which is what Flower's
 * `PathologicalPartitioner` guarantees too:
 * 1. shard counts per label: `num_clients · k` shards shared out by the D'Hondt rule (proportional to the label's
 *    examples), each label getting at least 1 and at most `min(num_clients, its examples)`;
 * 2. each label's examples (split order, shuffled with the seed) are cut into that many near-equal shards;
 * 3. labels, largest shard count first, give one shard each to the clients with the most free slots left (of `k`),
 *    ties in a seeded random order: the Gale–Ryser greedy, which realises "every client exactly k distinct labels"
 *    whenever the counts allow it.
 * Unlike Flower, every example is used: when `num_clients · k` is below the number of labels some clients get more
 * than `k` labels (Flower drops the unused labels); when labels are too rare to reach `num_clients · k` shards some
 * clients get fewer. Flower's "deterministic" and "first-deterministic" class assignments are not offered.
 */
import { mulberry32 } from '../random.js';
import { mixSeeds, seededPermutation } from './seeded-random.js';
import { nearEqualSplit } from './shard-plan-split.js';

/**
 * Partition with `labelsPerClient` labels per client (see the module comment).
 *
 * @param labelIds each example's label id in `0 .. numLabels-1`, split order; `numClients <= labelIds.length`.
 * @param seed 32-bit stream seed (already mixed by the caller).
 * @returns each client's indices, unsorted.
 */
export function pathologicalPartition(labelIds: Int32Array, numLabels: number, numClients: number, labelsPerClient: number, seed: number): number[][] {
  const byLabel: number[][] = Array.from({ length: numLabels }, () => []);
  labelIds.forEach((label, index) => byLabel[label].push(index));
  const counts = byLabel.map((members) => members.length);
  const shardCounts = allocateShards(counts, numClients, numClients * labelsPerClient);

  const free = new Array<number>(numClients).fill(labelsPerClient);
  const groups: number[][] = Array.from({ length: numClients }, () => []);
  const random = mulberry32(mixSeeds(seed, 1));
  const labelOrder = counts.map((_, label) => label).sort((a, b) => shardCounts[b] - shardCounts[a] || a - b);
  for (const label of labelOrder) {
    const numShards = shardCounts[label];
    if (numShards === 0) continue;
    const order = seededPermutation(counts[label], mixSeeds(seed, 2, label));
    const shards = nearEqualSplit(Array.from(order, (i) => byLabel[label][i]), numShards);
    // Clients by most free slots, ties in random order: a fresh random key per client and label.
    const keys = Array.from({ length: numClients }, () => random());
    const clients = free.map((_, c) => c).sort((a, b) => free[b] - free[a] || keys[a] - keys[b]);
    for (let s = 0; s < numShards; s++) {
      const client = clients[s];
      groups[client].push(...shards[s]);
      free[client]--;
    }
  }
  return groups;
}

/**
 * Shards per label: at least 1 for a non-empty label, at most `min(numClients, count)`, `total` in all where the
 * caps allow, the rest by D'Hondt (the next shard goes to the label with the most examples per shard; ties to the
 * lower label id). Exported for tests.
 */
export function allocateShards(counts: readonly number[], numClients: number, total: number): number[] {
  const caps = counts.map((count) => Math.min(numClients, count));
  const shards = counts.map((count): number => (count > 0 ? 1 : 0));
  let left = total - shards.reduce((a, b) => a + b, 0);
  while (left > 0) {
    let best = -1;
    for (let label = 0; label < counts.length; label++) {
      if (shards[label] >= caps[label]) continue;
      if (best < 0 || counts[label] * shards[best] > counts[best] * shards[label]) best = label;
    }
    if (best < 0) break;
    shards[best]++;
    left--;
  }
  return shards;
}
