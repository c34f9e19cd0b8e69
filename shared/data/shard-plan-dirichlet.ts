/**
 * Dirichlet label skew (Hsu et al. 2019; Yurochkin et al. 2019), with the semantics of Flower's
 * `DirichletPartitioner`: for each label in sorted order, client proportions p ~ Dir(alpha · 1); with
 * self-balancing, a client already holding more than `num_examples / num_clients` examples gets proportion 0 and
 * the rest are renormalised; the label's examples (in split order) are cut at `floor(cumsum(p) · count)`; the whole
 * draw is repeated while some client holds fewer than `min_partition_size` examples, at most 10 times.
 *
 * Differences from Flower, on purpose: `alpha` is one number (Flower also takes one per client); the gamma draws are
 * Marsaglia–Tsang on a seeded mulberry32 stream in log space, so alpha down to 1e-3 stays finite where NumPy's
 * proportions can underflow to all-zero; when self-balancing leaves only zero proportions the label is spread evenly
 * over the eligible clients (Flower divides by zero); the default `min_partition_size` is lowered to
 * `floor(num_examples / num_clients)` when that is below 10, so that many small clients remain possible.
 */
import { ConfigError, ErrorCode } from '../errors.js';
import { mulberry32, randomNormal, type Rng } from '../random.js';

/** The Dirichlet spec fields this module reads. */
export interface DirichletOptions {
  readonly alpha: number;
  readonly min_partition_size?: number;
  readonly self_balancing?: boolean;
}

const MAX_TRIES = 10;

/**
 * Partition by label with Dirichlet proportions.
 *
 * @param labelIds each example's label id in `0 .. numLabels-1`, split order.
 * @param seed 32-bit stream seed (already mixed by the caller).
 * @returns each client's indices (unsorted) and the parameters with defaults filled in.
 * @throws ConfigError E_CONFIG_INVALID for `alpha` not finite and > 0, an invalid `min_partition_size`, or when
 *   10 draws all leave a client under `min_partition_size`.
 */
export function dirichletPartition(
  labelIds: Int32Array,
  numLabels: number,
  numClients: number,
  options: DirichletOptions,
  seed: number,
): { groups: number[][]; params: { alpha: number; min_partition_size: number; self_balancing: boolean } } {
  const { alpha } = options;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `shard plan dirichlet: alpha ${alpha} must be a finite number > 0`);
  }
  const n = labelIds.length;
  const minSize = options.min_partition_size ?? Math.min(10, Math.floor(n / numClients));
  if (!Number.isInteger(minSize) || minSize < 0 || minSize * numClients > n) {
    throw new ConfigError(
      ErrorCode.CONFIG_INVALID,
      `shard plan dirichlet: min_partition_size ${minSize} must be an integer >= 0 with min_partition_size × num_clients <= ${n} examples`,
    );
  }
  const selfBalancing = options.self_balancing ?? true;
  const byLabel: number[][] = Array.from({ length: numLabels }, () => []);
  labelIds.forEach((label, index) => byLabel[label].push(index));
  const average = n / numClients;
  const rng = mulberry32(seed);

  let smallest = 0;
  for (let attempt = 1; attempt <= MAX_TRIES; attempt++) {
    const groups: number[][] = Array.from({ length: numClients }, () => []);
    for (const members of byLabel) {
      const proportions = sampleDirichlet(rng, alpha, numClients);
      if (selfBalancing) {
        let sum = 0;
        for (let c = 0; c < numClients; c++) {
          if (groups[c].length > average) proportions[c] = 0;
          sum += proportions[c];
        }
        if (sum > 0) for (let c = 0; c < numClients; c++) proportions[c] /= sum;
        else {
          const eligible = groups.filter((g) => g.length <= average).length;
          for (let c = 0; c < numClients; c++) proportions[c] = groups[c].length > average ? 0 : 1 / eligible;
        }
      }
      let cumulative = 0;
      let start = 0;
      for (let c = 0; c < numClients; c++) {
        cumulative += proportions[c];
        const end = c === numClients - 1 ? members.length : Math.min(members.length, Math.max(start, Math.floor(cumulative * members.length)));
        for (let i = start; i < end; i++) groups[c].push(members[i]);
        start = end;
      }
    }
    smallest = Math.min(...groups.map((g) => g.length));
    if (smallest >= minSize) return { groups, params: { alpha, min_partition_size: minSize, self_balancing: selfBalancing } };
  }
  throw new ConfigError(
    ErrorCode.CONFIG_INVALID,
    `shard plan dirichlet: after ${MAX_TRIES} draws with alpha ${alpha} some client still holds ${smallest} < min_partition_size ${minSize} ` +
      `examples; raise alpha, lower min_partition_size or use fewer clients`,
  );
}

/**
 * One draw of Dir(alpha, ..., alpha) of dimension `k`, by normalised gamma draws computed in log space.
 */
export function sampleDirichlet(rng: Rng, alpha: number, k: number): Float64Array {
  const logs = new Float64Array(k);
  let max = -Infinity;
  for (let i = 0; i < k; i++) {
    logs[i] = logGamma(rng, alpha);
    if (logs[i] > max) max = logs[i];
  }
  const out = new Float64Array(k);
  let sum = 0;
  for (let i = 0; i < k; i++) {
    out[i] = Math.exp(logs[i] - max);
    sum += out[i];
  }
  for (let i = 0; i < k; i++) out[i] /= sum;
  return out;
}

/**
 * log of one Gamma(shape, 1) draw: Marsaglia & Tsang (2000) for shape >= 1; for shape < 1 the boost
 * Gamma(a) = Gamma(a + 1) · U^(1/a), kept in logs because U^(1/a) underflows for small a.
 */
export function logGamma(rng: Rng, shape: number): number {
  if (shape < 1) {
    const u = 1 - rng(); // in (0, 1]
    return logGamma(rng, shape + 1) + Math.log(u) / shape;
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = randomNormal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - rng();
    if (u < 1 - 0.0331 * x ** 4) return Math.log(d * v);
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return Math.log(d * v);
  }
}
