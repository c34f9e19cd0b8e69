/**
 * BERT masked-LM (`task: causal-lm` on the BERT fixture) in real data-parallel runs over loopback WebSockets with
 * 2 in-process workers: for every method, equal to the one-process reference on the same global batches (the mask
 * is made where slices are collated, keyed by example and step); then a few steps of every method on spam-assassin
 * text, and the LoRA run's PEFT adapter (task type none, `bert.` module paths, the new head as modules_to_save)
 * read back and exported as a merged BertForMaskedLM that gives the same logits.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { prepareRun } from '../../coordinator/run.js';
import { compileConfig, type RunConfig } from '../../shared/config.js';
import { exportHf } from '../../shared/formats/hf-export.js';
import { loadPeftAdapter } from '../../shared/formats/peft-adapter.js';
import { BertTaskModel } from '../../shared/model/bert/bert-task-model.js';
import { readSafetensors } from '../../shared/formats/safetensors.js';
import { loadHfBert } from '../../shared/model/bert/load-hf-bert.js';
import { selectBackend, type BackendReport } from '../../worker/backend.js';
import { runRecordingSteps } from '../helpers/in-process-workers.js';
import { dpConfig, makeDpFixture, maxRelativeDifference, NON_LORA_METHOD_PEFT, referenceRun, type DpFixture } from '../helpers/dp-fixture.js';
import { maxAbsDiff } from '../helpers/max-abs-diff.js';

const BERT_DIR = join(import.meta.dirname, '../fixtures/hf-bert');

const METHOD_PEFT: Record<string, Record<string, unknown>> = { lora: { r: 4, lora_alpha: 8, target_modules: ['q', 'v', 'down'] }, ...NON_LORA_METHOD_PEFT };

let fixture: DpFixture;
let backend: BackendReport;

beforeAll(async () => {
  fixture = await makeDpFixture();
  backend = await selectBackend('auto');
});

const train = (config: RunConfig, numWorkers: number) => runRecordingSteps(config, numWorkers, backend);

describe('BERT masked-LM in data-parallel runs', () => {
  for (const [method, peft] of Object.entries(METHOD_PEFT)) {
    it(`${method}: 2 workers equal the one-process reference`, async () => {
      const config = dpConfig(fixture, 2, { model: BERT_DIR, task: 'causal-lm', peft, max_steps: 3, learning_rate: 0.01 });
      const prepared = await prepareRun(config);
      expect(prepared.mlm?.maskTokenId).toBe(4);
      const reference = await referenceRun(config);
      const { result, logs } = await train(config, 2);
      expect(logs.some((l) => l.includes('masked-language modelling'))).toBe(true);
      expect(result.steps).toBe(3);
      result.stepLosses.forEach((loss, i) => expect(Math.abs(loss - reference.losses[i]) / reference.losses[i]).toBeLessThan(1e-4));
      expect(maxRelativeDifference(reference.params, prepared.initial)).toBeGreaterThan(1e-4);
      // A key bias has an exact gradient of 0 (softmax is shift-invariant across keys): AdamW's first steps turn the
      // float rounding left in it into ±learning-rate moves whose sign depends on summation order. Compared apart.
      const isKeyBias = (name: string): boolean => name.endsWith('attention.self.key.bias');
      const without = (params: Map<string, Float32Array>) => new Map([...params].filter(([name]) => !isKeyBias(name)));
      expect(maxRelativeDifference(without(result.params), without(reference.params))).toBeLessThan(1e-4);
      for (const [name, values] of reference.params) if (isKeyBias(name)) expect(maxRelativeDifference(new Map([[name, result.params.get(name) as Float32Array]]), new Map([[name, values]]))).toBeLessThan(1e-2);
    });
  }

  it('spam-assassin text: every method trains a few steps with 2 workers; the LoRA adapter is a BertForMaskedLM PEFT adapter', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmtune-bert-mlm-'));
    const outputs: Record<string, string> = {};
    for (const [method, peft] of Object.entries(METHOD_PEFT)) {
      const config = compileConfig({
        model: BERT_DIR,
        task: 'causal-lm',
        peft,
        max_steps: 3,
        max_train_samples: 24,
        max_eval_samples: 2,
        max_length: 48,
        per_device_train_batch_size: 4,
        workers: 2,
        learning_rate: method === 'full' || method === 'feature' ? 2e-3 : 1e-2,
        save_strategy: 'no',
        output_dir: join(dir, method),
      });
      const { result, records } = await train(config, 2);
      expect(result.steps, method).toBe(3);
      expect(records.every((r) => Number.isFinite(r.loss as number)), method).toBe(true);
      expect(Number.isFinite(result.evalLoss), method).toBe(true);
      outputs[method] = result.outputDir;
    }
    const adapterDir = join(outputs.lora, 'adapter');
    const adapterConfig = JSON.parse(readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(adapterConfig).toMatchObject({ peft_type: 'LORA', task_type: null, modules_to_save: ['cls.predictions.transform'] });
    const results = JSON.parse(readFileSync(join(outputs.lora, 'eval_results.json'), 'utf8')) as Record<string, number>;
    expect(results.perplexity).toBeCloseTo(Math.exp(results.eval_loss), 6);
    const keys = (await readSafetensors(join(adapterDir, 'adapter_model.safetensors'))).tensors.map((t) => t.name);
    expect(keys).toContain('base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight');
    expect(keys).toContain('base_model.model.cls.predictions.transform.dense.weight');
    expect(keys).toContain('base_model.model.cls.predictions.transform.LayerNorm.bias');
    expect(keys).toContain('base_model.model.cls.predictions.bias');
    expect(keys.some((k) => k.includes('classifier') || k.includes('pooler'))).toBe(false);
    const base = await loadHfBert(BERT_DIR);
    const imported = await loadPeftAdapter(adapterDir, base.config);
    expect(imported.spec.task).toBe('causal-lm');
    expect(imported.tensors.size).toBe(keys.length);

    // swarmtune export: the merged BertForMaskedLM (W + s·B·A, the trained head) gives the outputs of base + adapter.
    const exported = await exportHf({ model: BERT_DIR, adapterDir, outputDir: join(dir, 'export') });
    const mergedCheckpoint = await loadHfBert(exported.mergedDir as string);
    expect(JSON.parse(readFileSync(join(exported.mergedDir as string, 'config.json'), 'utf8')).architectures).toEqual(['BertForMaskedLM']);
    expect(mergedCheckpoint.mlmHead).toBeDefined();
    const ref = JSON.parse(readFileSync(join(BERT_DIR, 'reference.json'), 'utf8')) as { batch_size: number; seq_len: number; input_ids: number[]; attention_mask: number[] };
    const batch = { batchSize: ref.batch_size, seqLen: ref.seq_len, inputIds: Int32Array.from(ref.input_ids), attentionMask: Int32Array.from(ref.attention_mask), labels: new Int32Array(0) };
    const trained = BertTaskModel.create(base, imported.spec);
    const merged = BertTaskModel.create(mergedCheckpoint, imported.spec);
    try {
      trained.setTrainable(imported.tensors);
      merged.setTrainable(merged.initTrainable(0));
      const a = trained.logits(batch);
      const b = merged.logits(batch);
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
    } finally {
      trained.dispose();
      merged.dispose();
    }
  });
});
