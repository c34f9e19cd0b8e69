/**
 * A tiny WebAssembly assembler (internal to shared/codecs/): LEB128, sections, and the core and SIMD opcodes the
 * codec kernels in simd-kernels.ts use, each named as in the WebAssembly text format. Opcode numbers follow the
 * WebAssembly 2.0 binary format (SIMD: prefix 0xfd, then the LEB128 opcode).
 */
/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128. */
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

export const ascii = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
export const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
export const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];

// Core opcodes.
export const block = [0x02, 0x40]; // block (no result)
export const loop = [0x03, 0x40]; // loop (no result)
export const end = [0x0b];
export const br = (depth: number) => [0x0c, ...uleb(depth)];
export const brIf = (depth: number) => [0x0d, ...uleb(depth)];
export const get = (local: number) => [0x20, ...uleb(local)];
export const set = (local: number) => [0x21, ...uleb(local)];
export const tee = (local: number) => [0x22, ...uleb(local)];
export const i32Const = (v: number) => [0x41, ...sleb(v | 0)];
export const i32Add = [0x6a];
export const i32Shl = [0x74];
export const i32ShrU = [0x76];
export const i32GeU = [0x4f];

// SIMD opcodes: prefix 0xfd, then the LEB128 opcode (and immediates).
export const simd = (op: number, ...imm: number[]) => [0xfd, ...uleb(op), ...imm];
/** v128.load with a 16-byte alignment hint and a constant byte offset. */
export const v128Load = (offset: number) => simd(0x00, 4, ...uleb(offset));
export const v128Store = (offset: number) => simd(0x0b, 4, ...uleb(offset));
/** A constant i32x4 with the same 32-bit value in every lane (v128.const: cheaper in a loop than a splat). */
export const splat32 = (v: number) => {
  const lane = [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
  return simd(0x0c, ...lane, ...lane, ...lane, ...lane);
};
export const v128And = simd(0x4e);
export const v128Or = simd(0x50);
export const v128Bitselect = simd(0x52); // (a, b, mask) → a where mask bits are 1, else b
export const i32x4LtU = simd(0x3a);
export const i32x4GeU = simd(0x40);
export const i16x8NarrowI32x4U = simd(0x86); // two i32x4 → one i16x8, saturating to 0..65535
export const i32x4ExtendLowI16x8U = simd(0xa9);
export const i32x4ExtendHighI16x8U = simd(0xaa);
export const i32x4Shl = simd(0xab); // (v, count:i32)
export const i32x4ShrU = simd(0xad);
export const i32x4Add = simd(0xae);
export const i32x4Sub = simd(0xb1);
export const i32x4MaxU = simd(0xb9);
export const f32x4Add = simd(0xe4);
export const f32x4Mul = simd(0xe6);

// int8 kernels.
export const f64Load = (offset: number) => [0x2b, 3, ...uleb(offset)];
export const f32Load = (offset: number) => [0x2a, 2, ...uleb(offset)];
export const i32Mul = [0x6c];
export const v128Load64Zero = (offset: number) => simd(0x5d, 3, ...uleb(offset));
export const f32x4Splat = simd(0x13);
export const f64x2Splat = simd(0x14);
export const f64x2PromoteLowF32x4 = simd(0x5f);
export const f64x2Add = simd(0xf0);
export const f64x2Mul = simd(0xf2);
export const i32x4TruncSatF64x2SZero = simd(0xfc);
export const i8x16NarrowI16x8S = simd(0x65);
export const i16x8NarrowI32x4S = simd(0x85);
export const i16x8ExtendLowI8x16S = simd(0x87);
export const i16x8ExtendHighI8x16S = simd(0x88);
export const i32x4ExtendLowI16x8S = simd(0xa7);
export const i32x4ExtendHighI16x8S = simd(0xa8);
export const f32x4ConvertI32x4S = simd(0xfa);
/** Lanes 0-1 of a, then lanes 0-1 of b (i32x4). */
export const joinLow2 = simd(0x0d, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
export const f64Bytes = (v: number) => Array.from(new Uint8Array(Float64Array.of(v).buffer));
export const splatF64 = (v: number) => simd(0x0c, ...f64Bytes(v), ...f64Bytes(v));
