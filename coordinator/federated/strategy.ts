/**
 * A federated strategy as a few Flower-like hooks over the pure aggregation functions: which clients train or
 * evaluate in a round and with what config, and how their results (and failures, as data) become the next global
 * trainable values. The only state is the server optimizer's and centered clipping's previous update, both
 * exported by {@link Strategy.state} for a checkpoint.
 */
import { AggregationError, ErrorCode } from '../../shared/errors.js';
import type { Rng } from '../../shared/random.js';
import type { TensorSpec } from '../../shared/tensors.js';
import { centeredClipping } from './aggregation/centered-clipping.js';
import { coordinateMedian, trimmedMean } from './aggregation/coordinate-wise.js';
import { multiKrum } from './aggregation/krum.js';
import type { LoraResidual } from './aggregation/lora-exact.js';
import { exactLoraAggregate } from './aggregation/lora-exact.js';
import { isLoraA, parseLoraName } from './aggregation/lora-names.js';
import { weightedMean } from './aggregation/weighted-mean.js';
import { sampleClients } from './client-sampling.js';
import type { EvaluateSummary } from './evaluate-aggregation.js';
import { aggregateEvaluations } from './evaluate-aggregation.js';
import type { ServerOptimizerState } from './server-optimizers.js';
import { cloneServerOptimizerState, initServerOptimizerState, restoreServerOptimizerState, serverOptimizerStep } from './server-optimizers.js';
import type { CompiledStrategyOptions, StrategyOptions } from './strategy-options.js';
import { compileStrategyOptions } from './strategy-options.js';
import type { ClientFailure, ClientUpdate, EvaluateResult, NamedTensors64, RoundMetrics, WeightedUpdate } from './types.js';

/** What the engine knows that the options do not: the trainable manifest and LoRA's scale. */
export interface StrategyContext {
  /** Trainable tensors in canonical order (shared/model/trainable.ts). */
  readonly manifest: readonly TensorSpec[];
  /** LoRA's `s` (`loraScale(spec)`); needed by `lora_aggregation: exact`. @default 1 */
  readonly loraScale?: number;
}

/** The config sent with a round's fit requests, merged by the engine with its own (local_epochs, learning_rate...). */
export interface FitRoundConfig {
  /** 1-based round number. */
  readonly server_round: number;
  /** FedProx proximal weight mu; 0 = plain local training. */
  readonly proximal_mu: number;
  /** FFA-LoRA: clients must not train LoRA A factors, and need not send them. */
  readonly freeze_lora_a: boolean;
  readonly lora_aggregation: CompiledStrategyOptions['loraAggregation'];
}

/** A round's plan: whom to ask, with what config. `hasQuorum` false (and no clients) when too few are available. */
export interface RoundPlan<C> {
  readonly clients: readonly string[];
  readonly config: C;
  readonly hasQuorum: boolean;
}

/** What a round's aggregation produced. */
export interface FitAggregate {
  /** NEW float64 global values of every tensor in {@link Strategy.aggregatedTensors}. */
  readonly values: NamedTensors64;
  /** Exact LoRA only: one residual per LoRA module, to fold into the frozen base weight; empty otherwise. */
  readonly residuals: readonly LoraResidual[];
  /** Clients whose updates were used (all with weight > 0, or Krum's selection). */
  readonly usedClients: readonly string[];
  /** `fit_*` metrics for metrics.jsonl. */
  readonly metrics: RoundMetrics;
}

/** Strategy state for a checkpoint: plain data and Float64Arrays. */
export interface StrategyState {
  readonly strategy: string;
  readonly serverOptimizer: ServerOptimizerState;
  /** Centered clipping's start point: the last aggregated delta by tensor name; null before the first round. */
  readonly previousUpdate: Record<string, Float64Array> | null;
}

