/**
 * Where AdamW runs in a data-parallel run with `topk` gradients (`sparse_optimizer`): on the coordinator (sparse
 * gradients in, AdamW on their mean) or on each worker (sparse error-fed AdamW updates in, their weighted mean added
 * linearly; worker/local-adamw-updates.ts). Dense codecs always keep AdamW on the coordinator.
 */
import type { RunConfig } from '../shared/config.js';
import { toCodecPolicy } from '../shared/config.js';
import { resolveCodec } from '../shared/codecs/index.js';
import { resolveWarmupSteps, type WorkerAdamWSettings } from '../shared/optimizers/index.js';
import type { TensorSpec } from '../shared/tensors.js';

/** Whether some trainable tensor's gradient codec is `topk`. */
export function hasSparseGradients(config: RunConfig, manifest: readonly TensorSpec[]): boolean {
  const policy = toCodecPolicy(config.grads_codec, config.grads_codec_overrides);
  return manifest.some((t) => resolveCodec(policy, t.name).codec === 'topk');
}

/** Whether workers step AdamW themselves and send updates: `sparse_optimizer: worker` with a `topk` tensor, data-parallel. */
export function usesWorkerOptimizer(config: RunConfig, manifest: readonly TensorSpec[]): boolean {
  return config.mode !== 'federated' && config.sparse_optimizer === 'worker' && hasSparseGradients(config, manifest);
}

/** The AdamW settings workers need (sent as `settings.worker_adamw`), or undefined when the coordinator steps AdamW. */
export function workerAdamWSettings(config: RunConfig, manifest: readonly TensorSpec[], totalSteps: number): WorkerAdamWSettings | undefined {
  if (!usesWorkerOptimizer(config, manifest)) return undefined;
  return {
    adamw: { beta1: config.adam_beta1, beta2: config.adam_beta2, epsilon: config.adam_epsilon, weightDecay: config.weight_decay },
    schedule: {
      baseLearningRate: config.learning_rate,
      type: config.lr_scheduler_type,
      warmupSteps: resolveWarmupSteps(config.warmup_steps, config.warmup_ratio, totalSteps),
      totalSteps,
    },
    maxGradNorm: config.max_grad_norm,
    lookahead: config.sparse_lookahead,
    finalFlush: config.sparse_final_flush,
    momentumMasking: config.sparse_momentum_masking,
    residualDecay: config.sparse_residual_decay,
    selection: config.topk_selection === 'fisher' ? 'fisher' : 'magnitude',
  };
}
