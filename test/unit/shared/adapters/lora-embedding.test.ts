import { describe, expect, it } from 'vitest';
import { LORA_EMBEDDING_A, LORA_EMBEDDING_B } from '../../../../shared/adapters/lora-embedding.js';
import { initLoraTensors, loraManifest, mergeLora, validateLoraSpec } from '../../../../shared/adapters/lora.js';
import { compileConfig } from '../../../../shared/config.js';
import { normaliseTargetModules } from '../../../../shared/config/target-modules.js';
import { errorCodeOf } from '../../../../shared/errors.js';
import { bertTargets } from '../../../../shared/model/bert/bert-trainable.js';
import { randomBaseWeights } from '../../../../shared/model/random-weights.js';
import type { LoraSpec } from '../../../../shared/model/types.js';
import { mulberry32 } from '../../../../shared/random.js';
import { caught } from '../../../helpers/caught.js';

const config = { vocabSize: 12, dim: 8, nLayers: 2, nHeads: 2, nKvHeads: 1, hiddenDim: 12, normEps: 1e-5, ropeTheta: 10000, contextLength: 16 };
const spec: LoraSpec = { method: 'lora', r: 3, loraAlpha: 6, loraDropout: 0.1, targetModules: ['q', 'embed'], useRslora: false };

describe('LoRA on the token embedding: bookkeeping', () => {
  it('accepts embed_tokens / token_embd / tok_embeddings / embed, puts it last, and all-linear leaves it out', () => {
    for (const name of ['embed_tokens', 'token_embd', 'tok_embeddings', 'embed', 'model.embed_tokens', 'EMBED_TOKENS']) {
      expect(normaliseTargetModules([name, 'q_proj'])).toEqual({ ok: true, targets: ['q', 'embed'] });
    }
    const all = normaliseTargetModules(['all-linear']);
    expect(all.ok && all.targets).toEqual(['q', 'k', 'v', 'o', 'gate', 'up', 'down']);
    const compiled = compileConfig({ peft: { target_modules: ['embed_tokens', 'v_proj', 'q_proj'] } });
    expect(compiled.peft.target_modules).toEqual(['q', 'v', 'embed']);
    expect(() => validateLoraSpec(spec)).not.toThrow();
    expect(errorCodeOf(caught(() => validateLoraSpec({ ...spec, targetModules: ['embed', 'embed'] })))).toBe('E_CONFIG_INVALID');
    // BERT models have no embedding LoRA here: refused, not silently dropped.
    expect(errorCodeOf(caught(() => bertTargets({ task: 'classification', numLabels: 2, pooling: 'mean', peft: spec })))).toBe('E_CONFIG_INVALID');
  });

  it('shapes A as [r, vocab] and B as [dim, r] (PEFT lora_embedding_A/B, no .weight), after the linear factors', () => {
    const manifest = loraManifest(config, spec);
    expect(manifest.slice(-2)).toEqual([
      { name: LORA_EMBEDDING_A, shape: [3, 12] },
      { name: LORA_EMBEDDING_B, shape: [8, 3] },
    ]);
    expect(manifest.length).toBe(2 * 2 + 2);
    expect(loraManifest(config, { ...spec, targetModules: ['q'] }).length).toBe(4);
  });

  it('initialises as PEFT does for embeddings: A = 0, B ~ N(0, 1); the linear factors are unchanged by adding it', () => {
    const values = initLoraTensors(config, spec, mulberry32(5));
    expect([...values.keys()]).toEqual(loraManifest(config, spec).map((t) => t.name));
    expect(values.get(LORA_EMBEDDING_A)!.every((v) => v === 0)).toBe(true);
    const b = values.get(LORA_EMBEDDING_B)!;
    const mean = b.reduce((s, v) => s + v, 0) / b.length;
    const std = Math.sqrt(b.reduce((s, v) => s + (v - mean) ** 2, 0) / b.length);
    expect(std).toBeGreaterThan(0.5);
    expect(std).toBeLessThan(1.6);
    const linearOnly = initLoraTensors(config, { ...spec, targetModules: ['q'] }, mulberry32(5));
    for (const [name, v] of linearOnly) expect(values.get(name)).toEqual(v);
    expect(initLoraTensors(config, spec, mulberry32(5))).toEqual(values);
  });

  it('merges s·(B·A)ᵀ into token_embd; unties a tied base and leaves a separate output.weight alone', () => {
    const rng = mulberry32(8);
    const lora = initLoraTensors(config, spec, rng);
    lora.set(LORA_EMBEDDING_A, Float32Array.from(lora.get(LORA_EMBEDDING_A)!, () => rng() - 0.5));
    const scale = spec.loraAlpha / spec.r;
    for (const untiedOutput of [false, true]) {
      const base = randomBaseWeights(config, 3, { std: 0.3, untiedOutput });
      const merged = mergeLora(config, base, spec, lora);
      const w = base.get('token_embd.weight')!;
      const m = merged.get('token_embd.weight')!;
      const a = lora.get(LORA_EMBEDDING_A)!;
      const b = lora.get(LORA_EMBEDDING_B)!;
      for (const [t, j] of [[0, 0], [5, 3], [11, 7]]) {
        let delta = 0;
        for (let k = 0; k < spec.r; k++) delta += b[j * spec.r + k] * a[k * config.vocabSize + t];
        expect(m[t * config.dim + j]).toBeCloseTo(w[t * config.dim + j] + scale * delta, 6);
      }
      expect(base.get('token_embd.weight')).toBe(w);
      // The output projection keeps the unmerged table: the separate one as it was, the tied one as a copy.
      expect(merged.get('output.weight')).toBe(untiedOutput ? base.get('output.weight') : w);
    }
    const missing = new Map(lora);
    missing.delete(LORA_EMBEDDING_B);
    expect(errorCodeOf(caught(() => mergeLora(config, randomBaseWeights(config, 3), spec, missing)))).toBe('E_TENSOR_NAME');
  });
});

