/**
 * PEFT adapter files of a LoRA that targets `embed_tokens`: PEFT's keys and shapes, an exact round trip, and the
 * merged export.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LORA_EMBEDDING_A } from '../../../../shared/adapters/lora-embedding.js';
import { loraManifest } from '../../../../shared/adapters/lora.js';
import { exportHf } from '../../../../shared/formats/hf-export.js';
import { loadPeftAdapter, writePeftAdapter } from '../../../../shared/formats/peft-adapter.js';
import { loadModel } from '../../../../shared/model/load-model.js';
import { readSafetensors } from '../../../../shared/formats/safetensors.js';
import { randomBaseWeights } from '../../../../shared/model/random-weights.js';
import { TaskModel } from '../../../../shared/model/task-model.js';
import { mulberry32 } from '../../../../shared/random.js';
import { selectBackend } from '../../../../worker/backend.js';
import { loraSpec, modelSpec, tinyConfig, withNonZeroB } from '../model/tiny-models.js';

const config = tinyConfig();
let tmp: string;
beforeAll(async () => {
  await selectBackend('wasm');
  tmp = await mkdtemp(join(tmpdir(), 'swarmtune-peft-embed-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
  expect(tf.memory().numTensors).toBe(0);
});

describe('PEFT adapter with LoRA on embed_tokens', () => {
  it('writes lora_embedding_A [r, vocab] / lora_embedding_B [dim, r] without .weight, and reads back identical logits', async () => {
    const spec = modelSpec('causal-lm', { peft: loraSpec({ targetModules: ['q', 'k', 'v', 'embed'] }) });
    const model = TaskModel.create(config, randomBaseWeights(config, 7, { std: 0.3 }), spec);
    const rng = mulberry32(3);
    const values = withNonZeroB(model.initTrainable(5), 6, 0.3);
    values.set(LORA_EMBEDDING_A, Float32Array.from(values.get(LORA_EMBEDDING_A)!, () => rng() - 0.5));
    model.setTrainable(values);
    const ids = [1, 4, 9, 16, 25, 36];
    const logits = model.nextTokenLogits(ids);

    const dir = join(tmp, 'adapter');
    await writePeftAdapter(dir, values, model.manifest, { spec, baseModel: 'tiny', modelConfig: config });
    const file = await readSafetensors(join(dir, 'adapter_model.safetensors'));
    const shapes = new Map(file.tensors.map((t) => [t.name, t.shape]));
    expect(shapes.get('base_model.model.model.embed_tokens.lora_embedding_A')).toEqual([4, config.vocabSize]);
    expect(shapes.get('base_model.model.model.embed_tokens.lora_embedding_B')).toEqual([config.dim, 4]);
    const adapterConfig = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8'));
    expect(adapterConfig.target_modules).toEqual(['q_proj', 'k_proj', 'v_proj', 'embed_tokens']);

    const loaded = await loadPeftAdapter(dir, config);
    expect(loaded.spec.peft).toEqual(spec.peft);
    const reloaded = TaskModel.create(config, randomBaseWeights(config, 7, { std: 0.3 }), loaded.spec);
    reloaded.setTrainable(loaded.tensors);
    expect(Array.from(reloaded.nextTokenLogits(ids))).toEqual(Array.from(logits));
    model.dispose();
    reloaded.dispose();
  });

  it('merged export folds the delta into embed_tokens and leaves a separate lm_head untouched', async () => {
    const modelDir = fileURLToPath(new URL('../../../fixtures/hf-llama/model/', import.meta.url));
    const base = await loadModel(modelDir);
    const spec = modelSpec('causal-lm', { peft: loraSpec({ r: 2, loraAlpha: 4, targetModules: ['v', 'embed'] }) });
    if (spec.peft.method !== 'lora') throw new Error('unreachable');
    const manifest = loraManifest(base.config, spec.peft);
    const rng = mulberry32(12);
    const values = new Map(manifest.map((t) => [t.name, Float32Array.from({ length: t.shape[0] * t.shape[1] }, () => rng() - 0.5)]));
    const adapterDir = join(tmp, 'embed-adapter');
    await writePeftAdapter(adapterDir, values, manifest, { spec, baseModel: modelDir, modelConfig: base.config });
    const result = await exportHf({ model: modelDir, adapterDir, outputDir: join(tmp, 'embed-export') });
    const merged = await loadModel(result.mergedDir!);
    expect(Array.from(merged.weights.get('output.weight')!)).toEqual(Array.from(base.weights.get('output.weight')!));
    const { vocabSize, dim } = base.config;
    const a = values.get(LORA_EMBEDDING_A)!;
    const b = values.get('model.embed_tokens.lora_embedding_B')!;
    const w = base.weights.get('token_embd.weight')!;
    const m = merged.weights.get('token_embd.weight')!;
    for (const [t, j] of [[0, 0], [vocabSize - 1, dim - 1], [7, 3]]) {
      const delta = 2 * (b[j * 2] * a[t] + b[j * 2 + 1] * a[vocabSize + t]);
      expect(m[t * dim + j]).toBeCloseTo(w[t * dim + j] + delta, 5);
    }
  });
});
