/**
 * Natural partition: by the value of a column (user, author, device), as Flower's `NaturalIdPartitioner`.
 *
 * Without `num_clients`, one client per distinct value, clients numbered in the sorted order of the values (as
 * Flower, which sorts the unique ids; here canonical integers sort numerically, as labels do). With `num_clients`
 * (which Flower does not offer), values are grouped, each value whole on one client: values by example count,
 * largest first (ties in a seeded random order), each to the client holding the fewest examples so far (ties to the
 * lower id) — the LPT rule, which keeps client sizes close while never splitting a value.
 */
import { ConfigError, ErrorCode } from '../errors.js';
import { labelSet } from './labels.js';
import { seededPermutation } from './seeded-random.js';

/**
 * Partition by natural id.
 *
 * @param values each example's column value (as a string), split order.
 * @param numClients clients to group the values into, or `null` for one per distinct value.
 * @param column the column name, for messages.
 * @param seed 32-bit stream seed (already mixed by the caller); used for ties only.
 * @returns each client's indices (unsorted) and its values (sorted).
 * @throws ConfigError E_CONFIG_INVALID when `numClients` exceeds the distinct values.
 */
export function naturalPartition(
  values: readonly string[],
  numClients: number | null,
  column: string,
  seed: number,
): { groups: number[][]; ids: string[][] } {
  const distinct = labelSet(values.map((label) => ({ text: '', label })));
  const idOf = new Map(distinct.map((value, id) => [value, id]));
  const members: number[][] = distinct.map(() => []);
  values.forEach((value, index) => members[idOf.get(value) as number].push(index));
  if (numClients === null || numClients === distinct.length) return { groups: members, ids: distinct.map((value) => [value]) };
  if (numClients > distinct.length) {
    throw new ConfigError(
      ErrorCode.CONFIG_INVALID,
      `shard plan natural: num_clients ${numClients} is more than the ${distinct.length} distinct values of column "${column}"`,
    );
  }
  const tieOrder = seededPermutation(distinct.length, seed);
  const rank = new Int32Array(distinct.length);
  tieOrder.forEach((value, position) => (rank[value] = position));
  const byCount = distinct.map((_, id) => id).sort((a, b) => members[b].length - members[a].length || rank[a] - rank[b]);
  const groups: number[][] = Array.from({ length: numClients }, () => []);
  const groupIds: number[][] = Array.from({ length: numClients }, () => []);
  for (const id of byCount) {
    let target = 0;
    for (let c = 1; c < numClients; c++) if (groups[c].length < groups[target].length) target = c;
    groups[target].push(...members[id]);
    groupIds[target].push(id);
  }
  return { groups, ids: groupIds.map((ids) => ids.sort((a, b) => a - b).map((id) => distinct[id])) };
}
