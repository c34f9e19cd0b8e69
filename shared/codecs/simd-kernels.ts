/**
 * WebAssembly SIMD kernels for the fp16, bf16 and int8 codecs (internal to shared/codecs/): the same bit-exact
 * results as the scalar code in fp16.ts / bf16.ts / int8.ts, 8 or 16 elements per step. Pure JS reaches about
 * 1 GB/s on this machine for fp16 and int8 encode; these run several times faster.
 *
 * The module is assembled below from readable opcodes (./wasm-asm.ts; no build step, no npm package). It owns a
 * fixed 192 KiB memory: input at IN_OFFSET, output at OUT_OFFSET, a 16-byte accumulator at ACC_OFFSET, per-block
 * int8 data after it.
 * Callers stream a tensor through it in chunks of {@link CHUNK_ELEMENTS} elements (small enough to stay in cache),
 * so tensors of any size, offset or alignment work without growing memory.
 *
 * Where WebAssembly SIMD is unavailable, {@link simdKernels} returns undefined and the codecs use their scalar code.
 */

import {
  ascii, block, br, brIf, end, f32Load, f32x4Add, f32x4ConvertI32x4S, f32x4Mul, f32x4Splat, f64Load, f64x2Add,
  f64x2Mul, f64x2PromoteLowF32x4, f64x2Splat, get, i16x8ExtendHighI8x16S, i16x8ExtendLowI8x16S, i16x8NarrowI32x4S,
  i16x8NarrowI32x4U, i32Add, i32Const, i32GeU, i32Mul, i32Shl, i32ShrU, i32x4Add, i32x4ExtendHighI16x8S,
  i32x4ExtendHighI16x8U, i32x4ExtendLowI16x8S, i32x4ExtendLowI16x8U, i32x4GeU, i32x4LtU, i32x4MaxU, i32x4Shl,
  i32x4ShrU, i32x4Sub, i32x4TruncSatF64x2SZero, i8x16NarrowI16x8S, joinLow2, loop, section, set, simd, splat32,
  splatF64, tee, uleb, v128And, v128Bitselect, v128Load, v128Load64Zero, v128Or, v128Store, vec,
} from './wasm-asm.js';

/** Tensors shorter than this use the scalar code (the chunk copies cost more than they save). */
export const SIMD_MIN_ELEMENTS = 64;
/** Elements per kernel call (inputs and outputs of one chunk each fit in 64 KiB). */
export const CHUNK_ELEMENTS = 16384;
const IN_OFFSET = 0;
const OUT_OFFSET = 65536;
const ACC_OFFSET = 131072;
/** int8: per-block |x| maxima (one i32x4 per block, up to 1024 blocks). */
const BLOCK_MAX_OFFSET = 131136;
/** int8: per-block 1/scale (float64) for encoding, or scale (float32) for decoding. */
const BLOCK_SCALE_OFFSET = BLOCK_MAX_OFFSET + 16384;
const MEMORY_PAGES = 3;
/** int8: most blocks per kernel call (CHUNK_ELEMENTS / 16). */
const MAX_INT8_BLOCKS = 1024;

// Locals shared by every kernel: 0 = n (param, elements, a multiple of 8), 1 = i (byte index of the input),
// 2.. = v128 scratch.
const N = 0;
const I = 1;
const X = 2;
const A = 3;
const MAX = 4;
const LO = 5;
const H = 6;

/**
 * The body of `for (i = 0; i < n·inBytesPerElement; i += 8·inBytesPerElement) step()`, with `MAX` loaded from
 * and stored back to the accumulator when `accumulate` (a running max across chunks).
 */
function loopBody(inBytesPerElement: number, step: number[], accumulate: boolean): number[] {
  const limit = [...get(N), ...i32Const(Math.log2(inBytesPerElement)), ...i32Shl];
  return [
    ...(accumulate ? [...i32Const(0), ...v128Load(ACC_OFFSET), ...set(MAX)] : []),
    ...block,
    ...loop,
    ...get(I), ...limit, ...i32GeU, ...brIf(1), // i >= n·width: done
    ...step,
    ...get(I), ...i32Const(8 * inBytesPerElement), ...i32Add, ...set(I),
    ...br(0),
    ...end,
    ...end,
    ...(accumulate ? [...i32Const(0), ...get(MAX), ...v128Store(ACC_OFFSET)] : []),
  ];
}

