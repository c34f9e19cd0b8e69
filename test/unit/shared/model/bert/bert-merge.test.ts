import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '../../../../../shared/formats/safetensors.js';
import { mergeBertLora, writeHfBert } from '../../../../../shared/model/bert/bert-merge.js';
import { BertTaskModel } from '../../../../../shared/model/bert/bert-task-model.js';
import { isHfBertDir, loadHfBert, type LoadedBert } from '../../../../../shared/model/bert/load-hf-bert.js';
import type { Batch, ModelSpec } from '../../../../../shared/model/types.js';
import { selectBackend } from '../../../../../worker/backend.js';
import { maxAbsDiff } from '../../../../helpers/max-abs-diff.js';

const FIXTURE = join(import.meta.dirname, '../../../../fixtures/hf-bert');

const SPEC: ModelSpec = {
  task: 'classification',
  numLabels: 2,
  pooling: 'mean',
  peft: { method: 'lora', r: 4, loraAlpha: 8, loraDropout: 0, targetModules: ['q', 'v', 'up'], useRslora: false },
};

describe('BERT merge and Hugging Face writer', () => {
  let loaded: LoadedBert;
  let batch: Batch;
  let scratch: string;

  beforeAll(async () => {
    await selectBackend('wasm');
    loaded = await loadHfBert(FIXTURE);
    const ref = JSON.parse(await readFile(join(FIXTURE, 'reference.json'), 'utf8')) as { batch_size: number; seq_len: number; input_ids: number[]; attention_mask: number[] };
    batch = {
      batchSize: ref.batch_size,
      seqLen: ref.seq_len,
      inputIds: Int32Array.from(ref.input_ids),
      attentionMask: Int32Array.from(ref.attention_mask),
      labels: new Int32Array(ref.batch_size),
    };
    scratch = await mkdtemp(join(tmpdir(), 'swarmtune-bert-merge-'));
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('a merged model equals base + adapter within 1e-5, and survives a write and reload in HF layout', async () => {
    const adapted = BertTaskModel.create(loaded, SPEC);
    // Non-zero B and a changed head, so that both the merge and the head travel.
    const values = new Map(
      [...adapted.initTrainable(11)].map(([name, v]) => [name, name.endsWith('lora_B.weight') ? v.map((_, i) => 0.3 * Math.cos(i)) : name.startsWith('classifier') ? v.map((x) => x + 0.1) : v]),
    );
    adapted.setTrainable(values);
    const expected = adapted.logits(batch);
    adapted.dispose();

    const head = { weight: values.get('classifier.weight') as Float32Array, bias: values.get('classifier.bias') as Float32Array };
    const merged = { config: loaded.config, weights: mergeBertLora(loaded.config, loaded.weights, SPEC, values), head };
    const plain = BertTaskModel.create(merged, SPEC);
    const mergedLogits = plain.logits(batch);
    plain.dispose();
    expect(maxAbsDiff(mergedLogits, expected)).toBeLessThan(1e-5);
    expect(maxAbsDiff(mergedLogits, (await loadedLogits(loaded)))).toBeGreaterThan(1e-3);

    const dir = join(scratch, 'merged');
    await writeHfBert(dir, { ...merged, tokenizer: loaded.tokenizer });
    expect(isHfBertDir(dir)).toBe(true);
    const file = await readSafetensors(join(dir, 'model.safetensors'));
    expect(file.metadata).toEqual({ format: 'pt' });
    expect(file.tensors.some((t) => t.name === 'bert.encoder.layer.1.intermediate.dense.weight')).toBe(true);
    const reloaded = await loadHfBert(dir);
    const again = BertTaskModel.create(reloaded, SPEC);
    try {
      expect(maxAbsDiff(again.logits(batch), mergedLogits)).toBe(0);
    } finally {
      again.dispose();
    }
  });

  it('isHfBertDir tells a BERT directory from others', async () => {
    expect(isHfBertDir(FIXTURE)).toBe(true);
    const other = join(scratch, 'llama');
    await import('node:fs/promises').then((fs) => fs.mkdir(other, { recursive: true }));
    await writeFile(join(other, 'config.json'), JSON.stringify({ model_type: 'llama' }));
    expect(isHfBertDir(other)).toBe(false);
    expect(isHfBertDir(join(scratch, 'absent'))).toBe(false);
  });

  async function loadedLogits(model: LoadedBert): Promise<Float32Array> {
    const m = BertTaskModel.create(model, SPEC);
    try {
      return m.logits(batch);
    } finally {
      m.dispose();
    }
  }
});