/** The hooks the round engine calls. */
export interface Strategy {
  readonly options: CompiledStrategyOptions;
  /** Tensors a round aggregates and sends back (the manifest minus LoRA A factors under freeze-A). */
  readonly aggregatedTensors: readonly TensorSpec[];
  /** Tensors kept at their initial values (LoRA A under freeze-A): never trained, never sent back. */
  readonly frozenTensors: readonly string[];
  configureFit(round: number, availableClients: readonly string[], rng: Rng): RoundPlan<FitRoundConfig>;
  /**
   * @param current the global values the round's clients started from (the engine's float64 master weights).
   * @throws AggregationError E_AGGREGATION_ZERO_WEIGHT when no result has weight (the engine skips the round);
   *   ShapeError for a missing, mis-sized or non-finite tensor, naming client and tensor.
   */
  aggregateFit(
    round: number,
    results: readonly ClientUpdate[],
    failures: readonly ClientFailure[],
    current: ReadonlyMap<string, Float64Array>,
  ): FitAggregate;
  configureEvaluate(round: number, availableClients: readonly string[], rng: Rng): RoundPlan<{ readonly server_round: number }>;
  /** @throws AggregationError E_AGGREGATION_ZERO_WEIGHT when no result has examples. */
  aggregateEvaluate(round: number, results: readonly EvaluateResult[], failures: readonly ClientFailure[]): EvaluateSummary;
  state(): StrategyState;
  /** @throws ConfigError E_CONFIG_INVALID when `raw` is not a state of this strategy. */
  restore(raw: unknown): void;
}

/** L2 norm over all tensors of a map. */
function globalNorm(tensors: ReadonlyMap<string, ArrayLike<number>>): number {
  let sq = 0;
  for (const t of tensors.values()) for (let j = 0; j < t.length; j++) sq += t[j] * t[j];
  return Math.sqrt(sq);
}

class HookStrategy implements Strategy {
  readonly aggregatedTensors: readonly TensorSpec[];
  readonly frozenTensors: readonly string[];
  private optimizerState: ServerOptimizerState;
  private previousUpdate: NamedTensors64 | null = null;

  constructor(
    readonly options: CompiledStrategyOptions,
    private readonly context: StrategyContext,
  ) {
    const isFrozen = (name: string) => options.loraAggregation === 'freeze-a' && isLoraA(name);
    this.aggregatedTensors = context.manifest.filter((s) => !isFrozen(s.name));
    this.frozenTensors = context.manifest.filter((s) => isFrozen(s.name)).map((s) => s.name);
    this.optimizerState = initServerOptimizerState(options.serverOptimizer.kind);
  }

  configureFit(round: number, availableClients: readonly string[], rng: Rng): RoundPlan<FitRoundConfig> {
    const o = this.options;
    const clients = sampleClients(availableClients, { fraction: o.fractionFit, minClients: o.minFitClients, minAvailable: o.minAvailableClients }, rng);
    const config: FitRoundConfig = {
      server_round: round,
      proximal_mu: o.proximalMu,
      freeze_lora_a: o.loraAggregation === 'freeze-a',
      lora_aggregation: o.loraAggregation,
    };
    return { clients, config, hasQuorum: clients.length > 0 };
  }

