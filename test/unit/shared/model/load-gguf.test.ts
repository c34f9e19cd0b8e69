import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, InputFileError } from '../../../../shared/errors.js';
import { writeGguf, type GgufTensorInput } from '../../../../shared/formats/gguf-writer.js';
import { readGguf, type GgufMetadata } from '../../../../shared/formats/gguf.js';
import { expectedLlamaTensors, loadLlamaGguf } from '../../../../shared/model/load-gguf.js';
import { writeRandomLlamaGguf, type RandomLlamaGguf } from '../../../helpers/random-gguf.js';

const STORIES = '/work/shared/models/stories260K.gguf';
const hasStories = existsSync(STORIES);
if (!hasStories) console.warn(`SKIPPING stories260K loader tests: ${STORIES} is absent`);

const SMALL = { seed: 5, dim: 64, nLayers: 2, nHeads: 8, nKvHeads: 4, hiddenDim: 96 } as const;

let dir: string;
let random: RandomLlamaGguf;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swarmtune-load-'));
  random = await writeRandomLlamaGguf(join(dir, 'random.gguf'), SMALL);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Rewrites the random model with edited metadata and tensors, returns the new path. */
async function variant(
  name: string,
  edit: (metadata: GgufMetadata, tensors: GgufTensorInput[]) => GgufTensorInput[] | void,
): Promise<string> {
  const f = await readGguf(random.path);
  const metadata = { ...f.metadata };
  let tensors: GgufTensorInput[] = f.tensors.map((t) => ({ name: t.name, shape: t.shape, data: t.data }));
  tensors = edit(metadata, tensors) ?? tensors;
  const path = join(dir, name);
  await writeGguf(path, { metadata, tensors });
  return path;
}

async function expectLoadError(path: string, ...parts: string[]): Promise<void> {
  const err = await loadLlamaGguf(path).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputFileError);
  expect((err as InputFileError).code).toBe(ErrorCode.MODEL_FILE);
  for (const p of parts) expect((err as Error).message).toContain(p);
}

describe('loadLlamaGguf on a seeded random model', () => {
  it('reads the config from llama.* metadata and the vocabulary size from the token list', async () => {
    const m = await loadLlamaGguf(random.path);
    expect(m.config).toEqual({
      vocabSize: 512,
      dim: 64,
      nLayers: 2,
      nHeads: 8,
      nKvHeads: 4,
      hiddenDim: 96,
      normEps: 1e-5,
      ropeTheta: 10000,
      contextLength: 2048,
    });
    expect(m.path).toBe(random.path);
    expect(m.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.tokenizer.vocabSize).toBe(512);
  });

  it('returns every expected tensor by GGUF name, bit-exact, in PyTorch shape order', async () => {
    const m = await loadLlamaGguf(random.path);
    const expected = expectedLlamaTensors(m.config);
    expect([...m.weights.keys()].sort()).toEqual([...expected.keys()].sort());
    expect(expected.get('blk.1.attn_k.weight')).toEqual([32, 64]);
    expect(expected.get('blk.1.ffn_down.weight')).toEqual([64, 96]);
    for (const [name, data] of random.weights) expect(m.weights.get(name), name).toEqual(data);
    expect(m.weights.get('output.weight')).not.toBe(m.weights.get('token_embd.weight'));
  });

  it('is reproducible: same seed, same file hash; another seed, another hash', async () => {
    const again = await writeRandomLlamaGguf(join(dir, 'again.gguf'), SMALL);
    const other = await writeRandomLlamaGguf(join(dir, 'other.gguf'), { ...SMALL, seed: 6 });
    const [a, b, c] = await Promise.all([random.path, again.path, other.path].map((p) => loadLlamaGguf(p)));
    expect(b.sha256).toBe(a.sha256);
    expect(c.sha256).not.toBe(a.sha256);
  });

  it('ties output.weight to token_embd.weight when the file has no output tensor', async () => {
    const tied = await writeRandomLlamaGguf(join(dir, 'tied.gguf'), { ...SMALL, tiedOutput: true });
    const m = await loadLlamaGguf(tied.path);
    expect(m.weights.get('output.weight')).toBe(m.weights.get('token_embd.weight'));
  });

  it('dequantizes Q8_0 weights to within their quantisation error (norms stay exact)', async () => {
    const q = await writeRandomLlamaGguf(join(dir, 'q8.gguf'), { ...SMALL, tensorType: 'Q8_0' });
    const f = await readGguf(q.path);
    expect(f.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!.fileType).toBe(8);
    const m = await loadLlamaGguf(q.path);
    for (const [name, data] of q.weights) {
      const got = m.weights.get(name)!;
      let maxErr = 0;
      let maxAbs = 0;
      for (let i = 0; i < data.length; i++) {
        maxErr = Math.max(maxErr, Math.abs(got[i] - data[i]));
        maxAbs = Math.max(maxAbs, Math.abs(data[i]));
      }
      // Per-block step is absmax/127; the tensor-wide absmax bounds it.
      expect(maxErr, name).toBeLessThanOrEqual(maxAbs / 127 / 2 + maxAbs * 2 ** -10);
    }
  });

  it('defaults head_count_kv to head_count and rope.freq_base to 10000; honours a given freq_base', async () => {
    const path = await variant('defaults.gguf', (md, tensors) => {
      delete md['llama.attention.head_count_kv'];
      delete md['llama.rope.freq_base'];
      // With 8 kv heads, k and v are [64, 64].
      return tensors.map((t) =>
        /attn_[kv]\.weight$/.test(t.name) ? { name: t.name, shape: [64, 64], data: new Float32Array(64 * 64) } : t,
      );
    });
    const m = await loadLlamaGguf(path);
    expect(m.config.nKvHeads).toBe(8);
    expect(m.config.ropeTheta).toBe(10000);
    const theta = await variant('theta.gguf', (md) => {
      md['llama.rope.freq_base'] = 500000;
    });
    expect((await loadLlamaGguf(theta)).config.ropeTheta).toBe(500000);
  });
});

