import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCodeOf } from '../../../../../shared/errors.js';
import { readSafetensors, writeSafetensors } from '../../../../../shared/formats/safetensors.js';
import { BertTaskModel } from '../../../../../shared/model/bert/bert-task-model.js';
import { loadHfBert, type LoadedBert } from '../../../../../shared/model/bert/load-hf-bert.js';
import type { TaskModel } from '../../../../../shared/model/task-model.js';
import type { Batch, LoraTarget, ModelSpec } from '../../../../../shared/model/types.js';
import { selectBackend } from '../../../../../worker/backend.js';
import { maxAbsDiff } from '../../../../helpers/max-abs-diff.js';

const FIXTURE = join(import.meta.dirname, '../../../../fixtures/hf-bert');

interface Reference {
  texts: string[];
  encoded: number[][];
  batch_size: number;
  seq_len: number;
  input_ids: number[];
  attention_mask: number[];
  logits: number[];
  lora: { r: number; lora_alpha: number; target_modules: LoraTarget[]; tensors: Record<string, number[]>; logits: number[] };
}

function spec(targets: LoraTarget[] = ['q', 'v'], overrides: Partial<ModelSpec> = {}): ModelSpec {
  return {
    task: 'classification',
    numLabels: 2,
    pooling: 'mean',
    peft: { method: 'lora', r: 4, loraAlpha: 8, loraDropout: 0, targetModules: targets, useRslora: false },
    ...overrides,
  };
}

