/**
 * The q/k row permutation between Hugging Face's LLaMA layout and the GGUF layout this project computes in.
 *
 * Hugging Face's `LlamaAttention` rotates the two HALVES of each head (`rotate_half`), llama.cpp (and this project,
 * see shared/model/rope.ts) rotates ADJACENT pairs. llama.cpp's convert_hf_to_gguf.py makes an HF checkpoint
 * compute the same function in its layout by permuting the output rows of q_proj (with `num_attention_heads`) and
 * k_proj (with `num_key_value_heads`):
 *
 *   w.reshape(n_head, 2, rows // n_head // 2, *rest).swapaxes(1, 2).reshape(w.shape)
 *
 * i.e. within head h, HF row `h·hd + j·hd/2 + i` becomes GGUF row `h·hd + 2i + j` (j ∈ {0, 1}). The same row
 * permutation applies to anything indexed by those output rows: a LoRA `lora_B` `[out, r]` (never `lora_A`).
 */
import { ErrorCode, ShapeError } from '../errors.js';

/** Which way to move rows. */
export type RopeRowDirection = 'hf-to-gguf' | 'gguf-to-hf';

/**
 * A copy of the row-major matrix `w` `[rows, cols]` with its rows permuted between the HF (rotate-half) and GGUF
 * (adjacent-pair) layouts, head by head.
 * @param numHeads heads that the rows split into: `num_attention_heads` for q, `num_key_value_heads` for k.
 * @throws ShapeError E_TENSOR_SHAPE when `w` is not `rows × cols` or `rows` does not split into heads of even width.
 */
export function permuteRopeRows(w: Float32Array, rows: number, cols: number, numHeads: number, direction: RopeRowDirection): Float32Array {
  if (w.length !== rows * cols) {
    throw new ShapeError(ErrorCode.TENSOR_SHAPE, `permuteRopeRows: ${w.length} values are not [${rows}, ${cols}]`);
  }
  const headDim = rows / numHeads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new ShapeError(ErrorCode.TENSOR_SHAPE, `permuteRopeRows: ${rows} rows do not split into ${numHeads} heads of even width`);
  }
  const half = headDim / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < numHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const hfRow = h * headDim + j * half + i;
        const ggufRow = h * headDim + 2 * i + j;
        const [from, to] = direction === 'hf-to-gguf' ? [hfRow, ggufRow] : [ggufRow, hfRow];
        out.set(w.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}
