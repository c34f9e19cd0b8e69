/**
 * From the run configuration's partition keys to a {@link ShardPlanSpec}.
 */
import type { RunConfig } from '../config/run-config.js';
import { ConfigError, ErrorCode } from '../errors.js';
import type { ShardPlanSpec } from './shard-plan.js';

/** The configuration keys {@link shardPlanSpecOf} reads. */
export type ShardPlanConfig = Pick<RunConfig, 'partition' | 'dirichlet_alpha' | 'labels_per_client' | 'partition_column' | 'seed'>;

/**
 * The shard plan spec of a run.
 *
 * @param numClients clients to partition into (the resolved `num_clients`); for `natural`, `null` gives one client
 *   per distinct value of `partition_column`.
 * @throws ConfigError E_CONFIG_INVALID when `partition` is `natural` without `partition_column`, or a method other
 *   than `natural` gets `numClients` null.
 */
export function shardPlanSpecOf(config: ShardPlanConfig, numClients: number | null): ShardPlanSpec {
  const { seed } = config;
  if (config.partition === 'natural') {
    if (config.partition_column === null) {
      throw new ConfigError(ErrorCode.CONFIG_INVALID, 'partition natural needs partition_column (the column that names each example\'s client)');
    }
    return { method: 'natural', num_clients: numClients, seed, column: config.partition_column };
  }
  if (numClients === null) throw new ConfigError(ErrorCode.CONFIG_INVALID, `partition ${config.partition} needs a number of clients (num_clients)`);
  switch (config.partition) {
    case 'iid':
      return { method: 'iid', num_clients: numClients, seed };
    case 'dirichlet':
      return { method: 'dirichlet', num_clients: numClients, seed, alpha: config.dirichlet_alpha };
    case 'pathological':
      return { method: 'pathological', num_clients: numClients, seed, labels_per_client: config.labels_per_client };
  }
}
