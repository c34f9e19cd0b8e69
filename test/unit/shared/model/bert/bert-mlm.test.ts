/**
 * BERT masked-LM (`task: causal-lm` on an encoder): logits of the BertForMaskedLM fixture against the PyTorch
 * reference of scripts/make-parity-fixtures-bert.py (base and with a LoRA adapter), which head tensors train per
 * method, the fresh head of a checkpoint without one, and a few steps of every method lowering the masked-token loss.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { BertTaskModel } from '../../../../../shared/model/bert/bert-task-model.js';
import { BERT_MLM_BIAS, BERT_MLM_DENSE_WEIGHT, bertMlmHeadManifest, initBertMlmHead } from '../../../../../shared/model/bert/bert-mlm-head.js';
import { bertTrainableManifest } from '../../../../../shared/model/bert/bert-trainable.js';
import { loadHfBert, type LoadedBert } from '../../../../../shared/model/bert/load-hf-bert.js';
import type { Batch, ModelSpec, PeftSpec } from '../../../../../shared/model/types.js';
import type { NamedTensors } from '../../../../../shared/tensors.js';
import { adamStep } from '../../../../helpers/host-adam.js';
import { selectBackend } from '../../../../../worker/backend.js';

const FIXTURES = join(import.meta.dirname, '../../../../fixtures');

interface MlmReference {
  batch_size: number;
  seq_len: number;
  input_ids: number[];
  attention_mask: number[];
  labels: number[];
  real_positions: number[];
  logits: number[];
  lora: { r: number; lora_alpha: number; tensors: Record<string, number[]>; masked_positions: number[]; logits: number[] };
}

const LORA: PeftSpec = { method: 'lora', r: 4, loraAlpha: 8, loraDropout: 0, targetModules: ['q', 'v'], useRslora: false };
const METHODS: Record<string, PeftSpec> = {
  lora: LORA,
  adapter: { method: 'adapter', adapterSize: 8, nonLinearity: 'relu' },
  prompt: { method: 'prompt', numVirtualTokens: 4 },
  feature: { method: 'feature', trainableTopLayers: 0 },
  'feature-top1': { method: 'feature', trainableTopLayers: 1 },
  full: { method: 'full' },
};

function mlmSpec(peft: PeftSpec): ModelSpec {
  return { task: 'causal-lm', numLabels: 2, pooling: 'mean', peft };
}

/** max |a[rows] − expected| over the listed rows of `[*, vocab]` logits. */
function maxRowDiff(actual: Float32Array, rows: number[], expected: number[], vocab: number): number {
  let m = 0;
  rows.forEach((row, r) => {
    for (let c = 0; c < vocab; c++) m = Math.max(m, Math.abs(actual[row * vocab + c] - expected[r * vocab + c]));
  });
  return m;
}