/**
 * fp32 bits in `X` → fp16 bits (one per i32 lane) on the stack, ties to even; MAX |= max(MAX, |x| bits).
 *   a       = x & 0x7fffffff
 *   normal  = (a − 0x38000000 + 0xfff + ((a >> 13) & 1)) >> 13        rebias 127 → 15, round the 13 dropped bits
 *   sub     = bits(f32(a) + 0.5) − 0x3f000000                         |x| < 2^-14: the FPU rounds to the 2^-24 grid
 *   half    = (a < 0x38800000 ? sub : normal) | ((x >> 16) & 0x8000)
 */
const fp16Of = [
  ...get(X), ...splat32(0x7fffffff), ...v128And, ...tee(A),
  ...get(MAX), ...i32x4MaxU, ...set(MAX),
  // sub
  ...get(A), ...splat32(0x3f000000), ...f32x4Add, ...splat32(0x3f000000), ...i32x4Sub,
  // normal
  ...get(A), ...splat32(0xfff - 0x38000000), ...i32x4Add,
  ...get(A), ...i32Const(13), ...i32x4ShrU, ...splat32(1), ...v128And, ...i32x4Add,
  ...i32Const(13), ...i32x4ShrU,
  // mask
  ...get(A), ...splat32(0x38800000), ...i32x4LtU,
  ...v128Bitselect,
  ...get(X), ...i32Const(16), ...i32x4ShrU, ...splat32(0x8000), ...v128And, ...v128Or,
];

/** fp32 bits in `X` → bf16 bits (one per i32 lane): (x + 0x7fff + ((x >> 16) & 1)) >> 16; MAX as above. */
const bf16Of = [
  ...get(X), ...splat32(0x7fffffff), ...v128And, ...get(MAX), ...i32x4MaxU, ...set(MAX),
  ...get(X), ...splat32(0x7fff), ...i32x4Add,
  ...get(X), ...i32Const(16), ...i32x4ShrU, ...splat32(1), ...v128And, ...i32x4Add,
  ...i32Const(16), ...i32x4ShrU,
];

/**
 * fp16 bits in `H` (one per i32 lane) → fp32 bits on the stack:
 *   m = h & 0x7fff;  value = f32(m << 13) · 2^112  (exact: subnormal halves become normal floats)
 *   m >= 0x7c00 (Inf/NaN): (m << 13) | 0x7f800000;  then | ((h & 0x8000) << 16)
 */
const fp32OfHalf = [
  ...get(H), ...splat32(0x7fff), ...v128And, ...i32Const(13), ...i32x4Shl, ...set(A),
  ...get(A), ...splat32(0x7f800000), ...v128Or,
  ...get(A), ...splat32(0x77800000), ...f32x4Mul,
  ...get(A), ...splat32(0x7c00 << 13), ...i32x4GeU,
  ...v128Bitselect,
  ...get(H), ...splat32(0x8000), ...v128And, ...i32Const(16), ...i32x4Shl, ...v128Or,
];

/** Encode step: 8 fp32 at IN+4i → 8 halves at OUT+2i (output byte index = i/2). */
function encodeStep(convert: number[]): number[] {
  return [
    ...get(I), ...i32Const(1), ...i32ShrU, // the store address, under the value
    ...get(I), ...v128Load(IN_OFFSET), ...set(X), ...convert, ...set(LO),
    // narrow(first four, last four) keeps element order
    ...get(LO), ...get(I), ...v128Load(IN_OFFSET + 16), ...set(X), ...convert, ...i16x8NarrowI32x4U,
    ...v128Store(OUT_OFFSET),
  ];
}

/** Decode step: 8 halves (16-bit) at IN+i → 8 fp32 at OUT+2i (input byte index i, output 2i). */
function decodeStep(convert: number[]): number[] {
  const outAddr = [...get(I), ...i32Const(1), ...i32Shl];
  return [
    ...outAddr,
    ...get(I), ...v128Load(IN_OFFSET), ...set(LO),
    ...get(LO), ...i32x4ExtendLowI16x8U, ...set(H), ...convert,
    ...v128Store(OUT_OFFSET),
    ...outAddr,
    ...get(LO), ...i32x4ExtendHighI16x8U, ...set(H), ...convert,
    ...v128Store(OUT_OFFSET + 16),
  ];
}

