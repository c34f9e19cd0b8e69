import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { BertTaskModel } from '../../../../../shared/model/bert/bert-task-model.js';
import { bertTrainableManifest, initBertTrainableValues } from '../../../../../shared/model/bert/bert-trainable.js';
import { loadHfBert, type LoadedBert } from '../../../../../shared/model/bert/load-hf-bert.js';
import type { Batch, ModelSpec, PeftSpec } from '../../../../../shared/model/types.js';
import type { NamedTensors } from '../../../../../shared/tensors.js';
import { adamStep } from '../../../../helpers/host-adam.js';
import { selectBackend } from '../../../../../worker/backend.js';
import { maxAbsDiff } from '../../../../helpers/max-abs-diff.js';

const FIXTURE = join(import.meta.dirname, '../../../../fixtures/hf-bert');

const METHODS: Record<string, { peft: PeftSpec; lr: number }> = {
  lora: { peft: { method: 'lora', r: 4, loraAlpha: 8, loraDropout: 0, targetModules: ['q', 'v'], useRslora: false }, lr: 0.05 },
  adapter: { peft: { method: 'adapter', adapterSize: 8, nonLinearity: 'relu' }, lr: 0.05 },
  prompt: { peft: { method: 'prompt', numVirtualTokens: 4 }, lr: 0.05 },
  feature: { peft: { method: 'feature', trainableTopLayers: 0 }, lr: 0.05 },
  'feature-top1': { peft: { method: 'feature', trainableTopLayers: 1 }, lr: 0.02 },
  full: { peft: { method: 'full' }, lr: 0.02 },
};

function specOf(peft: PeftSpec): ModelSpec {
  return { task: 'classification', numLabels: 2, pooling: 'mean', peft };
}

