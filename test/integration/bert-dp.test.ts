/**
 * The BERT family end to end: real data-parallel runs over loopback WebSockets with 2 in-process workers on the
 * Hugging Face BERT fixture (test/fixtures/hf-bert): equal to the one-process reference, spam-assassin
 * classification with decreasing held-out loss and a flat tensor count, then the exported PEFT adapter read back (identical
 * outputs) and the merged model (outputs of base + adapter).
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MetricsRecord } from '../../coordinator/metrics.js';
import { prepareRun } from '../../coordinator/run.js';
import { compileConfig, type RunConfig } from '../../shared/config.js';
import { collateBatch } from '../../shared/data/index.js';
import { exportHf } from '../../shared/formats/hf-export.js';
import { loadPeftAdapter } from '../../shared/formats/peft-adapter.js';
import { readSafetensors } from '../../shared/formats/safetensors.js';
import { BertTaskModel } from '../../shared/model/bert/bert-task-model.js';
import { loadHfBert } from '../../shared/model/bert/load-hf-bert.js';
import { selectBackend, type BackendReport } from '../../worker/backend.js';
import { runWithInProcessWorkers } from '../helpers/in-process-workers.js';
import { dpConfig, makeDpFixture, maxRelativeDifference, referenceRun, type DpFixture } from '../helpers/dp-fixture.js';
import { maxAbsDiff } from '../helpers/max-abs-diff.js';

const BERT_DIR = join(import.meta.dirname, '../fixtures/hf-bert');

let fixture: DpFixture;
let backend: BackendReport;

beforeAll(async () => {
  fixture = await makeDpFixture();
  backend = await selectBackend('auto');
});

async function train(config: RunConfig, numWorkers: number) {
  const records: MetricsRecord[] = [];
  const numTensors: number[] = [];
  const evalLosses: number[] = [];
  const { result } = await runWithInProcessWorkers(config, numWorkers, backend, {
    // Workers run in this process: tf.memory() counts their tensors.
    onMetrics: (record) => {
      if (record.event === 'eval') evalLosses.push(record.eval_loss as number);
      if (record.event !== 'train') return;
      records.push(record);
      numTensors.push(tf.memory().numTensors);
    },
  });
  return { result, records, evalLosses, numTensors };
}

describe('BERT data-parallel runs', () => {
  it('2 workers equal the one-process reference on a BERT checkpoint', async () => {
    const config = dpConfig(fixture, 2, { model: BERT_DIR, peft: { r: 4, lora_alpha: 8, target_modules: ['q', 'v', 'down'] }, max_steps: 4 });
    const prepared = await prepareRun(config);
    expect(prepared.loaded.family).toBe('bert');
    // [CLS] text [SEP]: BERT's framing of classification items.
    for (const item of prepared.train) {
      expect(item.ids[0]).toBe(prepared.loaded.tokenizer.bosId);
      expect(item.ids[item.ids.length - 1]).toBe(prepared.loaded.tokenizer.eosId);
    }
    const reference = await referenceRun(config);
    const { result } = await train(config, 2);
    expect(result.steps).toBe(4);
    result.stepLosses.forEach((loss, i) => expect(Math.abs(loss - reference.losses[i]) / reference.losses[i]).toBeLessThan(1e-4));
    expect(maxRelativeDifference(reference.params, prepared.initial)).toBeGreaterThan(1e-4);
    expect(maxRelativeDifference(result.params, reference.params)).toBeLessThan(1e-4);
  });

  it('spam-assassin: held-out loss decreases, tensors stay flat, the adapter exports to PEFT and merges', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmtune-bert-'));
    const config = compileConfig({
      model: BERT_DIR,
      peft: { r: 8, lora_alpha: 16, target_modules: ['q', 'k', 'v', 'o', 'up', 'down'] },
      max_steps: 12,
      max_train_samples: 96,
      max_eval_samples: 32,
      max_length: 48,
      per_device_train_batch_size: 4,
      workers: 2,
      learning_rate: 2e-3,
      warmup_steps: 0,
      eval_on_start: true,
      save_strategy: 'no',
      logging_steps: 1,
      output_dir: join(dir, 'run'),
    });
    const { result, records, evalLosses, numTensors } = await train(config, 2);
    expect(result.steps).toBe(12);
    expect(records.every((r) => Number.isFinite(r.loss as number))).toBe(true);
    // Held-out loss (8-example batches make the training loss too noisy to compare): 0.670 before, 0.496 after.
    expect(evalLosses[0]).toBeGreaterThan(result.evalLoss + 0.05);
    expect(new Set(numTensors.slice(1)).size).toBe(1);

    // The adapter as PEFT writes a BertForSequenceClassification LoRA adapter.
    const adapterDir = join(result.outputDir, 'adapter');
    const adapterConfig = JSON.parse(readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(adapterConfig).toMatchObject({ peft_type: 'LORA', task_type: 'SEQ_CLS', r: 8, lora_alpha: 16, modules_to_save: ['classifier'] });
    expect(adapterConfig.target_modules).toEqual(['query', 'key', 'value', 'attention.output.dense', 'intermediate.dense', 'output.dense']);
    const keys = (await readSafetensors(join(adapterDir, 'adapter_model.safetensors'))).tensors.map((t) => t.name);
    expect(keys).toContain('base_model.model.bert.encoder.layer.1.attention.self.query.lora_A.weight');
    expect(keys).toContain('base_model.model.bert.encoder.layer.0.output.dense.lora_B.weight');
    expect(keys).toContain('base_model.model.classifier.weight');
    expect(keys).toContain('base_model.model.classifier.bias');

    // Import gives the trained parameters back; the model built on them gives the run's outputs.
    const loaded = await loadHfBert(BERT_DIR);
    const imported = await loadPeftAdapter(adapterDir, loaded.config);
    expect(imported.spec.peft).toMatchObject({ method: 'lora', r: 8, targetModules: ['q', 'k', 'v', 'o', 'up', 'down'] });
    for (const [name, values] of result.params) expect(imported.tensors.get(name), name).toEqual(values);
    const prepared = await prepareRun(config);
    const batch = collateBatch(prepared.eval.slice(0, 6), { task: 'classification', padId: loaded.tokenizer.padId });
    const trained = BertTaskModel.create(loaded, imported.spec);
    trained.setTrainable(imported.tensors);
    const exported = await exportHf({ model: BERT_DIR, adapterDir, outputDir: join(dir, 'export') });
    const merged = BertTaskModel.create(await loadHfBert(exported.mergedDir as string), imported.spec);
    try {
      // The merged directory's own weights and head, with LoRA B = 0 (fresh values), are base + adapter.
      const zeroLora = merged.initTrainable(0);
      merged.setTrainable(zeroLora);
      const a = trained.logits(batch);
      const b = merged.logits(batch);
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
    } finally {
      trained.dispose();
      merged.dispose();
    }
  });
});