describe('BERT masked-LM on the fixtures, wasm backend', () => {
  let ref: MlmReference;
  let mlm: LoadedBert;
  let plain: LoadedBert;
  let batch: Batch;

  beforeAll(async () => {
    await selectBackend('wasm');
    ref = JSON.parse(await readFile(join(FIXTURES, 'hf-bert-mlm/reference.json'), 'utf8')) as MlmReference;
    mlm = await loadHfBert(join(FIXTURES, 'hf-bert-mlm'));
    plain = await loadHfBert(join(FIXTURES, 'hf-bert'));
    batch = {
      batchSize: ref.batch_size,
      seqLen: ref.seq_len,
      inputIds: Int32Array.from(ref.input_ids),
      attentionMask: Int32Array.from(ref.attention_mask),
      labels: Int32Array.from(ref.labels),
    };
  });

  it('loads the BertForMaskedLM checkpoint: head present, no pooler needed, [MASK] and the special ids known', () => {
    expect(mlm.mlmHead && [...mlm.mlmHead.keys()]).toEqual(bertMlmHeadManifest(mlm.config).map((t) => t.name));
    expect(plain.mlmHead).toBeUndefined();
    expect(mlm.maskTokenId).toBe(4);
    expect(mlm.specialTokenIds).toEqual([0, 1, 2, 3, 4]);
  });

  it('logits equal the PyTorch BertForMaskedLM reference within 1e-4, base and with a LoRA adapter', () => {
    const model = BertTaskModel.create(mlm, mlmSpec(LORA));
    try {
      const vocab = mlm.config.vocabSize;
      // LoRA B starts at 0: the base model.
      expect(maxRowDiff(model.logits(batch), ref.real_positions, ref.logits, vocab)).toBeLessThan(1e-4);
      const values: NamedTensors = new Map();
      for (const [name, data] of Object.entries(ref.lora.tensors)) values.set(name, Float32Array.from(data));
      // The loaded head stays frozen under LoRA: the adapter is the whole trainable set.
      expect([...values.keys()].sort()).toEqual(model.manifest.map((t) => t.name).sort());
      model.setTrainable(values);
      expect(maxRowDiff(model.logits(batch), ref.lora.masked_positions, ref.lora.logits, vocab)).toBeLessThan(1e-4);
      // The loss is the mean NLL over the labelled positions only.
      const stats = model.evaluate(batch);
      expect(stats.numLossItems).toBe(ref.lora.masked_positions.length);
    } finally {
      model.dispose();
    }
  });

  it('which head tensors train: PEFT methods keep a loaded head frozen and train a new one; feature and full always; no pooler', () => {
    for (const [name, peft] of Object.entries(METHODS)) {
      const spec = mlmSpec(peft);
      const loaded = bertTrainableManifest(mlm.config, spec, { hasMlmHead: true }).map((t) => t.name);
      const fresh = bertTrainableManifest(plain.config, spec, { hasMlmHead: false }).map((t) => t.name);
      const alwaysTrains = peft.method === 'full' || peft.method === 'feature';
      expect(loaded.includes(BERT_MLM_DENSE_WEIGHT), name).toBe(alwaysTrains);
      expect(fresh.includes(BERT_MLM_DENSE_WEIGHT), name).toBe(true);
      expect(fresh.includes(BERT_MLM_BIAS), name).toBe(true);
      expect(fresh.some((n) => n.includes('pooler') || n.startsWith('classifier')), name).toBe(false);
    }
  });

  it('a checkpoint without head gets the seeded Hugging Face initialisation (dense N(0, 0.02²), LayerNorm 1/0, biases 0)', () => {
    const model = BertTaskModel.create(plain, mlmSpec(LORA));
    try {
      const init = model.initTrainable(42);
      const fresh = initBertMlmHead(plain.config, 42);
      for (const [name, values] of fresh) expect(init.get(name), name).toEqual(values);
      const w = fresh.get(BERT_MLM_DENSE_WEIGHT) as Float32Array;
      const std = Math.sqrt(w.reduce((s, x) => s + x * x, 0) / w.length);
      expect(std).toBeGreaterThan(0.015);
      expect(std).toBeLessThan(0.025);
      expect(initBertMlmHead(plain.config, 43).get(BERT_MLM_DENSE_WEIGHT)).not.toEqual(w);
    } finally {
      model.dispose();
    }
  });

  for (const [name, peft] of Object.entries(METHODS)) {
    it(`${name}: 6 steps lower the masked-token loss with a flat tensor count (fresh head on hf-bert)`, () => {
      const model = BertTaskModel.create(plain, mlmSpec(peft));
      try {
        let values = model.initTrainable(3);
        model.setTrainable(values);
        const first = model.evaluate(batch);
        const state = new Map<string, { m: Float32Array; v: Float32Array }>();
        let tensorsAfterFirst = 0;
        for (let step = 1; step <= 6; step++) {
          const { grads, stats } = model.computeGradients(batch);
          expect(stats.numLossItems).toBe(ref.lora.masked_positions.length);
          for (const [n, g] of grads) expect(g.every(Number.isFinite), n).toBe(true);
          values = adamStep(values, grads, state, step, peft.method === 'full' || peft.method === 'feature' ? 0.02 : 0.05);
          model.setTrainable(values);
          if (step === 1) tensorsAfterFirst = tf.memory().numTensors;
        }
        expect(tf.memory().numTensors).toBe(tensorsAfterFirst);
        expect(model.evaluate(batch).lossSum).toBeLessThan(first.lossSum * 0.9);
      } finally {
        model.dispose();
      }
    });
  }
});
