import { mkdtempSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPeftAdapter } from '../../../../shared/formats/peft-adapter.js';
import { bertTargetModules, bertTargetsOfModules } from '../../../../shared/formats/peft-bert.js';
import { writeSafetensors } from '../../../../shared/formats/safetensors.js';
import { loadHfBert } from '../../../../shared/model/bert/load-hf-bert.js';

const BERT_DIR = join(import.meta.dirname, '../../../fixtures/hf-bert');

describe('PEFT target_modules for BERT', () => {
  it('names targets by suffix when that selects exactly them, and reads them back', () => {
    expect(bertTargetModules(['q', 'v'])).toEqual(['query', 'value']);
    expect(bertTargetModules(['o', 'up', 'down'])).toEqual(['attention.output.dense', 'intermediate.dense', 'output.dense']);
    expect(bertTargetsOfModules(['query', 'value'])).toEqual(['q', 'v']);
    // PEFT's suffix rule: `output.dense` also matches `attention.output.dense`.
    expect(bertTargetsOfModules(['output.dense'])).toEqual(['o', 'down']);
    expect(bertTargetsOfModules(['dense'])).toEqual(['o', 'up', 'down']);
  });

  it('falls back to a regex PEFT full-matches when no suffix list is exact (down without o)', () => {
    const modules = bertTargetModules(['q', 'down']);
    expect(typeof modules).toBe('string');
    expect(bertTargetsOfModules(modules)).toEqual(['q', 'down']);
  });

  it('selects nothing for LLaMA names, an empty list or a bad regex', () => {
    expect(bertTargetsOfModules(['q_proj', 'v_proj'])).toBeUndefined();
    expect(bertTargetsOfModules([])).toBeUndefined();
    expect(bertTargetsOfModules('(')).toBeUndefined();
  });
});

describe('importing a BERT adapter written by Python PEFT', () => {
  it('reads targets, labels from the classifier rows, and checks shapes against the model', async () => {
    const { config } = await loadHfBert(BERT_DIR);
    const dir = mkdtempSync(join(tmpdir(), 'swarmtune-peft-bert-'));
    const r = 2;
    const tensors = [];
    for (let layer = 0; layer < config.nLayers; layer++) {
      for (const module of ['query', 'value']) {
        const base = `base_model.model.bert.encoder.layer.${layer}.attention.self.${module}`;
        tensors.push({ name: `${base}.lora_A.weight`, shape: [r, config.hiddenSize], data: new Float32Array(r * config.hiddenSize).fill(0.5) });
        tensors.push({ name: `${base}.lora_B.weight`, shape: [config.hiddenSize, r], data: new Float32Array(config.hiddenSize * r).fill(0.25) });
      }
    }
    tensors.push({ name: 'base_model.model.classifier.weight', shape: [3, config.hiddenSize], data: new Float32Array(3 * config.hiddenSize) });
    tensors.push({ name: 'base_model.model.classifier.bias', shape: [3], data: new Float32Array(3) });
    await writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
    const adapterConfig = { peft_type: 'LORA', task_type: 'SEQ_CLS', r, lora_alpha: 4, lora_dropout: 0.1, target_modules: ['query', 'value'], modules_to_save: ['classifier'], bias: 'none' };
    await writeFile(join(dir, 'adapter_config.json'), JSON.stringify(adapterConfig));
    const adapter = await loadPeftAdapter(dir, config);
    expect(adapter.spec).toMatchObject({ task: 'classification', numLabels: 3, peft: { method: 'lora', r, loraAlpha: 4, targetModules: ['q', 'v'] } });
    expect(adapter.tensors.get('bert.encoder.layer.1.attention.self.value.lora_B.weight')?.[0]).toBe(0.25);
    expect(adapter.tensors.has('classifier.bias')).toBe(true);

    await writeFile(join(dir, 'adapter_config.json'), JSON.stringify({ ...adapterConfig, target_modules: ['query', 'key'] }));
    await expect(loadPeftAdapter(dir, config)).rejects.toThrow(`tensor base_model.model.bert.encoder.layer.0.attention.self.key.lora_A.weight is missing`);
    await writeFile(join(dir, 'adapter_config.json'), JSON.stringify({ ...adapterConfig, target_modules: ['pooler'] }));
    await expect(loadPeftAdapter(dir, config)).rejects.toThrow(/target_modules \["pooler"\] select no BERT encoder linear layers/);
  });
});
