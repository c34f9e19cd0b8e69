/**
 * Federated aggregation: pure aggregation functions, server optimizers and Flower-like strategy hooks (issue 4).
 *
 * How the round engine uses it:
 *
 * ```ts
 * const strategy = createStrategy(runConfig, { manifest, loraScale: loraScale(peftSpec) }); // snake_case keys
 * const rng = mulberry32(mixSeed(seed, round));                  // seeded, deterministic sampling
 * const plan = strategy.configureFit(round, availableClientIds, rng);
 * if (!plan.hasQuorum) wait for clients;
 * send global values of strategy.aggregatedTensors (never strategy.frozenTensors: freeze-A keeps A fixed) and
 *   { ...plan.config, local_epochs, learning_rate } to plan.clients;
 * collect ClientUpdate { clientId, deltas: local − global (float32), numExamples, numTokens, metrics }
 *   and ClientFailure { clientId, code } until the deadline;
 * const agg = strategy.aggregateFit(round, results, failures, state.params);   // state.params: float64 masters
 * for (const [name, v] of agg.values) state.params.get(name)!.set(v);          // new values, not deltas
 * for (const r of agg.residuals) base[r.baseWeightName] += r.values;           // exact LoRA only: fold into the base
 * log agg.metrics; checkpoint strategy.state() (restore with strategy.restore(saved));
 * const evalPlan = strategy.configureEvaluate(round, availableClientIds, rng);
 * const summary = strategy.aggregateEvaluate(round, evalResults, evalFailures); // weighted loss/accuracy, worst gap
 * ```
 *
 * `aggregateFit` throws AggregationError E_AGGREGATION_ZERO_WEIGHT when no result carries weight (skip the round),
 * and ShapeError (E_TENSOR_NAME / E_TENSOR_SHAPE / E_TENSOR_NON_FINITE) naming client and tensor for a bad update:
 * the engine may drop that client and aggregate again without it.
 */
export type { ClientFailure, ClientUpdate, EvaluateResult, NamedTensors64, RoundMetrics, WeightedUpdate } from './types.js';
export { weightedMean } from './aggregation/weighted-mean.js';
export { coordinateMedian, trimmedMean } from './aggregation/coordinate-wise.js';
export { krum, krumScores, multiKrum } from './aggregation/krum.js';
export type { KrumResult } from './aggregation/krum.js';
export { centeredClipping } from './aggregation/centered-clipping.js';
export type { CenteredClippingOptions } from './aggregation/centered-clipping.js';
export { exactLoraAggregate } from './aggregation/lora-exact.js';
export type { ExactLoraResult, LoraResidual } from './aggregation/lora-exact.js';
export { baseWeightNameOf, isLoraA, loraModulesOf, parseLoraName } from './aggregation/lora-names.js';
export { checkUpdates, normalisedWeights } from './aggregation/validate.js';
export {
  ServerOptimizerKind,
  cloneServerOptimizerState,
  defaultServerOptimizerOptions,
  initServerOptimizerState,
  restoreServerOptimizerState,
  serverOptimizerStep,
  validateServerOptimizerOptions,
} from './server-optimizers.js';
export type { ServerOptimizerOptions, ServerOptimizerState } from './server-optimizers.js';
export { sampleClients, sampleSize } from './client-sampling.js';
export type { SamplingOptions } from './client-sampling.js';
export { aggregateEvaluations } from './evaluate-aggregation.js';
export type { EvaluateSummary } from './evaluate-aggregation.js';
export { SERVER_OPTIMIZER_OF, STRATEGY_OPTION_KEYS, compileStrategyOptions } from './strategy-options.js';
export type { CompiledStrategyOptions, StrategyOptions } from './strategy-options.js';
export { createStrategy } from './strategy.js';
export type { FitAggregate, FitRoundConfig, RoundPlan, Strategy, StrategyContext, StrategyState } from './strategy.js';
