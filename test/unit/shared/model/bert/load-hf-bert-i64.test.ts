import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadHfBert } from '../../../../../shared/model/bert/load-hf-bert.js';

const FIXTURE = join(import.meta.dirname, '../../../../fixtures/hf-bert');

/** The fixture's model.safetensors with an I64 `bert.embeddings.position_ids` [1, maxPositions] appended. */
function withPositionIds(maxPositions: number): Buffer {
  const bytes = readFileSync(join(FIXTURE, 'model.safetensors'));
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, unknown>;
  const data = bytes.subarray(8 + headerLength);
  const ids = Buffer.alloc(8 * maxPositions);
  for (let i = 0; i < maxPositions; i++) ids.writeBigInt64LE(BigInt(i), 8 * i);
  header['bert.embeddings.position_ids'] = { dtype: 'I64', shape: [1, maxPositions], data_offsets: [data.length, data.length + ids.length] };
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, data, ids]);
}

describe('older BERT checkpoints with I64 position_ids', () => {
  it('load, the I64 buffer skipped, with the same weights as without it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmtune-bert-i64-'));
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(FIXTURE, f), join(dir, f));
    writeFileSync(join(dir, 'model.safetensors'), withPositionIds(64));
    const withIds = await loadHfBert(dir);
    const plain = await loadHfBert(FIXTURE);
    expect([...withIds.weights.keys()]).toEqual([...plain.weights.keys()]);
    for (const [name, values] of plain.weights) expect(withIds.weights.get(name), name).toEqual(values);
    expect(withIds.sha256).not.toBe(plain.sha256);
  });
});