async function caught(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('BERT from a Hugging Face directory', () => {
  let ref: Reference;
  let loaded: LoadedBert;
  let batch: Batch;
  let scratch: string;

  beforeAll(async () => {
    await selectBackend('wasm');
    ref = JSON.parse(await readFile(join(FIXTURE, 'reference.json'), 'utf8')) as Reference;
    loaded = await loadHfBert(FIXTURE);
    batch = {
      batchSize: ref.batch_size,
      seqLen: ref.seq_len,
      inputIds: Int32Array.from(ref.input_ids),
      attentionMask: Int32Array.from(ref.attention_mask),
      labels: Int32Array.from([1, 1, 0, 0]),
    };
    scratch = await mkdtemp(join(tmpdir(), 'swarmtune-bert-'));
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  /** A copy of the fixture directory whose model.safetensors holds `tensors`. */
  async function variant(name: string, tensors: { name: string; shape: number[]; data: Float32Array }[]): Promise<string> {
    const dir = join(scratch, name);
    await rm(dir, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) await copyFile(join(FIXTURE, f), join(dir, f));
    await writeSafetensors(join(dir, 'model.safetensors'), tensors);
    return dir;
  }

  it('reads config.json: sizes, labels from id2label, the checkpoint classifier', () => {
    expect(loaded.config).toMatchObject({ hiddenSize: 32, nLayers: 2, nHeads: 4, intermediateSize: 48, numLabels: 2, maxPositions: 64 });
    expect(loaded.head?.weight.length).toBe(64);
    expect(loaded.head?.bias.length).toBe(2);
  });

  it('tokenizes with the WordPiece tokenizer.json as the reference does ([CLS] ... [SEP], ## pieces)', () => {
    const { tokenizer } = loaded;
    expect(tokenizer.bosId).toBe(2);
    expect(tokenizer.eosId).toBe(3);
    expect(tokenizer.padId).toBe(0);
    ref.texts.forEach((text, i) => expect(tokenizer.encode(text, { addBos: true, addEos: true })).toEqual(ref.encoded[i]));
  });

  it('logits match the PyTorch reference within 1e-4 (base, then with a LoRA adapter on query and value)', () => {
    const model = BertTaskModel.create(loaded, spec());
    try {
      expect(maxAbsDiff(model.logits(batch), ref.logits)).toBeLessThan(1e-4);
      const values = model.getTrainable();
      for (const [name, data] of Object.entries(ref.lora.tensors)) {
        const key = `${name}`;
        expect(values.has(key)).toBe(true);
        values.set(key, Float32Array.from(data));
      }
      model.setTrainable(values);
      expect(maxAbsDiff(model.logits(batch), ref.lora.logits)).toBeLessThan(1e-4);
      // The naive formulation is an independent check of the fast products.
      const naive = BertTaskModel.create(loaded, spec(), { formulation: 'naive' });
      naive.setTrainable(values);
      expect(maxAbsDiff(naive.logits(batch), ref.lora.logits)).toBeLessThan(1e-4);
      naive.dispose();
    } finally {
      model.dispose();
    }
  });

  it('loads keys without the bert. prefix (BertModel layout, no classifier: a fresh head)', async () => {
    const file = await readSafetensors(join(FIXTURE, 'model.safetensors'));
    const dir = await variant(
      'no-prefix',
      file.tensors.filter((t) => !t.name.startsWith('classifier.')).map((t) => ({ name: t.name.replace(/^bert\./, ''), shape: t.shape, data: t.data })),
    );
    const bare = await loadHfBert(dir);
    expect(bare.head).toBeUndefined();
    const model = BertTaskModel.create(bare, spec());
    try {
      // Put the reference head back as trainable values: logits equal the reference.
      const values = model.getTrainable();
      values.set('classifier.weight', loaded.head?.weight as Float32Array);
      values.set('classifier.bias', loaded.head?.bias as Float32Array);
      model.setTrainable(values);
      expect(maxAbsDiff(model.logits(batch), ref.logits)).toBeLessThan(1e-4);
    } finally {
      model.dispose();
    }
  });

  it('reads sharded weights (model.safetensors.index.json) and BF16 tensors', async () => {
    const file = await readSafetensors(join(FIXTURE, 'model.safetensors'));
    const dir = await variant('sharded', []);
    await rm(join(dir, 'model.safetensors'));
    const half = Math.floor(file.tensors.length / 2);
    const shards = [file.tensors.slice(0, half), file.tensors.slice(half)];
    const weightMap: Record<string, string> = {};
    for (const [i, shard] of shards.entries()) {
      const name = `model-0000${i + 1}-of-00002.safetensors`;
      await writeSafetensors(join(dir, name), shard);
      for (const t of shard) weightMap[t.name] = name;
    }
    await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const sharded = await loadHfBert(dir);
    expect(sharded.sha256).not.toBe(loaded.sha256);
    const model = BertTaskModel.create(sharded, spec());
    try {
      expect(maxAbsDiff(model.logits(batch), ref.logits)).toBeLessThan(1e-4);
    } finally {
      model.dispose();
    }

    // BF16: the file holds the top 16 bits of each float32; the same truncated values written as F32 must give
    // the same logits.
    const truncated = file.tensors.map((t) => {
      const bits = new Uint32Array(Float32Array.from(t.data).buffer);
      for (let i = 0; i < bits.length; i++) bits[i] &= 0xffff0000;
      return { name: t.name, shape: t.shape, data: new Float32Array(bits.buffer) };
    });
    const f32Dir = await variant('bf16-as-f32', truncated);
    const bf16Dir = await variant('bf16', []);
    const header: Record<string, unknown> = {};
    let offset = 0;
    for (const t of truncated) {
      header[t.name] = { dtype: 'BF16', shape: t.shape, data_offsets: [offset, offset + 2 * t.data.length] };
      offset += 2 * t.data.length;
    }
    const json = Buffer.from(JSON.stringify(header));
    const bytes = Buffer.alloc(8 + json.length + offset);
    bytes.writeBigUInt64LE(BigInt(json.length), 0);
    json.copy(bytes, 8);
    let p = 8 + json.length;
    for (const t of truncated) {
      const bits = new Uint32Array(t.data.buffer);
      for (let i = 0; i < bits.length; i++, p += 2) bytes.writeUInt16LE(bits[i] >>> 16, p);
    }
    await writeFile(join(bf16Dir, 'model.safetensors'), bytes);
    const a = BertTaskModel.create(await loadHfBert(f32Dir), spec());
    const b = BertTaskModel.create(await loadHfBert(bf16Dir), spec());
    try {
      const la = a.logits(batch);
      expect(maxAbsDiff(la, b.logits(batch))).toBe(0);
      expect(maxAbsDiff(la, ref.logits)).toBeGreaterThan(1e-4);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('names the file and tensor of a missing or mis-shaped tensor, and refuses a config that is not BERT', async () => {
    const file = await readSafetensors(join(FIXTURE, 'model.safetensors'));
    const missingDir = await variant('missing', file.tensors.filter((t) => t.name !== 'bert.encoder.layer.1.output.dense.bias'));
    const missing = await caught(loadHfBert(missingDir));
    expect(errorCodeOf(missing)).toBe('E_TENSOR_NAME');
    expect(missing.message).toContain('encoder.layer.1.output.dense.bias');
    expect(missing.message).toContain(missingDir);

    const shapedDir = await variant(
      'shape',
      file.tensors.map((t) => (t.name === 'bert.pooler.dense.weight' ? { ...t, shape: [16, 64] } : t)),
    );
    const shaped = await caught(loadHfBert(shapedDir));
    expect(errorCodeOf(shaped)).toBe('E_TENSOR_SHAPE');
    expect(shaped.message).toContain('bert.pooler.dense.weight');

    const truncatedDir = join(scratch, 'truncated');
    await variant('truncated', file.tensors);
    const bytes = await readFile(join(FIXTURE, 'model.safetensors'));
    await writeFile(join(truncatedDir, 'model.safetensors'), bytes.subarray(0, bytes.length - 100));
    const truncated = await caught(loadHfBert(truncatedDir));
    expect(errorCodeOf(truncated)).toBe('E_MODEL_FILE');
    expect(truncated.message).toContain('truncated');

    const config = JSON.parse(await readFile(join(FIXTURE, 'config.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(join(truncatedDir, 'config.json'), JSON.stringify({ ...config, model_type: 'llama' }));
    const notBert = await caught(loadHfBert(truncatedDir));
    expect(errorCodeOf(notBert)).toBe('E_MODEL_FILE');
    expect(notBert.message).toContain('model_type');
    expect(notBert.message).toContain('config.json');
  });

  it('refuses specs BERT cannot build: a gate target, an unknown task, a head of another size', () => {
    expect(() => BertTaskModel.create(loaded, spec(['q', 'gate']))).toThrow(/gate/);
    expect(() => BertTaskModel.create(loaded, spec(['q'], { task: 'translation' as never }))).toThrow(/classification, or causal-lm as masked-LM/);
    expect(() => BertTaskModel.create(loaded, spec(['q'], { numLabels: 3 }))).toThrow(/3/);
  });

  it('one training step lowers the loss; gradients are finite; numTensors stays flat', () => {
    const model = BertTaskModel.create(loaded, spec(['q', 'k', 'v', 'o', 'up', 'down']));
    // The same public surface workers use on TaskModel (a compile-time check).
    const surface: Pick<TaskModel, 'manifest' | 'spec' | 'initTrainable' | 'setTrainable' | 'getTrainable' | 'computeGradients' | 'evaluate' | 'dispose'> = model;
    expect(surface.manifest.at(-1)?.name).toBe('classifier.bias');
    try {
      const start = model.initTrainable(3);
      model.setTrainable(start);
      const before = model.evaluate(batch);
      const { stats, grads } = model.computeGradients(batch);
      expect(stats.lossSum).toBeCloseTo(before.lossSum, 4);
      let norm = 0;
      for (const g of grads.values()) for (const v of g) {
        expect(Number.isFinite(v)).toBe(true);
        norm += v * v;
      }
      expect(norm).toBeGreaterThan(0);
      // LoRA B starts at zero, so A gets no gradient at step 0 but B does.
      expect(grads.get('bert.encoder.layer.0.attention.self.query.lora_B.weight')?.some((v) => v !== 0)).toBe(true);
      const lr = 0.05 / Math.sqrt(norm);
      const next = new Map([...start].map(([name, v]) => [name, v.map((x, i) => x - lr * (grads.get(name) as Float32Array)[i])]));
      model.setTrainable(next);
      const after = model.evaluate(batch);
      expect(after.lossSum).toBeLessThan(before.lossSum);

      const tensors = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) {
        model.computeGradients(batch);
        model.evaluate(batch);
        model.logits(batch);
      }
      expect(tf.memory().numTensors).toBe(tensors);
    } finally {
      model.dispose();
    }
  });

  it('fast and naive formulations give the same gradients, with LoRA dropout seeded', () => {
    const lora = spec(['q', 'v', 'down'], {});
    const dropSpec: ModelSpec = { ...lora, peft: { ...(lora.peft as object), loraDropout: 0.1 } as ModelSpec['peft'] };
    const fast = BertTaskModel.create(loaded, dropSpec);
    const naive = BertTaskModel.create(loaded, dropSpec, { formulation: 'naive' });
    try {
      const values = new Map([...fast.initTrainable(5)].map(([n, v]) => [n, n.endsWith('lora_B.weight') ? v.map((_, i) => 0.05 * Math.sin(i + 1)) : v]));
      fast.setTrainable(values);
      naive.setTrainable(values);
      const a = fast.computeGradients(batch, { dropoutSeed: 7 }).grads;
      const b = naive.computeGradients(batch, { dropoutSeed: 7 }).grads;
      for (const [name, g] of a) expect(maxAbsDiff(g, b.get(name) as Float32Array), name).toBeLessThan(1e-4);
    } finally {
      fast.dispose();
      naive.dispose();
    }
  });
});
