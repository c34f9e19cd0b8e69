/**
 * `npm run bench:codecs`: encode and decode speed of every tensor codec on one 4M-element float32 tensor
 * (16 MB; values ~ N(0, 0.02²)-like, as LoRA gradients, with a few zeros). GB/s counts float32 INPUT bytes
 * (4 bytes per element) for both directions, so codecs compare on the same footing. Each figure is the median
 * of --reps timed runs after --warmup untimed ones.
 *
 * Progress goes to stderr; the LAST stdout line is one JSON object:
 *   { "elements", "simd", "codecs": { "<codec>": { "encode_gb_s", "encode_into_gb_s", "decode_gb_s", "decode_into_gb_s",
 *     "best": { same four, fastest run }, "bytes", "ratio", "max_abs_err" } } }
 * `encode_gb_s` / `decode_gb_s` allocate a fresh output each time (fp32: a zero-copy view); `*_into_gb_s` reuse one
 * output buffer (`encodeTensorInto` / `decodeTensorInto`), which skips the first-touch page faults of fresh memory
 * (about 1–1.5 GB/s on this machine by themselves, far less when it is loaded). `simd` says whether the
 * WebAssembly SIMD kernels ran (SWARMTUNE_NO_SIMD=1 measures the scalar code).
 *
 * Flags: --elements N (default 4194304), --reps N (default 9), --warmup N (default 3), --only fp16,int8 (a subset).
 */
import { parseArgs } from 'node:util';
import { decodeTensor, decodeTensorInto, encodedByteLength, encodeTensor, encodeTensorInto, type CodecSpec } from '../shared/codecs/index.js';
import { simdKernels } from '../shared/codecs/simd-kernels.js';
import { mulberry32 } from '../shared/random.js';

const { values: flags } = parseArgs({
  options: {
    elements: { type: 'string', default: String(4 * 1024 * 1024) },
    reps: { type: 'string', default: '9' },
    warmup: { type: 'string', default: '3' },
    only: { type: 'string' },
  },
});
const n = Number(flags.elements);
const reps = Number(flags.reps);
const warmup = Number(flags.warmup);

const specs: CodecSpec[] = (
  [
    { codec: 'fp32' },
    { codec: 'fp16' },
    { codec: 'bf16' },
    { codec: 'int8', blockSize: 64 },
    { codec: 'topk', density: 0.01 },
  ] satisfies CodecSpec[]
).filter((s) => flags.only === undefined || flags.only.split(',').includes(s.codec));

const random = mulberry32(42);
const values = new Float32Array(n);
for (let i = 0; i < n; i++) {
  // Sum of uniforms ≈ normal; every 97th value exactly zero.
  values[i] = i % 97 === 0 ? 0 : (random() + random() + random() - 1.5) * 0.04;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median and fastest of `reps` timed runs (ms). */
function time(fn: () => unknown): { median: number; best: number } {
  for (let i = 0; i < warmup; i++) fn();
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  return { median: median(ms), best: Math.min(...ms) };
}

const inputBytes = n * 4;
type Speeds = { encode_gb_s: number; encode_into_gb_s: number; decode_gb_s: number; decode_into_gb_s: number };
type Row = Speeds & { best: Speeds; bytes: number; ratio: number; max_abs_err: number };
const result: Record<string, Row> = {};
const reused = new Float32Array(n);
for (const spec of specs) {
  const blob = encodeTensor('bench', [n], values, spec);
  const encodedBytes = new Uint8Array(encodedByteLength(n, spec) ?? 0);
  const encodeMs = time(() => encodeTensor('bench', [n], values, spec));
  const encodeIntoMs = time(() => encodeTensorInto('bench', [n], values, spec, encodedBytes));
  const decodeMs = time(() => decodeTensor(blob));
  const decodeIntoMs = time(() => decodeTensorInto(blob, reused));
  const decoded = decodeTensor(blob);
  let maxErr = 0;
  // topk's error is the dropped mass by design: report it on kept entries only (exact), like the other codecs.
  for (let i = 0; i < n; i++) if (spec.codec !== 'topk' || decoded[i] !== 0) maxErr = Math.max(maxErr, Math.abs(values[i] - decoded[i]));
  const round = (x: number) => Math.round(x * 1000) / 1000;
  const gbs = (ms: number) => round(inputBytes / (ms * 1e6));
  result[spec.codec] = {
    encode_gb_s: gbs(encodeMs.median),
    encode_into_gb_s: gbs(encodeIntoMs.median),
    decode_gb_s: gbs(decodeMs.median),
    decode_into_gb_s: gbs(decodeIntoMs.median),
    best: { encode_gb_s: gbs(encodeMs.best), encode_into_gb_s: gbs(encodeIntoMs.best), decode_gb_s: gbs(decodeMs.best), decode_into_gb_s: gbs(decodeIntoMs.best) },
    bytes: blob.data.byteLength,
    ratio: round(inputBytes / blob.data.byteLength),
    max_abs_err: maxErr,
  };
  process.stderr.write(
    `${spec.codec}: encode ${encodeMs.median.toFixed(2)} ms (into ${encodeIntoMs.median.toFixed(2)}), decode ${decodeMs.median.toFixed(2)} ms (into ${decodeIntoMs.median.toFixed(2)})\n`,
  );
}
console.log(JSON.stringify({ elements: n, input_bytes: inputBytes, reps, simd: simdKernels() !== undefined, codecs: result }));
