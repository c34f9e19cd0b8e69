/**
 * Shard plans: which training examples each federated client holds, as data.
 *
 * A plan is a pure function of (the training examples' labels or natural ids in split order, the method, its
 * parameters, the seed): the coordinator computes it to ship shards, and a client that loads the same dataset spec
 * with the same seed and split computes the identical plan locally and takes its own indices (delivery `local`).
 * Its SHA-256 over a canonical JSON ({@link shardPlanSha256}) is recorded in the run manifest, so a simulated run
 * and a real run can be shown to see identical splits, and {@link verifyShardPlan} catches a client whose data differ.
 *
 * Every method assigns every index `0 .. num_examples-1` to exactly one client, and each client's indices are
 * sorted ascending. (Flower's partitioners shuffle within a partition instead; here the split order is already a
 * seeded shuffle and local training reshuffles every epoch, so sorting only makes the plan canonical.)
 */
import { createHash } from 'node:crypto';
import { ConfigError, ErrorCode, InputFileError } from '../errors.js';
import { labelSet } from './labels.js';
import { mixSeeds, seededPermutation } from './seeded-random.js';
import { dirichletPartition } from './shard-plan-dirichlet.js';
import { naturalPartition } from './shard-plan-natural.js';
import { pathologicalPartition } from './shard-plan-pathological.js';
import { nearEqualSplit } from './shard-plan-split.js';

/** The partitioning methods. */
export const SHARD_METHODS = ['iid', 'dirichlet', 'pathological', 'natural'] as const;
/** One partitioning method. */
export type ShardMethod = (typeof SHARD_METHODS)[number];

/** Stream ids mixed into the seed, so that a plan's randomness is unrelated to the split and batch orders. */
const STREAM = { iid: 0x51d0, dirichlet: 0xd1a1, pathological: 0xba7, natural: 0x4a7 } as const;

/** What to build: a method, its parameters, the number of clients and a seed (snake_case: it is recorded as is). */
export type ShardPlanSpec =
  | { readonly method: 'iid'; readonly num_clients: number; readonly seed: number }
  | {
      readonly method: 'dirichlet';
      readonly num_clients: number;
      readonly seed: number;
      /** Concentration of the per-label Dirichlet over clients, > 0; small is heterogeneous (0.1), large near-IID (100). */
      readonly alpha: number;
      /**
       * Resample (up to {@link DIRICHLET_MAX_TRIES} times) until every client holds at least this many examples.
       * @default min(10, floor(num_examples / num_clients))
       */
      readonly min_partition_size?: number;
      /** Stop giving a label's examples to a client that already holds more than the average share. @default true */
      readonly self_balancing?: boolean;
    }
  | {
      readonly method: 'pathological';
      readonly num_clients: number;
      readonly seed: number;
      /** Distinct labels per client (McMahan et al. 2017 used 2). */
      readonly labels_per_client: number;
    }
  | {
      readonly method: 'natural';
      /** Clients; `null` gives one client per distinct value. @default null */
      readonly num_clients?: number | null;
      readonly seed: number;
      /** Name of the column whose value identifies the natural client (user, author, device). Recorded only. */
      readonly column: string;
    };

/** The per-example data a plan is computed from, in split order. */
export interface ShardPlanData {
  /** Number of training examples; every index below it is assigned. */
  readonly numExamples: number;
  /** Class label of each example (`dirichlet`, `pathological`; used by the summary). */
  readonly labels?: readonly (string | number)[];
  /** Natural-id column value of each example (`natural`). */
  readonly naturalIds?: readonly (string | number)[];
}

/** One client of a plan. */
export interface ShardClient {
  /** Client id, `0 .. num_clients-1`. */
  readonly id: number;
  /** Indices into the training examples (split order), sorted ascending. */
  readonly indices: number[];
  /** `natural` only: the column values this client holds, sorted. */
  readonly natural_ids?: string[];
}