const bf16FromHalf = [...get(H), ...i32Const(16), ...i32x4Shl];

// --- int8 (blockwise absmax): kernels of type (blocks, blockSize) → (), blockSize a multiple of 16 ----------
// Locals: 0 = blocks, 1 = blockSize (params); 2 = b (block), 3 = i (input byte index), 4 = e (block end), 5 = o;
// v128 from 6 on (the same slots as X.. shifted, see body()).
const NB = 0;
const BS = 1;
const B = 2;
const Q = 3;
const E = 4;
const O = 5;
const V0 = 6;
const V1 = 7;
const VS = 8;

/**
 * for (b = 0; b < blocks; b++) { e = i + blockSize·inWidth; head; while (i < e) { step; i += stepBytes } }
 */
function blockLoops(inWidth: number, head: number[], step: number[], stepBytes: number): number[] {
  return [
    ...block, ...loop,
    ...get(B), ...get(NB), ...i32GeU, ...brIf(1),
    ...get(Q), ...get(BS), ...i32Const(inWidth), ...i32Mul, ...i32Add, ...set(E),
    ...head,
    ...block, ...loop,
    ...get(Q), ...get(E), ...i32GeU, ...brIf(1),
    ...step,
    ...get(Q), ...i32Const(stepBytes), ...i32Add, ...set(Q),
    ...br(0), ...end, ...end,
    ...get(B), ...i32Const(1), ...i32Add, ...set(B),
    ...br(0), ...end, ...end,
  ];
}

/** Per block: the lane-wise max of |x| bits (fp32 in, 4 per step) → BLOCK_MAX + 16b. */
function int8AbsmaxBody(): number[] {
  return [
    ...block, ...loop,
    ...get(B), ...get(NB), ...i32GeU, ...brIf(1),
    ...get(Q), ...get(BS), ...i32Const(4), ...i32Mul, ...i32Add, ...set(E),
    ...simd(0x0c, ...new Array<number>(16).fill(0)), ...set(V0),
    ...block, ...loop,
    ...get(Q), ...get(E), ...i32GeU, ...brIf(1),
    ...get(V0), ...get(Q), ...v128Load(IN_OFFSET), ...splat32(0x7fffffff), ...v128And, ...i32x4MaxU, ...set(V0),
    ...get(Q), ...i32Const(16), ...i32Add, ...set(Q),
    ...br(0), ...end, ...end,
    ...get(B), ...i32Const(4), ...i32Shl, ...get(V0), ...v128Store(BLOCK_MAX_OFFSET),
    ...get(B), ...i32Const(1), ...i32Add, ...set(B),
    ...br(0), ...end, ...end,
  ];
}

/** 4 codes as i32x4 from the 4 fp32 at IN+i+off: trunc(x·inv + 128.5) − 128 in float64 (as the scalar code). */
function quad(off: number): number[] {
  const half = (o: number) => [
    ...get(Q), ...v128Load64Zero(IN_OFFSET + o), ...f64x2PromoteLowF32x4,
    ...get(VS), ...f64x2Mul, ...splatF64(128.5), ...f64x2Add, ...i32x4TruncSatF64x2SZero,
  ];
  return [...half(off), ...half(off + 8), ...joinLow2, ...splat32(128), ...i32x4Sub];
}

/** Per block: VS = splat(1/scale from BLOCK_SCALE + 8b); 16 codes per step → OUT + i/4. */
const int8Quantize = blockLoops(
  4,
  [...get(B), ...i32Const(3), ...i32Shl, ...f64Load(BLOCK_SCALE_OFFSET), ...f64x2Splat, ...set(VS)],
  [
    ...get(Q), ...i32Const(2), ...i32ShrU,
    ...quad(0), ...quad(16), ...i16x8NarrowI32x4S, ...set(V0),
    ...get(V0), ...quad(32), ...quad(48), ...i16x8NarrowI32x4S, ...i8x16NarrowI16x8S,
    ...v128Store(OUT_OFFSET),
  ],
  64,
);

