/**
 * The contract between the model code and everything that trains it.
 */

/** Hyper-parameters of a LLaMA-family decoder (names follow llama.cpp's GGUF metadata, meanings follow HF). */
export interface LlamaConfig {
  readonly vocabSize: number;
  /** Model width (embedding length). */
  readonly dim: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  /** SwiGLU inner width (feed_forward_length). */
  readonly hiddenDim: number;
  readonly normEps: number;
  readonly ropeTheta: number;
  readonly contextLength: number;
}

/**
 * Frozen base weights by GGUF tensor name (`token_embd.weight`, `blk.0.attn_q.weight`, ..., `output_norm.weight`,
 * `output.weight`), row-major in PyTorch order (`[out, in]` for linear layers).
 */
export type BaseWeights = Map<string, Float32Array>;

/** The linear layers LoRA can target, by their short names. */
export const LORA_TARGETS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

/**
 * Every module LoRA can target, in canonical order: the linear layers, then `embed` (the token embedding,
 * PEFT's `embed_tokens`; see shared/adapters/lora-embedding.ts). `all-linear` selects the linear layers only.
 */
export const LORA_MODULES = [...LORA_TARGETS, 'embed'] as const;
export type LoraModule = (typeof LORA_MODULES)[number];

/** LoRA hyper-parameters (PEFT names in the config file, camelCase here). */
export interface LoraSpec {
  readonly method: 'lora';
  readonly r: number;
  readonly loraAlpha: number;
  readonly loraDropout: number;
  /** Adapted modules in canonical {@link LORA_MODULES} order. */
  readonly targetModules: readonly LoraModule[];
  /** rsLoRA: scale by alpha/sqrt(r) instead of alpha/r. */
  readonly useRslora: boolean;
}

/** Non-linearities of a bottleneck adapter (AdapterHub `non_linearity` names; `silu` is AdapterHub's `swish`). */
export const ADAPTER_NON_LINEARITIES = ['relu', 'silu', 'tanh'] as const;
export type AdapterNonLinearity = (typeof ADAPTER_NON_LINEARITIES)[number];

/**
 * Houlsby bottleneck adapters (shared/adapters/bottleneck.ts): after the attention and after the MLP of each block,
 * `y + U·act(D·y + b_D) + b_U` with `D` `[adapterSize, dim]`, `U` `[dim, adapterSize]` (U starts at zero).
 */
export interface BottleneckSpec {
  readonly method: 'adapter';
  /** Bottleneck width (AdapterHub: `dim / reduction_factor`). */
  readonly adapterSize: number;
  readonly nonLinearity: AdapterNonLinearity;
}

/** Prompt tuning (shared/adapters/prompt-tuning.ts): `numVirtualTokens` trainable embeddings before the input. */
export interface PromptTuningSpec {
  readonly method: 'prompt';
  readonly numVirtualTokens: number;
}

/** Feature-based: the body frozen, the head trained, and the top `trainableTopLayers` blocks (plus the final norm). */
export interface FeatureSpec {
  readonly method: 'feature';
  readonly trainableTopLayers: number;
}

/** Full fine-tuning: every base weight trainable (embedding included), and the head. */
export interface FullSpec {
  readonly method: 'full';
}

/** What a model trains, by PEFT method (`peft.method`). */
export type PeftSpec = LoraSpec | BottleneckSpec | PromptTuningSpec | FeatureSpec | FullSpec;

/** The values of `peft.method`. */
export const PEFT_METHODS = ['lora', 'adapter', 'prompt', 'feature', 'full'] as const;
export type PeftMethod = (typeof PEFT_METHODS)[number];

export type Task = 'classification' | 'causal-lm';
/**
 * What a run trains (the `task` key): a model {@link Task}, or `instruction` (instruction / input / output records
 * through a prompt template, loss on the response only), which is a causal-lm model fed masked labels.
 */
export type RunTask = Task | 'instruction';

/** The model head a run task trains: `instruction` is causal-lm. */
export function modelTaskOf(task: RunTask): Task {
  return task === 'instruction' ? 'causal-lm' : task;
}
export type Pooling = 'mean' | 'last';

/** What to build on top of the base model. */
export interface ModelSpec {
  readonly task: Task;
  /** Number of classes for `classification`; ignored for `causal-lm`. */
  readonly numLabels: number;
  readonly pooling: Pooling;
  readonly peft: PeftSpec;
}

/**
 * A padded batch, right-padded, row-major `[batchSize, seqLen]`.
 * `labels` is `[batchSize]` class ids for classification, `[batchSize * seqLen]` next-token targets for causal-lm
 * (already shifted: `labels[t]` is the token that should follow position t; -100 = ignore).
 */
export interface Batch {
  readonly batchSize: number;
  readonly seqLen: number;
  readonly inputIds: Int32Array;
  /** 1 for real tokens, 0 for padding. */
  readonly attentionMask: Int32Array;
  readonly labels: Int32Array;
}

/** Sums over a batch, so that results from several workers add up exactly. */
export interface BatchStats {
  /** Sum of per-sample losses (classification) or of per-token losses (causal-lm), in nats. */
  readonly lossSum: number;
  /** Number of samples (sequences) in the batch. */
  readonly numSamples: number;
  /** Number of loss-bearing items: samples for classification, target tokens for causal-lm. */
  readonly numLossItems: number;
  /** Real (non-padding) input tokens processed. */
  readonly numTokens: number;
  /** Correct predictions among the loss-bearing items (argmax). */
  readonly numCorrect: number;
}
