import { describe, expect, it } from 'vitest';
import { parseSafetensors } from '../../../../shared/formats/safetensors.js';

/** A safetensors file from a header object and its data bytes. */
function build(header: object, data: Uint8Array): Uint8Array {
  const json = Buffer.from(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('safetensors I64 tensors', () => {
  it('skips an I64 tensor (BERT position_ids) and decodes the float ones', () => {
    const data = new Uint8Array(16 + 8);
    new Float32Array(data.buffer, 16, 2).set([1.5, -2]);
    const file = parseSafetensors(
      build({ 'embeddings.position_ids': { dtype: 'I64', shape: [1, 2], data_offsets: [0, 16] }, w: { dtype: 'F32', shape: [2], data_offsets: [16, 24] } }, data),
      'old-bert.safetensors',
    );
    expect(file.tensors.map((t) => t.name)).toEqual(['w']);
    expect([...file.tensors[0].data]).toEqual([1.5, -2]);
    expect(file.skipped).toEqual([{ name: 'embeddings.position_ids', dtype: 'I64', shape: [1, 2] }]);
  });

  it('still checks an I64 tensor against its offsets, naming it', () => {
    const bytes = build({ ids: { dtype: 'I64', shape: [3], data_offsets: [0, 16] } }, new Uint8Array(16));
    expect(() => parseSafetensors(bytes, 'bad.safetensors')).toThrow('safetensors bad.safetensors: tensor ids: data_offsets [0, 16] hold 16 bytes, shape [3] I64 needs 24');
  });
});