/** Per block: VS = splat(scale from BLOCK_SCALE + 4b); 16 codes at IN+i → 16 fp32 q·s at OUT + 4i. */
const int8Dequantize = blockLoops(
  1,
  [...get(B), ...i32Const(2), ...i32Shl, ...f32Load(BLOCK_SCALE_OFFSET), ...f32x4Splat, ...set(VS)],
  [
    ...get(Q), ...i32Const(2), ...i32Shl, ...set(O),
    ...get(Q), ...v128Load(IN_OFFSET), ...set(V0),
    ...get(V0), ...i16x8ExtendLowI8x16S, ...set(V1),
    ...get(O), ...get(V1), ...i32x4ExtendLowI16x8S, ...f32x4ConvertI32x4S, ...get(VS), ...f32x4Mul, ...v128Store(OUT_OFFSET),
    ...get(O), ...get(V1), ...i32x4ExtendHighI16x8S, ...f32x4ConvertI32x4S, ...get(VS), ...f32x4Mul, ...v128Store(OUT_OFFSET + 16),
    ...get(V0), ...i16x8ExtendHighI8x16S, ...set(V1),
    ...get(O), ...get(V1), ...i32x4ExtendLowI16x8S, ...f32x4ConvertI32x4S, ...get(VS), ...f32x4Mul, ...v128Store(OUT_OFFSET + 32),
    ...get(O), ...get(V1), ...i32x4ExtendHighI16x8S, ...f32x4ConvertI32x4S, ...get(VS), ...f32x4Mul, ...v128Store(OUT_OFFSET + 48),
  ],
  16,
);

function int8Body(code: number[]): number[] {
  const locals = vec([
    [...uleb(4), 0x7f], // b, i, e, o: i32
    [...uleb(3), 0x7b], // V0, V1, VS: v128
  ]);
  const fn = [...locals, ...code, ...end];
  return [...uleb(fn.length), ...fn];
}

function body(code: number[]): number[] {
  const locals = vec([
    [...uleb(1), 0x7f], // i: i32
    [...uleb(5), 0x7b], // X, A, MAX, LO, H: v128
  ]);
  const fn = [...locals, ...code, ...end];
  return [...uleb(fn.length), ...fn];
}

const KERNELS = ['fp16Encode', 'fp16Decode', 'bf16Encode', 'bf16Decode', 'int8Absmax', 'int8Quantize', 'int8Dequantize'] as const;

/** The kernels' WebAssembly module bytes. */
export function assemble(): Uint8Array {
  const bodies = [
    body(loopBody(4, encodeStep(fp16Of), true)),
    body(loopBody(2, decodeStep(fp32OfHalf), false)),
    body(loopBody(4, encodeStep(bf16Of), true)),
    body(loopBody(2, decodeStep(bf16FromHalf), false)),
    int8Body(int8AbsmaxBody()),
    int8Body(int8Quantize),
    int8Body(int8Dequantize),
  ];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    // type 0: (i32) → (); type 1: (i32, i32) → ()
    ...section(1, vec([[0x60, ...vec([[0x7f]]), ...vec([])], [0x60, ...vec([[0x7f], [0x7f]]), ...vec([])]])),
    ...section(3, vec(KERNELS.map((k) => [k.startsWith('int8') ? 1 : 0]))),
    ...section(5, vec([[0x00, ...uleb(MEMORY_PAGES)]])), // one memory, min pages, no max
    ...section(7, vec([[...ascii('mem'), 0x02, 0], ...KERNELS.map((k, i) => [...ascii(k), 0x00, i])])),
    ...section(10, vec(bodies)),
  ];
  return Uint8Array.from(bytes);
}

/** The kernels, each streaming one chunk (elements a multiple of 8) from IN to OUT of {@link SimdKernels.bytes}. */
export interface SimdKernels {
  readonly bytes: Uint8Array;
  readonly inOffset: number;
  readonly outOffset: number;
  /** The running max of |x| bits (4 lanes, unsigned) of the encode kernels; zero it before a tensor. */
  readonly acc: Uint32Array;
  readonly fp16Encode: (n: number) => void;
  readonly fp16Decode: (n: number) => void;
  readonly bf16Encode: (n: number) => void;
  readonly bf16Decode: (n: number) => void;
  /** int8: lane maxima of |x| bits per block (4 per block), written by int8Absmax. */
  readonly blockMax: Uint32Array;
  /** int8: 1/scale per block, read by int8Quantize. */
  readonly blockInv: Float64Array;
  /** int8: scale per block, read by int8Dequantize. */
  readonly blockScale: Float32Array;
  /** Blocks of fp32 at IN → per-block lane maxima (blocks·blockSize <= CHUNK_ELEMENTS, blockSize % 16 = 0). */
  readonly int8Absmax: (blocks: number, blockSize: number) => void;
  /** Blocks of fp32 at IN → int8 codes at OUT, with blockInv. */
  readonly int8Quantize: (blocks: number, blockSize: number) => void;
  /** Blocks of int8 codes at IN → fp32 at OUT, with blockScale. */
  readonly int8Dequantize: (blocks: number, blockSize: number) => void;
}

