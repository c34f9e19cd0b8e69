import { describe, expect, it } from 'vitest';
import { compileConfig, resolveConfig, toPeftSpec } from '../../../../shared/config.js';
import { errorCodeOf } from '../../../../shared/errors.js';
import { Packr } from 'msgpackr';
import { parseMessage } from '../../../../shared/protocol/parse.js';
import { sampleMessages } from '../../../fixtures/frames/samples.js';

const raw = new Packr({ useRecords: false });
/** A welcome frame's bytes carrying `modelSpec`. */
function welcomeWith(modelSpec: unknown): Uint8Array {
  return raw.pack({ ...sampleMessages().welcome, modelSpec });
}

function failure(f: () => unknown): { code: string | undefined; message: string } {
  try {
    f();
  } catch (err) {
    return { code: errorCodeOf(err), message: (err as Error).message };
  }
  throw new Error('expected a throw');
}

describe('peft.method in the run configuration', () => {
  it('compiles every method to its model spec, and a compiled config recompiles', () => {
    expect(toPeftSpec(compileConfig({}).peft)).toEqual({ method: 'lora', r: 8, loraAlpha: 16, loraDropout: 0, targetModules: ['q', 'v'], useRslora: false });
    const adapter = compileConfig({ peft: { method: 'adapter', adapter_size: 8, adapter_non_linearity: 'silu' } });
    expect(toPeftSpec(adapter.peft)).toEqual({ method: 'adapter', adapterSize: 8, nonLinearity: 'silu' });
    expect(compileConfig(JSON.parse(JSON.stringify(adapter)))).toEqual(adapter);
    expect(toPeftSpec(compileConfig({ peft: { method: 'prompt', num_virtual_tokens: 4 } }).peft)).toEqual({ method: 'prompt', numVirtualTokens: 4 });
    expect(toPeftSpec(compileConfig({ peft: { method: 'feature', trainable_top_layers: 2 } }).peft)).toEqual({ method: 'feature', trainableTopLayers: 2 });
    expect(toPeftSpec(compileConfig({ peft: { method: 'full' } }).peft)).toEqual({ method: 'full' });
  });

  it('refuses an unknown method, naming the choices', () => {
    const { code, message } = failure(() => compileConfig({ peft: { method: 'prefix' } }));
    expect(code).toBe('E_CONFIG_INVALID');
    expect(message).toContain('peft.method');
    expect(message).toContain('"adapter"');
  });

  it('refuses a key of another method, naming the key, its method and where it came from', async () => {
    const a = failure(() => compileConfig({ peft: { method: 'adapter', r: 16 } }));
    expect(a.code).toBe('E_CONFIG_INVALID');
    expect(a.message).toContain('"peft.r"');
    expect(a.message).toContain('"lora"');
    expect(a.message).toContain('"adapter"');
    await expect(resolveConfig({ env: {}, sets: ['peft.num_virtual_tokens=4'] })).rejects.toThrow(/peft\.num_virtual_tokens.*--set.*"prompt", not "lora"/);
    expect(failure(() => compileConfig({ peft: { method: 'full', trainable_top_layers: 1 } })).code).toBe('E_CONFIG_INVALID');
    expect(failure(() => compileConfig({ peft: { method: 'feature', adapter_size: 4 } })).code).toBe('E_CONFIG_INVALID');
    expect(failure(() => compileConfig({ peft: { method: 'prompt', num_virtual_tokens: 0 } })).code).toBe('E_CONFIG_INVALID');
    const exact = failure(() => compileConfig({ peft: { method: 'adapter' }, lora_aggregation: 'exact' }));
    expect(exact.code).toBe('E_CONFIG_INVALID');
    expect(exact.message).toContain('lora_aggregation');
  });

  it('lets every method\'s model spec cross the wire in a welcome frame', () => {
    for (const peft of [
      { method: 'adapter', adapterSize: 8, nonLinearity: 'relu' },
      { method: 'prompt', numVirtualTokens: 4 },
      { method: 'feature', trainableTopLayers: 1 },
      { method: 'full' },
    ]) {
      const spec = { task: 'classification', numLabels: 2, pooling: 'mean', peft };
      expect(parseMessage(welcomeWith(spec))).toMatchObject({ modelSpec: spec });
    }
    expect(() => parseMessage(welcomeWith({ task: 'classification', numLabels: 2, pooling: 'mean', peft: { method: 'prefix' } }))).toThrow();
  });
});
