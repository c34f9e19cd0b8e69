/**
 * `npm run bench:wire` end to end at a small setting: it must keep running and keep printing the figures the README
 * quotes (one JSON object on its last stdout line). Speeds are not asserted (that is the benchmark's job, on a quiet
 * machine); only that each figure is there, finite and consistent with what it claims to measure.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'bench-wire.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

interface SizeRow {
  size_mb: number;
  ws_mb_per_s: number;
  tcp_mb_per_s: number;
  tcp_in_place_mb_per_s: number;
  ws_vs_tcp: number;
  ws_vs_tcp_in_place: number;
  ws_landed_in_place: number;
  ws_vs_tcp_per_cycle: number[];
  ws_ms: number[];
  tcp_ms: number[];
  tcp_in_place_ms: number[];
  zero_copy_decode: boolean;
  gc_ms_per_round_trip: { ws: number; tcp: number };
  settle_round_trips: number;
  ws_settle_ms: number[];
  tcp_settle_ms: number[];
}

describe('bench:wire', () => {
  it('prints one JSON object last: per size ws and TCP round trips over each ABBA cycle, the ratios, zero-copy fp32; codec speeds', async () => {
    // 256 KiB chunks: the 1 MB tensor travels chunked, as tensors above 4 MiB do by default.
    const args = ['--sizes', '1', '--chunk', '262144', '--runs', '4', '--warmup', '1', '--cycles', '2', '--settle', '3', '--no-training'];
    const { code, stdout, stderr } = await run(args);
    expect(code, stderr).toBe(0);
    const lines = stdout.trim().split('\n');
    const figures = JSON.parse(lines[lines.length - 1]) as {
      throughput: { sizes: SizeRow[]; coordinator_incremental_marking: boolean; echo_holds: string; echo_heap_growing_percent: number; ws_reads_in_place: boolean };
      codecs: { codecs: Record<string, { encode_gb_s: number; decode_gb_s: number }> };
    };
    const [row] = figures.throughput.sizes;
    expect(row.size_mb).toBe(1);
    // The bench's own process plays the coordinator, with the coordinator's GC setting.
    expect(figures.throughput.coordinator_incremental_marking).toBe(process.env.SWARMTUNE_INCREMENTAL_MARKING === '1');
    // The echo plays a worker: it holds the default model (present on this machine) and runs with a worker's GC setting.
    expect(figures.throughput.echo_holds).toBe('model');
    expect(stderr).toMatch(/echo holds: backend \w+, llama, 5 layers/);
    expect(figures.throughput.echo_heap_growing_percent).toBe(Number(process.env.SWARMTUNE_HEAP_GROWING_PERCENT || 100));
    // Both paths settle first, alternating: 3 untimed round trips each, reported apart from the timed ones.
    expect(row.settle_round_trips).toBe(3);
    expect(row.ws_settle_ms).toHaveLength(3);
    expect(row.tcp_settle_ms).toHaveLength(3);
    // Two cycles of ws, TCP, TCP in place, TCP in place, TCP, ws blocks of ⌈4/2⌉ timed round trips each: 4 per path per cycle.
    expect(row.ws_ms).toHaveLength(8);
    expect(row.tcp_ms).toHaveLength(8);
    expect(row.tcp_in_place_ms).toHaveLength(8);
    expect(row.ws_vs_tcp_per_cycle).toHaveLength(2);
    const all = [row.ws_mb_per_s, row.tcp_mb_per_s, row.tcp_in_place_mb_per_s, row.ws_vs_tcp, row.ws_vs_tcp_in_place, ...row.ws_vs_tcp_per_cycle];
    for (const x of [...all, ...row.ws_ms, ...row.tcp_ms, ...row.tcp_in_place_ms]) {
      expect(Number.isFinite(x) && x > 0).toBe(true);
    }
    const median = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
    };
    // The headline ratio is TCP's median round trip over ws's over every cycle (the times are printed to 0.1 ms).
    expect(row.ws_vs_tcp).toBeCloseTo(median(row.tcp_ms) / median(row.ws_ms), 1);
    expect(row.ws_vs_tcp_in_place).toBeCloseTo(median(row.tcp_in_place_ms) / median(row.ws_ms), 1);
    // The chunks' data landed in the coordinator's reassembly buffer straight from the socket, nearly all of it
    // (each fragment's first read, which holds its header, and its last byte go through ws).
    const inPlace = process.env.SWARMTUNE_READS_IN_PLACE !== '0';
    expect(figures.throughput.ws_reads_in_place).toBe(inPlace);
    if (inPlace) expect(row.ws_landed_in_place).toBeGreaterThan(0.5);
    else expect(row.ws_landed_in_place).toBe(0);
    expect(row.ws_landed_in_place).toBeLessThanOrEqual(1);
    expect(row.zero_copy_decode).toBe(true);
    for (const gc of [row.gc_ms_per_round_trip.ws, row.gc_ms_per_round_trip.tcp]) expect(Number.isFinite(gc) && gc >= 0).toBe(true);
    for (const codec of ['fp16', 'bf16', 'int8']) {
      expect(figures.codecs.codecs[codec].encode_gb_s).toBeGreaterThan(0);
      expect(figures.codecs.codecs[codec].decode_gb_s).toBeGreaterThan(0);
    }
  }, 180_000);
});
