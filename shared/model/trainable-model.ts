/**
 * The surface workers train through, whatever the architecture: {@link TaskModel} (LLaMA family, GGUF or HF) and
 * `BertTaskModel` (BERT family) both implement it. Parameters come in and gradients go out as named Float32Arrays
 * in manifest order; tensors stay inside the model.
 */
import type { NamedTensors, TensorSpec } from '../tensors.js';
import type { Batch, BatchStats, ModelSpec } from './types.js';

/** Options of {@link TrainableModel.computeGradients}. */
export interface TrainableGradientOptions {
  /** Seed of this call's dropout masks. @default a per-model counter */
  readonly dropoutSeed?: number;
}

/** See the module comment. */
export interface TrainableModel {
  readonly spec: ModelSpec;
  /** Trainable tensors in canonical order (the wire and checkpoint order). */
  readonly manifest: readonly TensorSpec[];
  /** Fresh trainable values, deterministic in `seed`. */
  initTrainable(seed: number): NamedTensors;
  /**
   * Exact-LoRA base residuals (federated aggregation).
   * @throws ConfigError E_CONFIG_INVALID for a model that does not support them.
   */
  setBaseResiduals(residuals: ReadonlyMap<string, Float32Array>): void;
  /**
   * Replace every trainable tensor (copied).
   * @throws ShapeError for a missing or unknown name or a wrong size.
   */
  setTrainable(values: NamedTensors): void;
  /** The current trainable values, in manifest order. */
  getTrainable(): NamedTensors;
  /** Loss statistics and gradients of the SUM of per-item losses, by manifest name. */
  computeGradients(batch: Batch, opts?: TrainableGradientOptions): { stats: BatchStats; grads: NamedTensors };
  /** Loss statistics of `batch` with the current parameters (no dropout, no gradients). */
  evaluate(batch: Batch): BatchStats;
  /** Free every tensor. */
  dispose(): void;
}