/** A shard plan: seeded, hashable data. */
export interface ShardPlan {
  readonly method: ShardMethod;
  readonly num_clients: number;
  readonly seed: number;
  /** The method's parameters with defaults filled in (no `method`, `num_clients` or `seed`). */
  readonly params: Record<string, string | number | boolean>;
  /** Number of training examples the plan covers. */
  readonly num_examples: number;
  readonly clients: ShardClient[];
}

/** Retries of the Dirichlet sampling before giving up, as Flower's DirichletPartitioner. */
export const DIRICHLET_MAX_TRIES = 10;

/**
 * Build the shard plan of `spec` over `data`.
 *
 * @throws ConfigError E_CONFIG_INVALID naming the key for: an unknown method, `num_clients` not an integer >= 1 or
 *   more than the examples (or, for `natural`, the distinct values), `alpha` <= 0, `labels_per_client` < 1 or more
 *   than the distinct labels, a label-based method without labels (causal-lm), `natural` without natural ids, a
 *   Dirichlet sampling that misses `min_partition_size` {@link DIRICHLET_MAX_TRIES} times.
 */
export function buildShardPlan(spec: ShardPlanSpec, data: ShardPlanData): ShardPlan {
  const method = (spec as { method: unknown }).method;
  if (!SHARD_METHODS.includes(method as ShardMethod)) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `unknown shard plan method ${JSON.stringify(method)}: expected one of ${SHARD_METHODS.join(', ')}`);
  }
  const n = data.numExamples;
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(ErrorCode.CONFIG_INVALID, `shard plan over ${n} examples: expected at least 1`);
  if (!Number.isInteger(spec.seed)) throw new ConfigError(ErrorCode.CONFIG_INVALID, `shard plan seed ${spec.seed} is not an integer`);
  checkLength(data.labels, n, 'labels');
  checkLength(data.naturalIds, n, 'natural ids');
  switch (spec.method) {
    case 'iid': {
      const numClients = checkNumClients(spec.num_clients, n, spec.method);
      const order = seededPermutation(n, mixSeeds(spec.seed, STREAM.iid));
      return plan(spec.method, numClients, spec.seed, {}, n, nearEqualSplit(order, numClients));
    }
    case 'dirichlet': {
      const numClients = checkNumClients(spec.num_clients, n, spec.method);
      const labelIds = requireLabels(data, spec.method);
      const { groups, params } = dirichletPartition(labelIds.ids, labelIds.numLabels, numClients, spec, mixSeeds(spec.seed, STREAM.dirichlet));
      return plan(spec.method, numClients, spec.seed, params, n, groups);
    }
    case 'pathological': {
      const numClients = checkNumClients(spec.num_clients, n, spec.method);
      const labelIds = requireLabels(data, spec.method);
      const k = spec.labels_per_client;
      if (!Number.isInteger(k) || k < 1 || k > labelIds.numLabels) {
        throw new ConfigError(
          ErrorCode.CONFIG_INVALID,
          `shard plan pathological: labels_per_client ${k} must be an integer in 1..${labelIds.numLabels} (the distinct labels)`,
        );
      }
      const groups = pathologicalPartition(labelIds.ids, labelIds.numLabels, numClients, k, mixSeeds(spec.seed, STREAM.pathological));
      return plan(spec.method, numClients, spec.seed, { labels_per_client: k }, n, groups);
    }
    case 'natural': {
      if (data.naturalIds === undefined) {
        throw new ConfigError(ErrorCode.CONFIG_INVALID, `shard plan natural needs the values of column "${spec.column}" for every example`);
      }
      const requested = spec.num_clients ?? null;
      if (requested !== null) checkNumClients(requested, n, spec.method);
      const { groups, ids } = naturalPartition(data.naturalIds.map(String), requested, spec.column, mixSeeds(spec.seed, STREAM.natural));
      const clients = groups.map((indices, id) => ({ id, indices: indices.slice().sort((a, b) => a - b), natural_ids: ids[id] }));
      return { method: spec.method, num_clients: clients.length, seed: spec.seed, params: { column: spec.column }, num_examples: n, clients };
    }
  }
}

