import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeBaseModel, loadBaseModel, loadModel, trainablePlanOf } from '../../../../shared/model/load-model.js';
import type { ModelSpec } from '../../../../shared/model/types.js';

const BERT_DIR = join(import.meta.dirname, '../../../fixtures/hf-bert');
const LLAMA_DIR = join(import.meta.dirname, '../../../fixtures/hf-llama/model');

const LORA: ModelSpec = {
  task: 'classification',
  numLabels: 2,
  pooling: 'mean',
  peft: { method: 'lora', r: 2, loraAlpha: 4, loraDropout: 0, targetModules: ['q', 'v'], useRslora: false },
};

describe('model-family dispatch', () => {
  it('loads a BERT directory as family bert, with the BERT manifest and the checkpoint head', async () => {
    const loaded = await loadBaseModel(BERT_DIR);
    expect(loaded.family).toBe('bert');
    expect(describeBaseModel(loaded)).toBe('bert, 2 layers, width 32, vocab 140');
    const plan = trainablePlanOf(loaded, LORA, 3);
    expect(plan.manifest.map((t) => t.name).slice(0, 2)).toEqual([
      'bert.encoder.layer.0.attention.self.query.lora_A.weight',
      'bert.encoder.layer.0.attention.self.query.lora_B.weight',
    ]);
    expect(plan.manifest.at(-1)).toEqual({ name: 'classifier.bias', shape: [2] });
    expect(loaded.family === 'bert' && plan.initial.get('classifier.weight')).toEqual(loaded.family === 'bert' && loaded.head?.weight);
  });

  it('refuses top layers it lacks, an unknown task and a max_length beyond the positions of BERT, naming what and why; causal-lm is masked-LM', async () => {
    const loaded = await loadBaseModel(BERT_DIR);
    expect(() => trainablePlanOf(loaded, { ...LORA, peft: { method: 'feature', trainableTopLayers: 3 } }, 0)).toThrow(
      'peft.trainable_top_layers must be an integer in [0, 2], got 3',
    );
    expect(() => trainablePlanOf(loaded, { ...LORA, task: 'translation' as never }, 0)).toThrow(/task "translation" is not supported by BERT models/);
    // causal-lm on an encoder is masked-LM: the fixture has no MLM head, so a new one trains beside LoRA.
    expect(trainablePlanOf(loaded, { ...LORA, task: 'causal-lm' }, 0).manifest.at(-1)?.name).toBe('cls.predictions.bias');
    expect(() => trainablePlanOf(loaded, LORA, 0, 65)).toThrow("max_length 65 exceeds the BERT model's max_position_embeddings 64");
    expect(trainablePlanOf(loaded, LORA, 0, 64).manifest.length).toBeGreaterThan(0);
  });

  it('loadModel (LLaMA-only callers) refuses a BERT directory clearly; LLaMA directories load as before', async () => {
    await expect(loadModel(BERT_DIR)).rejects.toThrow(`model directory ${BERT_DIR} holds a BERT model (model_type "bert"): this command supports LLaMA-family models only`);
    expect((await loadBaseModel(LLAMA_DIR)).family).toBe('llama');
  });
});