describe('loadLlamaGguf errors (E_MODEL_FILE naming what is wrong)', () => {
  it('a missing file', async () => {
    await expectLoadError(join(dir, 'absent.gguf'), 'absent.gguf', 'not found');
  });

  it('another architecture', async () => {
    const path = await variant('arch.gguf', (md) => {
      md['general.architecture'] = 'gpt2';
    });
    await expectLoadError(path, path, 'general.architecture is "gpt2"');
  });

  it('a missing llama key', async () => {
    const path = await variant('nokey.gguf', (md) => {
      delete md['llama.embedding_length'];
    });
    await expectLoadError(path, 'llama.embedding_length is missing');
  });

  it('heads that do not divide the width', async () => {
    const path = await variant('heads.gguf', (md) => {
      md['llama.attention.head_count'] = 7;
    });
    await expectLoadError(path, 'not a multiple of head_count 7');
  });

  it('a missing tensor', async () => {
    const path = await variant('notensor.gguf', (_, tensors) => tensors.filter((t) => t.name !== 'blk.1.ffn_up.weight'));
    await expectLoadError(path, path, 'tensor blk.1.ffn_up.weight is missing');
  });

  it('a tensor of the wrong shape', async () => {
    const path = await variant('shape.gguf', (_, tensors) =>
      tensors.map((t) => (t.name === 'blk.0.attn_k.weight' ? { name: t.name, shape: [64, 32], data: t.data } : t)),
    );
    await expectLoadError(path, 'tensor blk.0.attn_k.weight has shape [64,32], expected [32,64]');
  });

  it('an embedding whose rows disagree with the token list', async () => {
    const path = await variant('vocab.gguf', (md) => {
      md['tokenizer.ggml.tokens'] = (md['tokenizer.ggml.tokens'] as string[]).slice(0, 400);
      md['tokenizer.ggml.scores'] = (md['tokenizer.ggml.scores'] as number[]).slice(0, 400);
      md['tokenizer.ggml.token_type'] = (md['tokenizer.ggml.token_type'] as number[]).slice(0, 400);
    });
    await expectLoadError(path, 'tensor token_embd.weight has shape [512,64], expected [400,64]');
  });
});

describe.skipIf(!hasStories)('loadLlamaGguf on stories260K.gguf', () => {
  it('has the documented config, 48 weights, tokenizer and hash, with q/k left in the file layout', async () => {
    const m = await loadLlamaGguf(STORIES);
    expect(m.config).toEqual({
      vocabSize: 512,
      dim: 64,
      nLayers: 5,
      nHeads: 8,
      nKvHeads: 4,
      hiddenDim: 172,
      normEps: 1e-5,
      ropeTheta: 10000,
      contextLength: 2048,
    });
    expect(m.weights.size).toBe(48);
    expect(m.sha256).toBe('270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d');
    expect(m.tokenizer.encode('Once upon a time')[0]).toBe(1);
    const raw = await readGguf(STORIES);
    for (const t of raw.tensors) expect(m.weights.get(t.name), t.name).toEqual(t.data);
    expect(m.weights.get('output.weight')).toEqual(m.weights.get('token_embd.weight'));
  });
});
