/**
 * Bad Hugging Face model directories: every refusal names the file (and the tensor or field).
 */
import { cp, mkdtemp, readFile, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../../shared/errors.js';
import { readSafetensors, writeSafetensors } from '../../../../shared/formats/safetensors.js';
import { loadModel } from '../../../../shared/model/load-model.js';

const MODEL_DIR = fileURLToPath(new URL('../../../fixtures/hf-llama/model/', import.meta.url));
const SHARD1 = 'model-00001-of-00002.safetensors';
const SHARD2 = 'model-00002-of-00002.safetensors';

let tmp: string;
let count = 0;

/** A fresh copy of the fixture model directory. */
async function copyModel(): Promise<string> {
  const dir = join(tmp, `m${count++}`);
  await cp(MODEL_DIR, dir, { recursive: true });
  return dir;
}

async function editJson(path: string, edit: (v: Record<string, unknown>) => void): Promise<void> {
  const value = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  edit(value);
  await writeFile(path, JSON.stringify(value));
}

/** Replaces the shards by one model.safetensors holding the same tensors, edited by `edit`. */
async function toSingleFile(dir: string, edit: (t: { name: string; shape: number[]; data: Float32Array }[]) => void): Promise<void> {
  const tensors = [...(await readSafetensors(join(dir, SHARD1))).tensors, ...(await readSafetensors(join(dir, SHARD2))).tensors].map(({ name, shape, data }) => ({ name, shape, data }));
  edit(tensors);
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  for (const f of [SHARD1, SHARD2, 'model.safetensors.index.json']) await unlink(join(dir, f));
}

async function refusal(dir: string): Promise<Error & { code?: string }> {
  try {
    await loadModel(dir);
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error(`loadModel(${dir}) did not throw`);
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'swarmtune-hf-bad-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('loading a bad Hugging Face directory', () => {
  it('a directory without config.json', async () => {
    const dir = await copyModel();
    await unlink(join(dir, 'config.json'));
    const err = await refusal(dir);
    expect(err.code).toBe(ErrorCode.MODEL_FILE);
    expect(err.message).toContain(`${dir}: config.json not found`);
  });

  it('an unsupported architecture, rope_scaling, another activation', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ architectures: ['GPT2LMHeadModel'] }, /architectures \["GPT2LMHeadModel"\] is not supported/],
      [{ rope_scaling: { type: 'linear', factor: 2 } }, /rope_scaling .* is not supported/],
      [{ hidden_act: 'gelu' }, /hidden_act "gelu" is not supported/],
      [{ num_key_value_heads: 3 }, /num_attention_heads 4 is not a multiple of num_key_value_heads 3/],
    ];
    for (const [patch, message] of cases) {
      const dir = await copyModel();
      await editJson(join(dir, 'config.json'), (c) => Object.assign(c, patch));
      const err = await refusal(dir);
      expect(err.code).toBe(ErrorCode.MODEL_FILE);
      expect(err.message).toMatch(message);
      expect(err.message).toContain(join(dir, 'config.json'));
    }
  });

  it('a truncated shard', async () => {
    const dir = await copyModel();
    const path = join(dir, SHARD2);
    const { size } = await stat(path);
    await truncate(path, size - 100);
    const err = await refusal(dir);
    expect(err.code).toBe(ErrorCode.MODEL_FILE);
    expect(err.message).toMatch(new RegExp(`safetensors ${path}: truncated file: tensor \\S+ data ends at`));
  });

  it('a missing shard, and a tensor the index puts in the wrong shard', async () => {
    const dir = await copyModel();
    await unlink(join(dir, SHARD2));
    expect((await refusal(dir)).message).toBe(`safetensors ${join(dir, SHARD2)}: file not found`);
    const dir2 = await copyModel();
    await editJson(join(dir2, 'model.safetensors.index.json'), (c) => {
      (c.weight_map as Record<string, string>)['lm_head.weight'] = SHARD1;
    });
    expect((await refusal(dir2)).message).toBe(`safetensors ${join(dir2, SHARD1)}: tensor lm_head.weight listed in model.safetensors.index.json is missing`);
  });

  it('an unsupported dtype names the tensor', async () => {
    const dir = await copyModel();
    const path = join(dir, SHARD2);
    const bytes = await readFile(path);
    const text = bytes.toString('latin1');
    const at = text.indexOf('"BF16"');
    bytes.write('"I16" ', at, 'latin1');
    await writeFile(path, bytes);
    const err = await refusal(dir);
    expect(err.message).toMatch(new RegExp(`safetensors ${path}: tensor \\S+: dtype "I16" is not supported`));
  });

  it('a shape that does not match config.json names the file and tensor', async () => {
    const dir = await copyModel();
    await editJson(join(dir, 'config.json'), (c) => {
      c.intermediate_size = 100;
    });
    expect((await refusal(dir)).message).toBe(
      `safetensors ${join(dir, SHARD1)}: tensor model.layers.0.mlp.gate_proj.weight has shape [96,64], expected [100,64]`,
    );
  });

  it('a missing tensor in a single model.safetensors', async () => {
    const dir = await copyModel();
    await toSingleFile(dir, (t) => t.splice(t.findIndex((x) => x.name === 'model.norm.weight'), 1));
    expect((await refusal(dir)).message).toBe(`HF model directory ${dir}: tensor model.norm.weight is missing`);
  });

  it('Qwen2: zero q/k/v biases load, a non-zero bias is refused by name', async () => {
    const dir = await copyModel();
    await editJson(join(dir, 'config.json'), (c) => {
      c.architectures = ['Qwen2ForCausalLM'];
      c.tie_word_embeddings = true;
    });
    const bias = (value: number) => (t: { name: string; shape: number[]; data: Float32Array }[]) => {
      for (const [m, n] of [['q_proj', 64], ['k_proj', 32], ['v_proj', 32]] as const) {
        t.push({ name: `model.layers.1.self_attn.${m}.bias`, shape: [n], data: new Float32Array(n).fill(m === 'v_proj' ? value : 0) });
      }
    };
    await toSingleFile(dir, bias(0));
    const loaded = await loadModel(dir);
    expect(loaded.weights.get('output.weight')).toBe(loaded.weights.get('token_embd.weight'));
    const dir2 = await copyModel();
    await editJson(join(dir2, 'config.json'), (c) => {
      c.architectures = ['Qwen2ForCausalLM'];
    });
    await toSingleFile(dir2, bias(0.5));
    expect((await refusal(dir2)).message).toBe(
      `safetensors ${join(dir2, 'model.safetensors')}: tensor model.layers.1.self_attn.v_proj.bias is a non-zero bias; linear biases (Qwen2's q/k/v) are not supported`,
    );
  });

  it('a missing tokenizer.json, and a bos_token that is not in it', async () => {
    const dir = await copyModel();
    await unlink(join(dir, 'tokenizer.json'));
    expect((await refusal(dir)).message).toBe(`tokenizer.json ${join(dir, 'tokenizer.json')}: file not found`);
    const dir2 = await copyModel();
    await editJson(join(dir2, 'tokenizer_config.json'), (c) => {
      c.bos_token = '<bos>';
    });
    expect((await refusal(dir2)).message).toMatch(/bos_token "<bos>" is not in/);
  });
});