/**
 * SHA-256 (hex) of the plan's canonical JSON: object keys sorted, no whitespace. Equal plans hash equal on every
 * platform; any change of an index, a parameter or the seed changes it.
 */
export function shardPlanSha256(plan: ShardPlan): string {
  return createHash('sha256').update(canonicalJson(plan)).digest('hex');
}

/**
 * Recompute the plan from local data and check it equals `expected` (delivery `local`: a client proves that its
 * dataset, seed and split match the coordinator's before training on its indices).
 *
 * @throws InputFileError E_SHARD_PLAN_MISMATCH when the hashes differ, naming both and the example counts;
 *   ConfigError as {@link buildShardPlan}.
 */
export function verifyShardPlan(expected: ShardPlan, data: ShardPlanData): ShardPlan {
  const spec = specOf(expected);
  const local = buildShardPlan(spec, data);
  const want = shardPlanSha256(expected);
  const got = shardPlanSha256(local);
  if (want !== got) {
    throw new InputFileError(
      ErrorCode.SHARD_PLAN_MISMATCH,
      `shard plan mismatch: the coordinator's ${expected.method} plan over ${expected.num_examples} examples has sha256 ${want}, ` +
        `the local data (${data.numExamples} examples) give ${got}; check the dataset spec, seed and eval split`,
    );
  }
  return local;
}

/** The spec a plan was built from (inverse of {@link buildShardPlan} up to filled-in defaults). */
export function specOf(plan: ShardPlan): ShardPlanSpec {
  return { ...plan.params, method: plan.method, num_clients: plan.num_clients, seed: plan.seed } as ShardPlanSpec;
}

/** JSON with object keys sorted at every depth and no whitespace; only finite numbers are allowed. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new ConfigError(ErrorCode.CONFIG_INVALID, `canonical JSON cannot hold the number ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new ConfigError(ErrorCode.CONFIG_INVALID, `canonical JSON cannot hold a ${typeof value}`);
}

/**
 * Label ids in the sorted label set of {@link labelSet} (canonical integers numerically, otherwise by code unit),
 * so that every process numbers labels alike.
 */
export function labelIdsOf(labels: readonly (string | number)[]): { ids: Int32Array; names: string[] } {
  const text = labels.map(String);
  const names = labelSet(text.map((label) => ({ text: '', label })));
  const idOf = new Map(names.map((name, id) => [name, id]));
  return { ids: Int32Array.from(text, (label) => idOf.get(label) as number), names };
}

function plan(method: ShardMethod, numClients: number, seed: number, params: ShardPlan['params'], n: number, groups: number[][]): ShardPlan {
  const clients = groups.map((indices, id) => ({ id, indices: indices.slice().sort((a, b) => a - b) }));
  return { method, num_clients: numClients, seed, params, num_examples: n, clients };
}

function checkNumClients(numClients: number, numExamples: number, method: ShardMethod): number {
  if (!Number.isInteger(numClients) || numClients < 1) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `shard plan ${method}: num_clients ${numClients} must be an integer >= 1`);
  }
  if (numClients > numExamples) {
    throw new ConfigError(
      ErrorCode.CONFIG_INVALID,
      `shard plan ${method}: num_clients ${numClients} is more than the ${numExamples} training examples (every client needs one)`,
    );
  }
  return numClients;
}

function requireLabels(data: ShardPlanData, method: ShardMethod): { ids: Int32Array; numLabels: number } {
  if (data.labels === undefined) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `shard plan ${method} partitions by label and needs labels (task classification); use iid or natural`);
  }
  const { ids, names } = labelIdsOf(data.labels);
  return { ids, numLabels: names.length };
}

function checkLength(values: readonly unknown[] | undefined, n: number, what: string): void {
  if (values !== undefined && values.length !== n) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `shard plan: ${values.length} ${what} for ${n} examples`);
  }
}
