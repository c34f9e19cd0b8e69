import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, InputFileError, ShapeError } from '../../../../shared/errors.js';
import { parseSafetensors, readSafetensors, writeSafetensors } from '../../../../shared/formats/safetensors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swarmtune-st-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A safetensors file from a header object and raw data bytes. */
function build(header: object, data: Uint8Array, padTo8 = true): Uint8Array {
  let json = Buffer.from(JSON.stringify(header));
  if (padTo8 && json.byteLength % 8 !== 0) json = Buffer.concat([json, Buffer.alloc(8 - (json.byteLength % 8), 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.byteLength));
  return Buffer.concat([len, json, data]);
}

function expectModelFileError(fn: () => unknown, ...parts: string[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(InputFileError);
  expect((caught as InputFileError).code).toBe(ErrorCode.MODEL_FILE);
  for (const p of parts) expect((caught as Error).message).toContain(p);
}

describe('writeSafetensors', () => {
  const loraA = { name: 'base_model.model.layers.0.self_attn.q_proj.lora_A.weight', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) };
  const loraB = { name: 'base_model.model.layers.0.self_attn.q_proj.lora_B.weight', shape: [3, 2], data: Float32Array.from([-1, 0.5, 0, 0, 7, 8]) };
  const bias = { name: 'a.bias', shape: [1], data: Float32Array.from([0.25]) };

  it('writes an 8-byte-padded JSON header with sorted, contiguous data_offsets and the metadata', async () => {
    const path = join(dir, 'adapter_model.safetensors');
    await writeSafetensors(path, [loraB, loraA, bias], { format: 'pt' });
    const bytes = await readFile(path);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const headerText = bytes.subarray(8, 8 + n).toString('utf8');
    expect(headerText).toMatch(/^\{.*\} *$/s); // JSON, then only spaces as padding
    const header = JSON.parse(headerText);
    expect(header.__metadata__).toEqual({ format: 'pt' });
    expect(Object.keys(header).filter((k) => k !== '__metadata__')).toEqual([bias.name, loraA.name, loraB.name]);
    expect(header[bias.name]).toEqual({ dtype: 'F32', shape: [1], data_offsets: [0, 4] });
    expect(header[loraA.name]).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: [4, 28] });
    expect(header[loraB.name]).toEqual({ dtype: 'F32', shape: [3, 2], data_offsets: [28, 52] });
    expect(bytes.byteLength).toBe(8 + n + 52);
    expect(bytes.readFloatLE(8 + n)).toBe(0.25);
  });

  it('round-trips through readSafetensors', async () => {
    const path = join(dir, 'rt.safetensors');
    await writeSafetensors(path, [loraA, loraB]);
    const f = await readSafetensors(path);
    expect(f.metadata).toEqual({});
    expect(f.tensors.map((t) => [t.name, t.shape, Array.from(t.data), t.fileDtype])).toEqual([
      [loraA.name, [2, 3], [1, 2, 3, 4, 5, 6], 'F32'],
      [loraB.name, [3, 2], [-1, 0.5, 0, 0, 7, 8], 'F32'],
    ]);
  });

  it('rejects a shape that does not match the data, and duplicate names', async () => {
    const path = join(dir, 'bad.safetensors');
    await expect(writeSafetensors(path, [{ name: 'x', shape: [2, 2], data: new Float32Array(3) }])).rejects.toMatchObject({
      code: ErrorCode.TENSOR_SHAPE,
    });
    await expect(writeSafetensors(path, [bias, bias])).rejects.toBeInstanceOf(ShapeError);
  });
});

describe('readSafetensors', () => {
  it('decodes F16 and BF16 tensors to float32, in data order', () => {
    const data = Uint8Array.from([
      0x00, 0x3c, 0x00, 0xc0, // F16: 1, -2
      0x80, 0x3f, 0x49, 0x40, // BF16: 1, 3.140625
    ]);
    const f = parseSafetensors(
      build(
        {
          z: { dtype: 'F16', shape: [2], data_offsets: [0, 4] },
          a: { dtype: 'BF16', shape: [1, 2], data_offsets: [4, 8] },
        },
        data,
      ),
      'mem',
    );
    expect(f.tensors.map((t) => [t.name, t.fileDtype, t.shape, Array.from(t.data)])).toEqual([
      ['z', 'F16', [2], [1, -2]],
      ['a', 'BF16', [1, 2], [1, 3.140625]],
    ]);
  });

  it('accepts an unpadded header and a zero-element tensor', () => {
    const f = parseSafetensors(build({ e: { dtype: 'F32', shape: [0, 4], data_offsets: [0, 0] } }, new Uint8Array(0), false), 'mem');
    expect(f.tensors[0].data.length).toBe(0);
  });

  it('reports each kind of corruption as E_MODEL_FILE naming the file and the problem', async () => {
    const one = new Uint8Array(4);
    expectModelFileError(() => parseSafetensors(new Uint8Array(3), 'short.st'), 'short.st', 'truncated');
    const hugeHeader = new Uint8Array(16);
    new DataView(hugeHeader.buffer).setBigUint64(0, 1000n, true);
    expectModelFileError(() => parseSafetensors(hugeHeader, 'h.st'), 'h.st', 'truncated', 'header of 1000 bytes');
    const notJson = build({}, one);
    notJson.set(Buffer.from('{bad'), 8);
    expectModelFileError(() => parseSafetensors(notJson, 'j.st'), 'j.st', 'not valid UTF-8 JSON');
    expectModelFileError(() => parseSafetensors(build([], one), 'arr.st'), 'not a JSON object');
    expectModelFileError(
      () => parseSafetensors(build({ w: { dtype: 'I8', shape: [4], data_offsets: [0, 4] } }, one), 'd.st'),
      'tensor w', 'dtype "I8" is not supported',
    );
    expectModelFileError(
      () => parseSafetensors(build({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, one), 's.st'),
      'tensor w', 'shape [2] F32 needs 8',
    );
    expectModelFileError(
      () => parseSafetensors(build({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, one), 't.st'),
      'truncated', 'tensor w',
    );
    expectModelFileError(
      () => parseSafetensors(build({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(8)), 'x.st'),
      '4 bytes after the last tensor',
    );
    expectModelFileError(
      () =>
        parseSafetensors(
          build(
            { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } },
            one,
          ),
          'o.st',
        ),
      'gap or overlap',
    );
    expectModelFileError(() => parseSafetensors(build({ __metadata__: { format: 1 } }, new Uint8Array(0)), 'm.st'), '__metadata__.format');
    expectModelFileError(
      () => parseSafetensors(build({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, one), 'n.st'),
      'tensor w', 'shape [-1]',
    );
    await expect(readSafetensors(join(dir, 'missing.safetensors'))).rejects.toThrow(/missing\.safetensors: file not found/);
    const trunc = join(dir, 'trunc.safetensors');
    await writeSafetensors(trunc, [{ name: 'w', shape: [4], data: new Float32Array(4) }]);
    const bytes = await readFile(trunc);
    await writeFile(trunc, bytes.subarray(0, bytes.byteLength - 1));
    await expect(readSafetensors(trunc)).rejects.toMatchObject({ code: ErrorCode.MODEL_FILE });
  });
});