describe('BERT fine-tuning methods (lora, adapter, prompt, feature, full) on the fixture, wasm backend', () => {
  let loaded: LoadedBert;
  let batch: Batch;

  beforeAll(async () => {
    await selectBackend('wasm');
    loaded = await loadHfBert(FIXTURE);
    const ref = JSON.parse(await readFile(join(FIXTURE, 'reference.json'), 'utf8')) as { batch_size: number; seq_len: number; input_ids: number[]; attention_mask: number[] };
    // Labels the checkpoint's head gets wrong for half the batch, so there is loss to lower.
    batch = {
      batchSize: ref.batch_size,
      seqLen: ref.seq_len,
      inputIds: Int32Array.from(ref.input_ids),
      attentionMask: Int32Array.from(ref.attention_mask),
      labels: Int32Array.from({ length: ref.batch_size }, (_, i) => i % 2),
    };
  });

  for (const [name, { peft, lr }] of Object.entries(METHODS)) {
    it(`${name}: lowers the loss in 6 steps with a flat tensor count, manifest and seeded init equal to the TF.js-free plan`, () => {
      const spec = specOf(peft);
      const model = BertTaskModel.create(loaded, spec);
      try {
        expect(model.manifest).toEqual(bertTrainableManifest(loaded.config, spec));
        const planned = initBertTrainableValues(loaded.config, spec, 5, loaded.head, loaded.weights);
        const init = model.initTrainable(5);
        expect([...init.keys()]).toEqual(model.manifest.map((s) => s.name));
        for (const [n, v] of planned) expect(init.get(n), n).toEqual(v);
        model.setTrainable(init);

        const first = model.evaluate(batch).lossSum;
        let values = init;
        const state = new Map<string, { m: Float32Array; v: Float32Array }>();
        let tensorsAfterFirst = 0;
        for (let step = 1; step <= 6; step++) {
          const { grads } = model.computeGradients(batch);
          for (const [n, g] of grads) expect(g.every(Number.isFinite), n).toBe(true);
          values = adamStep(values, grads, state, step, lr);
          model.setTrainable(values);
          if (step === 1) tensorsAfterFirst = tf.memory().numTensors;
        }
        expect(tf.memory().numTensors).toBe(tensorsAfterFirst);
        const last = model.evaluate(batch).lossSum;
        expect(last).toBeLessThan(first * 0.8);
      } finally {
        model.dispose();
      }
    });
  }

  it('every method but prompt starts at the base model: initial logits equal the checkpoint classifier', () => {
    const logits = Object.values(METHODS).filter(({ peft }) => peft.method !== 'prompt').map(({ peft }) => {
      const model = BertTaskModel.create(loaded, specOf(peft));
      try {
        return model.logits(batch);
      } finally {
        model.dispose();
      }
    });
    for (const l of logits.slice(1)) expect(maxAbsDiff(l, logits[0])).toBeLessThan(1e-5);
  });

  it('full trains every base tensor, embeddings included (their gradients are not all zero on wasm); feature 0 trains the classifier only', () => {
    const full = BertTaskModel.create(loaded, specOf({ method: 'full' }));
    try {
      expect(full.manifest.length).toBe(loaded.weights.size + 2);
      const { grads } = full.computeGradients(batch);
      for (const n of ['bert.embeddings.word_embeddings.weight', 'bert.embeddings.position_embeddings.weight', 'bert.encoder.layer.0.attention.self.query.weight', 'bert.pooler.dense.bias']) {
        expect((grads.get(n) as Float32Array).some((x) => x !== 0), n).toBe(true);
      }
      // Rows of word ids absent from the batch get no gradient.
      const used = new Set(batch.inputIds);
      const h = loaded.config.hiddenSize;
      const word = grads.get('bert.embeddings.word_embeddings.weight') as Float32Array;
      const absent = [...Array(loaded.config.vocabSize).keys()].find((id) => !used.has(id)) as number;
      expect(word.subarray(absent * h, (absent + 1) * h).every((x) => x === 0)).toBe(true);
    } finally {
      full.dispose();
    }
    expect(bertTrainableManifest(loaded.config, specOf({ method: 'feature', trainableTopLayers: 0 })).map((s) => s.name)).toEqual(['classifier.weight', 'classifier.bias']);
    const top1 = bertTrainableManifest(loaded.config, specOf({ method: 'feature', trainableTopLayers: 1 })).map((s) => s.name);
    expect(top1.every((n) => n.startsWith('bert.encoder.layer.1.') || n.startsWith('bert.pooler.') || n.startsWith('classifier.'))).toBe(true);
    expect(top1).toContain('bert.pooler.dense.weight');
  });

  it('prompt: virtual tokens after [CLS] act like real tokens: embeddings of real ids give the logits of the longer sequence', () => {
    const model = BertTaskModel.create(loaded, specOf({ method: 'prompt', numVirtualTokens: 2 }));
    const plain = BertTaskModel.create(loaded, specOf({ method: 'full' }));
    try {
      const h = loaded.config.hiddenSize;
      const table = loaded.weights.get('embeddings.word_embeddings.weight') as Float32Array;
      const ids = [7, 9];
      const prompt = new Float32Array(2 * h);
      ids.forEach((id, p) => prompt.set(table.subarray(id * h, (id + 1) * h), p * h));
      model.setTrainable(new Map([...model.initTrainable(0)].map(([n, v]) => [n, n === 'prompt_embeddings' ? prompt : v])));
      const { batchSize, seqLen } = batch;
      const longer = seqLen + 2;
      const inputIds = new Int32Array(batchSize * longer);
      const attentionMask = new Int32Array(batchSize * longer);
      for (let b = 0; b < batchSize; b++) {
        const src = (i: number): number => b * seqLen + i;
        inputIds[b * longer] = batch.inputIds[src(0)];
        attentionMask[b * longer] = 1;
        inputIds.set(ids, b * longer + 1);
        attentionMask.fill(1, b * longer + 1, b * longer + 3);
        inputIds.set(batch.inputIds.subarray(src(1), src(seqLen)), b * longer + 3);
        attentionMask.set(batch.attentionMask.subarray(src(1), src(seqLen)), b * longer + 3);
      }
      const expected = plain.logits({ batchSize, seqLen: longer, inputIds, attentionMask, labels: batch.labels });
      expect(maxAbsDiff(model.logits(batch), expected)).toBeLessThan(1e-5);
    } finally {
      model.dispose();
      plain.dispose();
    }
  });

  it('refuses too many virtual tokens and trainable_top_layers beyond the layer count, naming the field', () => {
    expect(() => BertTaskModel.create(loaded, specOf({ method: 'prompt', numVirtualTokens: 63 }))).toThrow(
      "peft.num_virtual_tokens 63 leaves no room in the model's max_position_embeddings 64",
    );
    expect(() => BertTaskModel.create(loaded, specOf({ method: 'feature', trainableTopLayers: 3 }))).toThrow('peft.trainable_top_layers must be an integer in [0, 2], got 3');
  });
});
