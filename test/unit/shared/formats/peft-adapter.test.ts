/**
 * PEFT adapter directories: the q/k row layout recorded and honoured, shape checks, and the export step.
 */
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loraManifest } from '../../../../shared/adapters/lora.js';
import { ErrorCode } from '../../../../shared/errors.js';
import { exportHf } from '../../../../shared/formats/hf-export.js';
import { loadPeftAdapter, writePeftAdapter } from '../../../../shared/formats/peft-adapter.js';
import { readSafetensors } from '../../../../shared/formats/safetensors.js';
import { loadModel } from '../../../../shared/model/load-model.js';
import type { LlamaConfig, LoraSpec, ModelSpec } from '../../../../shared/model/types.js';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/hf-llama/', import.meta.url));
const MODEL_DIR = join(FIXTURES, 'model');
const ADAPTER_DIR = join(FIXTURES, 'adapter');

let tmp: string;
let config: LlamaConfig;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'swarmtune-peft-'));
  config = (await loadModel(MODEL_DIR)).config;
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const SPEC: ModelSpec = {
  task: 'causal-lm',
  numLabels: 2,
  pooling: 'mean',
  peft: { method: 'lora', r: 2, loraAlpha: 4, loraDropout: 0, targetModules: ['q', 'k', 'v'], useRslora: false },
};

function seededLora(spec: LoraSpec): Map<string, Float32Array> {
  let x = 1;
  return new Map(loraManifest(config, spec).map(({ name, shape }) => [name, Float32Array.from({ length: shape[0] * shape[1] }, () => ((x = (x * 48271) % 2147483647) / 2147483647) - 0.5)]));
}

describe('PEFT adapter q/k row layout', () => {
  it('with the model config: written in HF layout (q/k lora_B rows moved, the rest untouched), read back identical', async () => {
    const lora = seededLora(SPEC.peft as LoraSpec);
    const dir = join(tmp, 'hf-layout');
    await writePeftAdapter(dir, lora, loraManifest(config, SPEC.peft as LoraSpec), { spec: SPEC, baseModel: 'm', modelConfig: config });
    const json = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8'));
    expect(json.swarmtune.qk_row_layout).toBe('hf');
    expect(json.target_modules).toEqual(['q_proj', 'k_proj', 'v_proj']);
    const raw = await loadPeftAdapter(dir);
    expect(raw.qkRowLayout).toBe('hf');
    const q = 'model.layers.0.self_attn.q_proj.lora_B.weight';
    expect(raw.tensors.get(q)).not.toEqual(lora.get(q));
    for (const name of ['model.layers.0.self_attn.q_proj.lora_A.weight', 'model.layers.1.self_attn.v_proj.lora_B.weight']) {
      expect(raw.tensors.get(name)).toEqual(lora.get(name));
    }
    const back = await loadPeftAdapter(dir, config);
    for (const [name, v] of lora) expect(back.tensors.get(name), name).toEqual(v);
  });

  it('without the model config, and legacy files (a swarmtune section without qk_row_layout), stay in GGUF layout', async () => {
    const lora = seededLora(SPEC.peft as LoraSpec);
    const dir = join(tmp, 'gguf-layout');
    await writePeftAdapter(dir, lora, loraManifest(config, SPEC.peft as LoraSpec), { spec: SPEC, baseModel: 'm' });
    const path = join(dir, 'adapter_config.json');
    const json = JSON.parse(await readFile(path, 'utf8'));
    expect(json.swarmtune.qk_row_layout).toBe('gguf');
    delete json.swarmtune.qk_row_layout;
    await writeFile(path, JSON.stringify(json));
    const back = await loadPeftAdapter(dir, config);
    for (const [name, v] of lora) expect(back.tensors.get(name), name).toEqual(v);
  });

  it('a tensor of the wrong shape for the model is refused by file and name', async () => {
    const dir = join(tmp, 'bad-shape');
    await cp(ADAPTER_DIR, dir, { recursive: true });
    const path = join(dir, 'adapter_config.json');
    const json = JSON.parse(await readFile(path, 'utf8'));
    json.r = 8;
    await writeFile(path, JSON.stringify(json));
    await expect(loadPeftAdapter(dir, config)).rejects.toThrow(
      expect.objectContaining({
        code: ErrorCode.MODEL_FILE,
        message: `safetensors ${join(dir, 'adapter_model.safetensors')}: tensor base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight has shape [4,64], expected [8,64]`,
      }),
    );
  });
  it('target_modules that are not LLaMA linear layers are refused by name', async () => {
    const dir = join(tmp, 'bad-targets');
    await cp(ADAPTER_DIR, dir, { recursive: true });
    const path = join(dir, 'adapter_config.json');
    const json = JSON.parse(await readFile(path, 'utf8'));
    json.target_modules = ['q_proj', 'lm_head'];
    await writeFile(path, JSON.stringify(json));
    await expect(loadPeftAdapter(dir, config)).rejects.toThrow(`${path}: target_modules ["lm_head"] are not LLaMA linear layers`);
  });
});

describe('exportHf', () => {
  it('writes the PEFT adapter (the bytes PyTorch wrote) and a merged HF model that loads', async () => {
    const out = join(tmp, 'export');
    const result = await exportHf({ model: MODEL_DIR, adapterDir: ADAPTER_DIR, outputDir: out });
    expect(result).toEqual({ adapterDir: join(out, 'adapter'), mergedDir: join(out, 'merged') });
    const original = await readSafetensors(join(ADAPTER_DIR, 'adapter_model.safetensors'));
    const exported = await readSafetensors(join(result.adapterDir, 'adapter_model.safetensors'));
    expect(exported.tensors.map((t) => [t.name, Array.from(t.data)])).toEqual(original.tensors.map((t) => [t.name, Array.from(t.data)]));
    const merged = await loadModel(result.mergedDir!);
    expect(merged.config).toEqual(config);
    expect(existsSync(join(result.mergedDir!, 'generation_config.json'))).toBe(true);
  });
});
