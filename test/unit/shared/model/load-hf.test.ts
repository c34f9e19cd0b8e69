/**
 * Hugging Face LLaMA directories against an independent implementation: the fixtures under
 * test/fixtures/hf-llama/ were written by scripts/make-parity-fixtures-llama.py (plain PyTorch following
 * transformers' modeling_llama: rotate_half RoPE, GQA, SwiGLU, RMSNorm), with a PEFT-layout LoRA adapter.
 * Also the round trips: PEFT export → import, merged export, and a GGUF re-saved in HF layout.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeHfModel, writeMergedHfModel } from '../../../../shared/formats/hf-model-writer.js';
import { loadPeftAdapter, writePeftAdapter } from '../../../../shared/formats/peft-adapter.js';
import { readSafetensors } from '../../../../shared/formats/safetensors.js';
import { loadModel } from '../../../../shared/model/load-model.js';
import type { LoadedModel } from '../../../../shared/model/load-gguf.js';
import { TaskModel } from '../../../../shared/model/task-model.js';
import type { LoraSpec, ModelSpec } from '../../../../shared/model/types.js';
import { loraManifest } from '../../../../shared/adapters/lora.js';
import { selectBackend } from '../../../../worker/backend.js';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/hf-llama/', import.meta.url));
const MODEL_DIR = join(FIXTURES, 'model');
const ADAPTER_DIR = join(FIXTURES, 'adapter');
const STORIES = fileURLToPath(new URL('../../../../../shared/models/stories260K.gguf', import.meta.url));

const BASE_SPEC: ModelSpec = {
  task: 'causal-lm',
  numLabels: 2,
  pooling: 'mean',
  peft: { method: 'lora', r: 1, loraAlpha: 1, loraDropout: 0, targetModules: ['q'], useRslora: false },
};

interface Reference {
  ids: number[][];
  vocab: number;
  logits: Float32Array;
  logitsLora: Float32Array;
}

async function readReference(): Promise<Reference> {
  const file = await readSafetensors(join(FIXTURES, 'reference.safetensors'));
  const get = (name: string) => file.tensors.find((t) => t.name === name)!;
  const ids = get('input_ids');
  const [batch, seq] = ids.shape;
  return {
    ids: Array.from({ length: batch }, (_, b) => Array.from(ids.data.subarray(b * seq, (b + 1) * seq), Math.round)),
    vocab: get('logits').shape[2],
    logits: get('logits').data,
    logitsLora: get('logits_lora').data,
  };
}

/** Largest |ours − reference| over every position of every sequence (ours: next-token logits of each prefix). */
function maxAbsDiff(model: TaskModel, ref: Reference, expected: Float32Array): number {
  let worst = 0;
  const seq = ref.ids[0].length;
  ref.ids.forEach((ids, b) => {
    for (let t = 1; t <= seq; t++) {
      const ours = model.nextTokenLogits(ids.slice(0, t));
      const offset = (b * seq + t - 1) * ref.vocab;
      for (let v = 0; v < ref.vocab; v++) worst = Math.max(worst, Math.abs(ours[v] - expected[offset + v]));
    }
  });
  return worst;
}

function lastLogits(loaded: LoadedModel, spec: ModelSpec, ids: number[], lora?: Map<string, Float32Array>): Float32Array {
  const model = TaskModel.create(loaded.config, loaded.weights, spec);
  try {
    if (lora) model.setTrainable(lora);
    return model.nextTokenLogits(ids);
  } finally {
    model.dispose();
  }
}

