/**
 * Small seeded models and batches for the model tests (not a test file itself).
 */
import { mulberry32 } from '../../../../shared/random.js';
import type { NamedTensors } from '../../../../shared/tensors.js';
import type { Batch, LlamaConfig, LoraSpec, LoraTarget, ModelSpec, Task } from '../../../../shared/model/types.js';
import { LORA_TARGETS } from '../../../../shared/model/types.js';

/** A decoder small enough for finite differences: GQA (4 query heads, 2 kv heads), 2 layers. */
export function tinyConfig(overrides: Partial<LlamaConfig> = {}): LlamaConfig {
  return { vocabSize: 40, dim: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, hiddenDim: 24, normEps: 1e-5, ropeTheta: 10000, contextLength: 32, ...overrides };
}

export function loraSpec(overrides: Partial<LoraSpec> = {}): LoraSpec {
  return { method: 'lora', r: 4, loraAlpha: 8, loraDropout: 0, targetModules: [...LORA_TARGETS] as LoraTarget[], useRslora: false, ...overrides };
}

export function modelSpec(task: Task, overrides: Partial<ModelSpec> = {}): ModelSpec {
  return { task, numLabels: 3, pooling: 'mean', peft: loraSpec(), ...overrides };
}

/** Fill every LoRA B with seeded values so that adapters actually change the model. */
export function withNonZeroB(values: NamedTensors, seed: number, scale = 0.2): NamedTensors {
  const rng = mulberry32(seed);
  const out: NamedTensors = new Map();
  for (const [name, v] of values) {
    out.set(name, name.includes('lora_B') ? Float32Array.from(v, () => (2 * rng() - 1) * scale) : v);
  }
  return out;
}

/**
 * A right-padded batch: sequence b has `lengths[b]` real tokens. Classification labels are class ids; causal-lm
 * labels are next tokens, -100 on padding and on the last real token.
 */
export function makeBatch(seed: number, lengths: number[], seqLen: number, task: Task, vocabSize: number, numLabels = 3): Batch {
  const rng = mulberry32(seed);
  const batchSize = lengths.length;
  const inputIds = new Int32Array(batchSize * seqLen);
  const attentionMask = new Int32Array(batchSize * seqLen);
  for (let b = 0; b < batchSize; b++) {
    for (let t = 0; t < lengths[b]; t++) {
      inputIds[b * seqLen + t] = 1 + Math.floor(rng() * (vocabSize - 1));
      attentionMask[b * seqLen + t] = 1;
    }
  }
  let labels: Int32Array;
  if (task === 'classification') {
    labels = Int32Array.from(lengths, () => Math.floor(rng() * numLabels));
  } else {
    labels = new Int32Array(batchSize * seqLen).fill(-100);
    for (let b = 0; b < batchSize; b++) for (let t = 0; t + 1 < lengths[b]; t++) labels[b * seqLen + t] = inputIds[b * seqLen + t + 1];
  }
  return { batchSize, seqLen, inputIds, attentionMask, labels };
}

/** Rows `from .. to-1` of a batch, optionally re-padded to a shorter `seqLen`. */
export function sliceBatch(batch: Batch, from: number, to: number, seqLen = batch.seqLen): Batch {
  const rows = to - from;
  const inputIds = new Int32Array(rows * seqLen);
  const attentionMask = new Int32Array(rows * seqLen);
  const perToken = batch.labels.length !== batch.batchSize;
  const labels = perToken ? new Int32Array(rows * seqLen) : batch.labels.slice(from, to);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < seqLen; t++) {
      const src = (from + r) * batch.seqLen + t;
      inputIds[r * seqLen + t] = batch.inputIds[src];
      attentionMask[r * seqLen + t] = batch.attentionMask[src];
      if (perToken) labels[r * seqLen + t] = batch.labels[src];
    }
  }
  return { batchSize: rows, seqLen, inputIds, attentionMask, labels };
}

/** ‖a − b‖₂ / ‖b‖₂ in float64 (0 when both are zero). */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/** Element-wise sum of two gradient maps. */
export function addGrads(a: NamedTensors, b: NamedTensors): NamedTensors {
  const out: NamedTensors = new Map();
  for (const [name, v] of a) out.set(name, Float32Array.from(v, (x, i) => x + (b.get(name) as Float32Array)[i]));
  return out;
}
