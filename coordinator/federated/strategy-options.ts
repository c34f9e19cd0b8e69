/**
 * The strategy factory's options: the federated keys of the run configuration (snake_case, as in
 * shared/config/run-config.ts), each optional; a missing key takes Flower's default for the chosen strategy.
 * Compiled once, at the edge, into {@link CompiledStrategyOptions}.
 */
import type { FederatedStrategyName, LoraAggregation, RunConfig } from '../../shared/config/run-config.js';
import { FEDERATED_STRATEGIES, LORA_AGGREGATIONS } from '../../shared/config/run-config.js';
import { ConfigError, ErrorCode } from '../../shared/errors.js';
import type { ServerOptimizerKind, ServerOptimizerOptions } from './server-optimizers.js';
import { defaultServerOptimizerOptions, validateServerOptimizerOptions } from './server-optimizers.js';

/** Keys of the run configuration the strategy reads. */
export const STRATEGY_OPTION_KEYS = [
  'strategy',
  'fraction_fit',
  'fraction_evaluate',
  'min_fit_clients',
  'min_evaluate_clients',
  'min_available_clients',
  'proximal_mu',
  'weight_by',
  'server_learning_rate',
  'server_momentum',
  'server_beta_1',
  'server_beta_2',
  'server_tau',
  'trim_fraction',
  'num_byzantine',
  'num_to_keep',
  'clipping_radius',
  'clipping_iterations',
  'lora_aggregation',
] as const satisfies readonly (keyof RunConfig)[];

/** Plain options, as a config file or `RunConfig` holds them; only `strategy` is required. */
export type StrategyOptions = { readonly strategy: FederatedStrategyName } & Partial<
  Pick<RunConfig, (typeof STRATEGY_OPTION_KEYS)[number]>
>;

/** Validated options with every default applied. */
export interface CompiledStrategyOptions {
  readonly strategy: FederatedStrategyName;
  /** @default 1 (Flower) */
  readonly fractionFit: number;
  /** 0 turns federated evaluation off. @default 1 (Flower) */
  readonly fractionEvaluate: number;
  /** @default 2 */
  readonly minFitClients: number;
  /** @default 2 */
  readonly minEvaluateClients: number;
  /** @default 2 */
  readonly minAvailableClients: number;
  /** Proximal weight sent in the round config. @default 0 */
  readonly proximalMu: number;
  /** @default 'examples' */
  readonly weightBy: 'examples' | 'tokens';
  readonly serverOptimizer: ServerOptimizerOptions;
  /** @default 0.2 (Flower's FedTrimmedAvg `beta`) */
  readonly trimFraction: number;
  /** @default 0 (Flower's `num_malicious_clients`) */
  readonly numByzantine: number;
  /** Multi-Krum's `m`; 0 = `n − f` at aggregation time. @default 0 */
  readonly numToKeep: number;
  /** @default 1 */
  readonly clippingRadius: number;
  /** @default 1 (Karimireddy et al. use one iteration) */
  readonly clippingIterations: number;
  /** @default 'average' */
  readonly loraAggregation: LoraAggregation;
}

/** The server optimizer each strategy uses. */
export const SERVER_OPTIMIZER_OF: Readonly<Record<FederatedStrategyName, ServerOptimizerKind>> = {
  fedavg: 'none',
  fedprox: 'none',
  fedavgm: 'fedavgm',
  fedadam: 'fedadam',
  fedyogi: 'fedyogi',
  fedadagrad: 'fedadagrad',
  fedmedian: 'none',
  fedtrimmedavg: 'none',
  krum: 'none',
  multikrum: 'none',
  'centered-clipping': 'none',
};

function invalid(message: string): never {
  throw new ConfigError(ErrorCode.CONFIG_INVALID, message);
}

function numberIn(raw: Record<string, unknown>, key: string, fallback: number, ok: (v: number) => boolean, want: string): number {
  const value = raw[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) invalid(`${key} must be ${want}, got ${JSON.stringify(value)}`);
  return value as number;
}

/**
 * Validate `raw` and apply defaults.
 * @throws ConfigError E_CONFIG_UNKNOWN_KEY for a key the strategy does not read; E_CONFIG_INVALID for an ill-typed
 *   or out-of-range value, an unknown strategy, or `lora_aggregation: exact` with a strategy other than
 *   fedavg / fedprox (exactness holds for a plain weighted mean only).
 */