describe('Hugging Face LLaMA directory (parity with a PyTorch reference)', () => {
  let ref: Reference;
  let loaded: LoadedModel;
  let tmp: string;

  beforeAll(async () => {
    await selectBackend('wasm');
    ref = await readReference();
    loaded = await loadModel(MODEL_DIR);
    tmp = await mkdtemp(join(tmpdir(), 'swarmtune-hf-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
    expect(tf.memory().numTensors).toBe(0);
  });

  it('reads config.json, the F16 + BF16 shards and the tokenizer into a LoadedModel', () => {
    expect(loaded.config).toEqual({ vocabSize: 301, dim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, hiddenDim: 96, normEps: 1e-5, ropeTheta: 10000, contextLength: 128 });
    expect(loaded.weights.get('output.weight')).not.toBe(loaded.weights.get('token_embd.weight'));
    expect(loaded.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(loaded.tokenizer.bosId).toBe(1);
    expect(loaded.tokenizer.eosId).toBe(2);
    const ids = loaded.tokenizer.encode('the cat sat on the mat');
    expect(ids[0]).toBe(1);
    expect(loaded.tokenizer.decode(ids)).toBe('the cat sat on the mat');
  });

  it('gives the logits of the PyTorch reference within 1e-4 at every position', () => {
    const model = TaskModel.create(loaded.config, loaded.weights, BASE_SPEC);
    try {
      expect(maxAbsDiff(model, ref, ref.logits)).toBeLessThan(1e-4);
    } finally {
      model.dispose();
    }
  });

  it('imports a PEFT adapter written in PyTorch layout and matches the reference with the adapter within 1e-4', async () => {
    const adapter = await loadPeftAdapter(ADAPTER_DIR, loaded.config);
    expect(adapter.qkRowLayout).toBe('gguf');
    const model = TaskModel.create(loaded.config, loaded.weights, adapter.spec);
    try {
      model.setTrainable(adapter.tensors);
      expect(maxAbsDiff(model, ref, ref.logitsLora)).toBeLessThan(1e-4);
      // The adapter matters: without the permutation, or without the adapter, the logits are far off.
      expect(maxAbsDiff(model, ref, ref.logits)).toBeGreaterThan(0.1);
    } finally {
      model.dispose();
    }
    const unpermuted = await loadPeftAdapter(ADAPTER_DIR);
    expect(unpermuted.qkRowLayout).toBe('hf');
    const wrong = TaskModel.create(loaded.config, loaded.weights, unpermuted.spec);
    try {
      wrong.setTrainable(unpermuted.tensors);
      expect(maxAbsDiff(wrong, ref, ref.logitsLora)).toBeGreaterThan(1e-2);
    } finally {
      wrong.dispose();
    }
  });

  it('export then import of a PEFT adapter gives the same tensors, the same outputs and the PEFT file layout', async () => {
    const adapter = await loadPeftAdapter(ADAPTER_DIR, loaded.config);
    const dir = join(tmp, 'exported');
    const manifest = loraManifest(loaded.config, adapter.spec.peft as LoraSpec);
    await writePeftAdapter(dir, adapter.tensors, manifest, { spec: adapter.spec, baseModel: MODEL_DIR, modelConfig: loaded.config });
    const back = await loadPeftAdapter(dir, loaded.config);
    for (const { name } of manifest) expect(back.tensors.get(name)).toEqual(adapter.tensors.get(name));
    // On disk the q/k lora_B rows are back in the HF layout: the same bytes PyTorch wrote.
    const original = await readSafetensors(join(ADAPTER_DIR, 'adapter_model.safetensors'));
    const exported = await readSafetensors(join(dir, 'adapter_model.safetensors'));
    expect(exported.metadata).toEqual({ format: 'pt' });
    expect(exported.tensors.map((t) => [t.name, t.shape, Array.from(t.data)])).toEqual(original.tensors.map((t) => [t.name, t.shape, Array.from(t.data)]));
    const ids = ref.ids[0];
    expect(lastLogits(loaded, back.spec, ids, back.tensors)).toEqual(lastLogits(loaded, adapter.spec, ids, adapter.tensors));
  });

  it('a merged export (W + s·B·A, HF layout) reloads with the outputs of base + adapter within 1e-5', async () => {
    const adapter = await loadPeftAdapter(ADAPTER_DIR, loaded.config);
    const dir = join(tmp, 'merged');
    await writeMergedHfModel(dir, loaded, adapter.spec.peft as LoraSpec, adapter.tensors);
    const merged = await loadModel(dir);
    for (const ids of ref.ids) {
      const withAdapter = lastLogits(loaded, adapter.spec, ids, adapter.tensors);
      const fromMerged = lastLogits(merged, BASE_SPEC, ids);
      let worst = 0;
      for (let v = 0; v < withAdapter.length; v++) worst = Math.max(worst, Math.abs(withAdapter[v] - fromMerged[v]));
      expect(worst).toBeLessThan(1e-5);
    }
  });
});

describe.skipIf(!existsSync(STORIES))('stories260K.gguf re-saved as a Hugging Face directory', () => {
  let tmp: string;
  beforeAll(async () => {
    await selectBackend('wasm');
    tmp = await mkdtemp(join(tmpdir(), 'swarmtune-hf-stories-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('reloads with identical weights, tokenizer and logits', async () => {
    const gguf = await loadModel(STORIES);
    const dir = join(tmp, 'stories260K');
    await writeHfModel(dir, gguf);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
      expect(existsSync(join(dir, f)), f).toBe(true);
    }
    const hf = await loadModel(dir);
    expect(hf.config).toEqual(gguf.config);
    for (const [name, w] of gguf.weights) expect(hf.weights.get(name), name).toEqual(w);
    const text = 'Once upon a time, there was a little dog.';
    const ids = gguf.tokenizer.encode(text);
    expect(hf.tokenizer.encode(text)).toEqual(ids);
    expect([hf.tokenizer.bosId, hf.tokenizer.eosId, hf.tokenizer.padId]).toEqual([gguf.tokenizer.bosId, gguf.tokenizer.eosId, gguf.tokenizer.padId]);
    expect(lastLogits(hf, BASE_SPEC, ids)).toEqual(lastLogits(gguf, BASE_SPEC, ids));
  });
});
