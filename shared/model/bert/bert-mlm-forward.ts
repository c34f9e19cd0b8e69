/**
 * The forward pass of the masked-LM head (see bert-mlm-head.ts for its tensors and what trains).
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelOps } from '../ops.js';
import { geluErf, layerNorm } from './bert-encoder.js';
import { BERT_MLM_BIAS, BERT_MLM_DENSE_BIAS, BERT_MLM_DENSE_WEIGHT, BERT_MLM_NORM_BIAS, BERT_MLM_NORM_WEIGHT } from './bert-mlm-head.js';

/**
 * Vocabulary logits `[n, vocab]` of hidden states `x` `[n, hidden]`.
 * @param head the head's tensors by name (trainable or frozen: the gradient reaches whichever the caller differentiates).
 * @param wordEmbeddings the tied decoder weight `[vocab, hidden]`.
 */
export function bertMlmLogits(x: tf.Tensor2D, head: ReadonlyMap<string, tf.Tensor>, wordEmbeddings: tf.Tensor2D, ops: ModelOps, eps: number): tf.Tensor2D {
  const get = <T extends tf.Tensor>(name: string): T => head.get(name) as T;
  const dense = tf.add(ops.trainableLinear(x, get<tf.Tensor2D>(BERT_MLM_DENSE_WEIGHT)), get<tf.Tensor1D>(BERT_MLM_DENSE_BIAS)) as tf.Tensor2D;
  const normed = layerNorm(geluErf(dense), { gamma: get<tf.Tensor1D>(BERT_MLM_NORM_WEIGHT), beta: get<tf.Tensor1D>(BERT_MLM_NORM_BIAS) }, eps);
  return tf.add(tf.matMul(normed, wordEmbeddings, false, true), get<tf.Tensor1D>(BERT_MLM_BIAS)) as tf.Tensor2D;
}
