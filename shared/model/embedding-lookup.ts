/**
 * A differentiable embedding lookup that trains on every backend.
 *
 * The gradient TF.js registers for `tf.gather` scatters `dy` back with `UnsortedSegmentSum`, a kernel the wasm
 * backend does not have: full fine-tuning (a trainable `token_embd`) fails there with "Kernel 'UnsortedSegmentSum'
 * not registered". This lookup keeps `tf.gather` for the forward pass and writes the backward pass itself:
 * - where the backend has `UnsortedSegmentSum` (cpu, tensorflow), `dTable = unsortedSegmentSum(dy, ids, vocabSize)`;
 * - elsewhere (wasm), `dTable = Sᵀ·dy` with `S` the `[n, vocabSize]` one-hot selection, held as the constant
 *   `Sᵀ` `[vocabSize, n]` so that the product is one plain 2-D `tf.matMul` (wasm's fast path). `Sᵀ` costs
 *   `vocabSize · n · 4` bytes per call (stories260K, 512 × 1,024 tokens: 2 MiB); when that would pass
 *   {@link ONE_HOT_LIMIT_ELEMENTS} the rows are summed on the host instead (exact, O(n · dim), one read-back).
 * All three give the same sums (float32 additions in a different order). {@link embeddingColumnLookup} does the same
 * for the columns of a `[r, vocabSize]` matrix (LoRA on the embedding: `lora_embedding_A`).
 */
import * as tf from '@tensorflow/tfjs';

/** Above this many elements of `Sᵀ` (64 Mi floats = 256 MiB) the wasm gradient sums rows on the host instead. */
export const ONE_HOT_LIMIT_ELEMENTS = 64 * 1024 * 1024;

/** How the gradient of {@link embeddingLookup} is formed on the current backend. */
export type EmbeddingGradPath = 'segment-sum' | 'one-hot' | 'host';

/** The gradient path {@link embeddingLookup} takes for `numIds` ids into a `vocabSize`-row table on this backend. */
export function embeddingGradPath(numIds: number, vocabSize: number): EmbeddingGradPath {
  if (tf.getKernel('UnsortedSegmentSum', tf.getBackend()) !== undefined) return 'segment-sum';
  return numIds * vocabSize <= ONE_HOT_LIMIT_ELEMENTS ? 'one-hot' : 'host';
}

type Save = (tensors: tf.Tensor[]) => void;

/**
 * Rows of a trainable table: `table` `[vocabSize, dim]`, `ids` (every entry in `[0, vocabSize)`, checked by the
 * caller) → `[ids.length, dim]`, differentiable in `table` on every backend (see the module comment).
 * @param path force a gradient path (tests); `segment-sum` needs the kernel. @default {@link embeddingGradPath}
 */
export function embeddingLookup(table: tf.Tensor2D, ids: Int32Array, path?: EmbeddingGradPath): tf.Tensor2D {
  const [vocabSize, dim] = table.shape;
  const gradPath = path ?? embeddingGradPath(ids.length, vocabSize);
  const op = tf.customGrad((tableIn: tf.Tensor | Save) => {
    const value = tf.gather(tableIn as tf.Tensor2D, tf.tensor1d(ids, 'int32')) as tf.Tensor2D;
    const gradFunc = (dy: tf.Tensor): tf.Tensor => {
      if (gradPath === 'segment-sum') return tf.unsortedSegmentSum(dy, tf.tensor1d(ids, 'int32'), vocabSize);
      if (gradPath === 'one-hot') return tf.matMul(tf.tensor2d(selectionTransposed(ids, vocabSize), [vocabSize, ids.length]), dy as tf.Tensor2D);
      const rows = dy.dataSync();
      const sums = new Float32Array(vocabSize * dim);
      for (let i = 0; i < ids.length; i++) {
        const dst = ids[i] * dim;
        const src = i * dim;
        for (let j = 0; j < dim; j++) sums[dst + j] += rows[src + j];
      }
      return tf.tensor2d(sums, [vocabSize, dim]);
    };
    return { value, gradFunc };
  });
  return op(table) as tf.Tensor2D;
}

/** `Sᵀ` `[vocabSize, n]` row-major: 1 at `(ids[i], i)`. */
function selectionTransposed(ids: Int32Array, vocabSize: number): Float32Array {
  const n = ids.length;
  const out = new Float32Array(vocabSize * n);
  for (let i = 0; i < n; i++) out[ids[i] * n + i] = 1;
  return out;
}

/**
 * Columns of a trainable `[r, vocabSize]` matrix (LoRA's `lora_embedding_A`), one per id, as rows: `ids` →
 * `[ids.length, r]` with row `i` = `table[:, ids[i]]`. Differentiable in `table` on every backend by the same three
 * paths as {@link embeddingLookup} (the gradient, `[r, vocabSize]`, is theirs transposed); never materialises the
 * `[vocabSize, r]` transpose in the forward pass.
 * @param path force a gradient path (tests); `segment-sum` needs the kernel. @default {@link embeddingGradPath}
 */
export function embeddingColumnLookup(table: tf.Tensor2D, ids: Int32Array, path?: EmbeddingGradPath): tf.Tensor2D {
  const [rank, vocabSize] = table.shape;
  const gradPath = path ?? embeddingGradPath(ids.length, vocabSize);
  const op = tf.customGrad((tableIn: tf.Tensor | Save) => {
    const value = tf.transpose(tf.gather(tableIn as tf.Tensor2D, tf.tensor1d(ids, 'int32'), 1)) as tf.Tensor2D;
    const gradFunc = (dy: tf.Tensor): tf.Tensor => {
      if (gradPath === 'segment-sum') return tf.transpose(tf.unsortedSegmentSum(dy, tf.tensor1d(ids, 'int32'), vocabSize));
      // dTable = dyᵀ·S with S the [n, vocabSize] one-hot selection: one plain 2-D product; dyᵀ is only [r, n].
      if (gradPath === 'one-hot') return tf.matMul(tf.transpose(dy), tf.tensor2d(selection(ids, vocabSize), [ids.length, vocabSize]));
      const rows = dy.dataSync();
      const sums = new Float32Array(rank * vocabSize);
      for (let i = 0; i < ids.length; i++) {
        for (let k = 0; k < rank; k++) sums[k * vocabSize + ids[i]] += rows[i * rank + k];
      }
      return tf.tensor2d(sums, [rank, vocabSize]);
    };
    return { value, gradFunc };
  });
  return op(table) as tf.Tensor2D;
}

/** `S` `[n, vocabSize]` row-major: 1 at `(i, ids[i])`. */
function selection(ids: Int32Array, vocabSize: number): Float32Array {
  const out = new Float32Array(ids.length * vocabSize);
  for (let i = 0; i < ids.length; i++) out[i * vocabSize + ids[i]] = 1;
  return out;
}