/** The part of the WebAssembly API used here (this project's TypeScript libs do not declare it). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}

let instance: SimdKernels | null | undefined;

/** The SIMD kernels, or undefined where WebAssembly SIMD is unavailable (or SWARMTUNE_NO_SIMD=1 is set). */
export function simdKernels(): SimdKernels | undefined {
  if (instance === undefined) {
    instance = null;
    const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
    try {
      const bytes = assemble();
      if (process.env.SWARMTUNE_NO_SIMD !== '1' && wasm !== undefined && wasm.validate(bytes)) {
        const exports = new wasm.Instance(new wasm.Module(bytes)).exports;
        const memory = exports.mem as { buffer: ArrayBuffer };
        instance = {
          bytes: new Uint8Array(memory.buffer),
          inOffset: IN_OFFSET,
          outOffset: OUT_OFFSET,
          acc: new Uint32Array(memory.buffer, ACC_OFFSET, 4),
          fp16Encode: exports.fp16Encode as (n: number) => void,
          fp16Decode: exports.fp16Decode as (n: number) => void,
          bf16Encode: exports.bf16Encode as (n: number) => void,
          bf16Decode: exports.bf16Decode as (n: number) => void,
          blockMax: new Uint32Array(memory.buffer, BLOCK_MAX_OFFSET, 4 * MAX_INT8_BLOCKS),
          blockInv: new Float64Array(memory.buffer, BLOCK_SCALE_OFFSET, MAX_INT8_BLOCKS),
          blockScale: new Float32Array(memory.buffer, BLOCK_SCALE_OFFSET, MAX_INT8_BLOCKS),
          int8Absmax: exports.int8Absmax as (blocks: number, blockSize: number) => void,
          int8Quantize: exports.int8Quantize as (blocks: number, blockSize: number) => void,
          int8Dequantize: exports.int8Dequantize as (blocks: number, blockSize: number) => void,
        };
      }
    } catch {
      instance = null; // no WebAssembly SIMD here: the scalar code serves
    }
  }
  return instance ?? undefined;
}

/**
 * Streams `n` fp32 values (the bytes `src`) through an encode kernel into `dst` (2n bytes).
 * @returns the largest |x| bit pattern seen (unsigned), for the caller's range check.
 */
export function encodeHalves(k: SimdKernels, kernel: (n: number) => void, src: Uint8Array, dst: Uint8Array, n: number): number {
  const mem = k.bytes;
  k.acc.fill(0);
  for (let start = 0; start < n; start += CHUNK_ELEMENTS) {
    const count = Math.min(CHUNK_ELEMENTS, n - start);
    const padded = (count + 7) & ~7;
    mem.set(src.subarray(start * 4, (start + count) * 4), k.inOffset);
    // Zeros in the padding: stale bytes there must not reach the range check.
    if (padded !== count) mem.fill(0, k.inOffset + count * 4, k.inOffset + padded * 4);
    kernel(padded);
    dst.set(mem.subarray(k.outOffset, k.outOffset + count * 2), start * 2);
  }
  const a = k.acc;
  return Math.max(a[0], a[1], a[2], a[3]);
}

/** Streams `n` 16-bit values (the bytes `src`) through a decode kernel into `dst` (4n bytes). */
export function decodeHalves(k: SimdKernels, kernel: (n: number) => void, src: Uint8Array, dst: Uint8Array, n: number): void {
  const mem = k.bytes;
  for (let start = 0; start < n; start += CHUNK_ELEMENTS) {
    const count = Math.min(CHUNK_ELEMENTS, n - start);
    mem.set(src.subarray(start * 2, (start + count) * 2), k.inOffset);
    kernel((count + 7) & ~7);
    dst.set(mem.subarray(k.outOffset, k.outOffset + count * 4), start * 4);
  }
}