  aggregateFit(
    round: number,
    results: readonly ClientUpdate[],
    failures: readonly ClientFailure[],
    current: ReadonlyMap<string, Float64Array>,
  ): FitAggregate {
    const o = this.options;
    const weighted: WeightedUpdate[] = results
      .map((r) => ({ clientId: r.clientId, deltas: r.deltas, weight: o.weightBy === 'tokens' ? r.numTokens : r.numExamples }))
      .filter((u) => u.weight > 0);
    if (weighted.length === 0) {
      throw new AggregationError(
        ErrorCode.AGGREGATION_ZERO_WEIGHT,
        `round ${round}: ${results.length} result(s), none with ${o.weightBy} > 0 (${failures.length} failure(s)): nothing to aggregate`,
      );
    }
    const specs = this.aggregatedTensors;
    const isExact = o.loraAggregation === 'exact';
    const averaged = isExact ? specs.filter((s) => !parseLoraName(s.name)) : specs;
    let usedClients = weighted.map((u) => u.clientId);
    const extra: RoundMetrics = {};
    let delta: NamedTensors64;
    switch (o.strategy) {
      case 'fedavg':
      case 'fedprox':
      case 'fedavgm':
      case 'fedadam':
      case 'fedyogi':
      case 'fedadagrad':
        delta = weightedMean(weighted, averaged);
        break;
      case 'fedmedian':
        delta = coordinateMedian(weighted, specs);
        break;
      case 'fedtrimmedavg':
        delta = trimmedMean(weighted, specs, o.trimFraction);
        break;
      case 'krum':
      case 'multikrum': {
        const keep = o.strategy === 'krum' ? 1 : o.numToKeep > 0 ? o.numToKeep : Math.max(1, weighted.length - o.numByzantine);
        const chosen = multiKrum(weighted, specs, o.numByzantine, keep);
        delta = chosen.aggregate;
        usedClients = [...chosen.selected];
        extra.fit_krum_selected = chosen.selected.join(',');
        break;
      }
      case 'centered-clipping':
        delta = centeredClipping(weighted, specs, {
          radius: o.clippingRadius,
          iterations: o.clippingIterations,
          start: this.previousUpdate ?? undefined,
        });
        break;
    }
    // Everything that can throw runs before any state changes, so a refused round leaves the strategy as it was.
    const exact = isExact ? exactLoraAggregate(weighted, current, specs, this.context.loraScale ?? 1) : undefined;
    const values = serverOptimizerStep(current, delta, this.optimizerState, o.serverOptimizer, round);
    if (o.strategy === 'centered-clipping') this.previousUpdate = delta;
    const residuals: LoraResidual[] = exact?.residuals ?? [];
    if (exact) {
      for (const [name, v] of exact.values) values.set(name, v);
      extra.fit_lora_residual_norm = globalNorm(new Map(residuals.map((r) => [r.module, r.values])));
    }
    const used = results.filter((r) => usedClients.includes(r.clientId));
    const metrics: RoundMetrics = {
      fit_num_clients: weighted.length,
      fit_num_failures: failures.length,
      fit_num_empty: results.length - weighted.length,
      fit_num_examples: used.reduce((s, r) => s + r.numExamples, 0),
      fit_num_tokens: used.reduce((s, r) => s + r.numTokens, 0),
      fit_update_norm: globalNorm(delta),
      ...averagedClientMetrics(results, o.weightBy),
      ...extra,
    };
    return { values, residuals, usedClients, metrics };
  }

  configureEvaluate(round: number, availableClients: readonly string[], rng: Rng): RoundPlan<{ readonly server_round: number }> {
    const o = this.options;
    const clients =
      o.fractionEvaluate > 0
        ? sampleClients(availableClients, { fraction: o.fractionEvaluate, minClients: o.minEvaluateClients, minAvailable: o.minAvailableClients }, rng)
        : [];
    return { clients, config: { server_round: round }, hasQuorum: clients.length > 0 };
  }

  aggregateEvaluate(_round: number, results: readonly EvaluateResult[], failures: readonly ClientFailure[]): EvaluateSummary {
    return aggregateEvaluations(results, failures);
  }

  state(): StrategyState {
    const prev = this.previousUpdate;
    return {
      strategy: this.options.strategy,
      serverOptimizer: cloneServerOptimizerState(this.optimizerState),
      previousUpdate: prev ? Object.fromEntries([...prev].map(([k, v]) => [k, Float64Array.from(v)])) : null,
    };
  }

  restore(raw: unknown): void {
    const r = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
    this.optimizerState = restoreServerOptimizerState(r.serverOptimizer, this.options.serverOptimizer.kind);
    const prev = r.previousUpdate;
    this.previousUpdate =
      prev && typeof prev === 'object'
        ? new Map(Object.entries(prev as Record<string, ArrayLike<number>>).map(([k, v]) => [k, Float64Array.from(v)]))
        : null;
  }
}

/** Client-reported training metrics averaged with the aggregation weights, as `fit_<key>`. */
function averagedClientMetrics(results: readonly ClientUpdate[], weightBy: 'examples' | 'tokens'): RoundMetrics {
  const sums = new Map<string, { total: number; weight: number }>();
  for (const r of results) {
    const w = weightBy === 'tokens' ? r.numTokens : r.numExamples;
    if (!(w > 0) || !r.metrics) continue;
    for (const [key, value] of Object.entries(r.metrics)) {
      if (!Number.isFinite(value)) continue;
      const s = sums.get(key) ?? { total: 0, weight: 0 };
      s.total += w * value;
      s.weight += w;
      sums.set(key, s);
    }
  }
  return Object.fromEntries([...sums].map(([key, s]) => [`fit_${key}`, s.total / s.weight]));
}

/**
 * Build a strategy from plain options (snake_case run-config keys) and the engine's context.
 * @throws ConfigError for invalid options (see compileStrategyOptions).
 */
export function createStrategy(options: StrategyOptions, context: StrategyContext): Strategy {
  return new HookStrategy(compileStrategyOptions(options), context);
}