export function compileStrategyOptions(raw: unknown): CompiledStrategyOptions {
  if (typeof raw !== 'object' || raw === null) invalid('strategy options must be an object');
  const r = raw as Record<string, unknown>;
  for (const key of Object.keys(r)) {
    if (!(STRATEGY_OPTION_KEYS as readonly string[]).includes(key)) {
      throw new ConfigError(ErrorCode.CONFIG_UNKNOWN_KEY, `unknown strategy option "${key}" (known: ${STRATEGY_OPTION_KEYS.join(', ')})`);
    }
  }
  const strategy = r.strategy as FederatedStrategyName;
  if (!(FEDERATED_STRATEGIES as readonly unknown[]).includes(strategy)) {
    invalid(`strategy: unknown strategy ${JSON.stringify(r.strategy)} (expected one of ${FEDERATED_STRATEGIES.join(', ')})`);
  }
  const loraAggregation = (r.lora_aggregation ?? 'average') as LoraAggregation;
  if (!(LORA_AGGREGATIONS as readonly unknown[]).includes(loraAggregation)) {
    invalid(`lora_aggregation: unknown value ${JSON.stringify(r.lora_aggregation)} (expected one of ${LORA_AGGREGATIONS.join(', ')})`);
  }
  if (loraAggregation === 'exact' && strategy !== 'fedavg' && strategy !== 'fedprox') {
    invalid(`lora_aggregation "exact" needs strategy fedavg or fedprox (a plain weighted mean), got ${strategy}`);
  }
  const weightBy = r.weight_by ?? 'examples';
  if (weightBy !== 'examples' && weightBy !== 'tokens') invalid(`weight_by must be "examples" or "tokens", got ${JSON.stringify(weightBy)}`);
  const isInt = (min: number) => (v: number) => Number.isInteger(v) && v >= min;
  const kind = SERVER_OPTIMIZER_OF[strategy];
  const d = defaultServerOptimizerOptions(kind);
  const serverOptimizer: ServerOptimizerOptions = {
    kind,
    learningRate: numberIn(r, 'server_learning_rate', d.learningRate, (v) => v > 0, 'a positive number'),
    momentum: numberIn(r, 'server_momentum', d.momentum, (v) => v >= 0 && v < 1, 'in [0, 1)'),
    // FedAdagrad has no first moment in Flower (beta_1 fixed at 0): a run-wide server_beta_1 does not apply to it.
    beta1: kind === 'fedadagrad' ? 0 : numberIn(r, 'server_beta_1', d.beta1, (v) => v >= 0 && v < 1, 'in [0, 1)'),
    beta2: numberIn(r, 'server_beta_2', d.beta2, (v) => v >= 0 && v < 1, 'in [0, 1)'),
    tau: numberIn(r, 'server_tau', d.tau, (v) => v >= 0, 'a number ≥ 0'),
  };
  validateServerOptimizerOptions(serverOptimizer);
  const compiled: CompiledStrategyOptions = {
    strategy,
    fractionFit: numberIn(r, 'fraction_fit', 1, (v) => v > 0 && v <= 1, 'in (0, 1]'),
    fractionEvaluate: numberIn(r, 'fraction_evaluate', 1, (v) => v >= 0 && v <= 1, 'in [0, 1]'),
    minFitClients: numberIn(r, 'min_fit_clients', 2, isInt(1), 'an integer ≥ 1'),
    minEvaluateClients: numberIn(r, 'min_evaluate_clients', 2, isInt(1), 'an integer ≥ 1'),
    minAvailableClients: numberIn(r, 'min_available_clients', 2, isInt(1), 'an integer ≥ 1'),
    proximalMu: numberIn(r, 'proximal_mu', 0, (v) => v >= 0, 'a number ≥ 0'),
    weightBy,
    serverOptimizer,
    trimFraction: numberIn(r, 'trim_fraction', 0.2, (v) => v >= 0 && v < 0.5, 'in [0, 0.5)'),
    numByzantine: numberIn(r, 'num_byzantine', 0, isInt(0), 'an integer ≥ 0'),
    numToKeep: numberIn(r, 'num_to_keep', 0, isInt(0), 'an integer ≥ 0'),
    clippingRadius: numberIn(r, 'clipping_radius', 1, (v) => v > 0, 'a positive number'),
    clippingIterations: numberIn(r, 'clipping_iterations', 1, isInt(1), 'an integer ≥ 1'),
    loraAggregation,
  };
  return compiled;
}
