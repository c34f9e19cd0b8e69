import { mkdtempSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listCheckpoints, pruneCheckpoints, verifyCheckpoint, writeCheckpointAtomically } from '../../../coordinator/checkpoint-store.js';
import { decodeWithTensors, encodeWithTensors, trainingConfigDifferences } from '../../../coordinator/checkpoint-state.js';
import { compileConfig } from '../../../shared/config.js';

const fresh = () => mkdtempSync(join(tmpdir(), 'swarmtune-ckpt-'));

describe('checkpoint folders', () => {
  it('writes atomically with a checksum list that sha256sum could check, and verifies it', async () => {
    const run = fresh();
    const dir = join(run, 'checkpoint-3');
    await writeCheckpointAtomically(dir, async (tmp) => {
      await writeFile(join(tmp, 'a.bin'), new Uint8Array([1, 2, 3]));
      await writeFile(join(tmp, 'b.json'), '{}');
    });
    expect((await readdir(run)).sort()).toEqual(['checkpoint-3']);
    expect(await readFile(join(dir, 'checkpoint.sha256'), 'utf8')).toMatch(/^[0-9a-f]{64} {2}a\.bin\n[0-9a-f]{64} {2}b\.json\n$/);
    expect(await verifyCheckpoint(dir, ['a.bin'])).toEqual({ ok: true });
    await writeFile(join(dir, 'a.bin'), new Uint8Array([1, 2, 4]));
    expect(await verifyCheckpoint(dir)).toMatchObject({ ok: false, reason: expect.stringContaining('a.bin has sha256') });
    expect(await verifyCheckpoint(dir, ['c.bin'])).toMatchObject({ ok: false, reason: expect.stringContaining('c.bin') });
  });

  it('leaves nothing behind when the save fails, and replaces an existing checkpoint whole', async () => {
    const run = fresh();
    const dir = join(run, 'checkpoint-5');
    await expect(writeCheckpointAtomically(dir, async (tmp) => writeFile(join(tmp, 'x'), 'x'), ['missing.bin'])).rejects.toThrow(/missing\.bin/);
    expect(await readdir(run)).toEqual([]);
    await writeCheckpointAtomically(dir, async (tmp) => writeFile(join(tmp, 'old'), '1'));
    await writeCheckpointAtomically(dir, async (tmp) => writeFile(join(tmp, 'new'), '2'));
    expect((await readdir(dir)).sort()).toEqual(['checkpoint.sha256', 'new']);
    expect(await readdir(run)).toEqual(['checkpoint-5']);
  });

  it('lists newest first and prunes beyond save_total_limit, sweeping leftovers of an interrupted save', async () => {
    const run = fresh();
    for (const n of [2, 10, 4]) await mkdir(join(run, `checkpoint-${n}`));
    await mkdir(join(run, '.tmp-checkpoint-12-1-2'));
    await writeFile(join(run, 'checkpoint-99'), 'a file, not a checkpoint');
    expect((await listCheckpoints(run)).map((e) => e.number)).toEqual([10, 4, 2]);
    await pruneCheckpoints(run, 2);
    expect((await readdir(run)).sort()).toEqual(['checkpoint-10', 'checkpoint-4', 'checkpoint-99']);
  });
});

describe('checkpoint state encoding', () => {
  it('round-trips float64 and float32 arrays bit for bit, nested anywhere, with non-finite scalars', () => {
    const value = { a: Float64Array.from([0.1, -0, 1e-310, Number.MAX_VALUE]), nested: { m: new Map([['w', Float32Array.from([1.5, -2])]]), list: [Float64Array.from([3])] }, s: Number.NaN, n: null };
    const { json, bin } = encodeWithTensors(value);
    const back = decodeWithTensors(json, bin) as { a: Float64Array; nested: { m: { w: Float32Array }; list: Float64Array[] }; s: number; n: null };
    expect(back.a).toBeInstanceOf(Float64Array);
    expect(Buffer.from(back.a.buffer, back.a.byteOffset, back.a.byteLength).equals(Buffer.from(value.a.buffer))).toBe(true);
    expect(Object.is(back.a[1], -0)).toBe(true);
    expect([...back.nested.m.w]).toEqual([1.5, -2]);
    expect(back.nested.list[0][0]).toBe(3);
    expect(back.s).toBeNaN();
    expect(back.n).toBeNull();
    expect(() => decodeWithTensors(json, bin.subarray(8))).toThrow(/bytes/);
  });

  it('names the training keys that differ and ignores operational ones', () => {
    const a = compileConfig({ learning_rate: 0.01, port: 1, output_dir: 'x' });
    const b = compileConfig({ learning_rate: 0.02, port: 2, output_dir: 'y', resume_from_checkpoint: true });
    expect(trainingConfigDifferences(a, b)).toEqual(['learning_rate (checkpoint 0.01, now 0.02)']);
  });
});
