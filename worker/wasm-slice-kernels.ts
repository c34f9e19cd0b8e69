/**
 * Replacement `Slice`, `Unpack` and `SplitV` kernels for the wasm backend.
 *
 * Why: `@tensorflow/tfjs-backend-wasm` 4.22's Slice kernel reads its input with `backend.readSync`, which COPIES THE
 * WHOLE INPUT out of the WebAssembly heap on every call; `Unpack` (`tf.unstack`) and `SplitV` (`tf.split`) call it
 * once per output. Unstacking attention scores `[64, 128, 128]` into 64 matrices therefore copied 64 × 4 MiB and
 * took 196 ms where the data moved is 4 MiB (measured here; after this fix: about 1 ms). These kernels read the
 * input through a view of the heap (as the backend's own Concat and Identity kernels do) and copy only the slice.
 *
 * Installed by `selectBackend` when it picks wasm; uses only `@tensorflow/tfjs` kernel registration, so this file
 * does not import a backend package.
 */
import * as tf from '@tensorflow/tfjs';

/** The part of the wasm backend these kernels use (internal API of tfjs-backend-wasm 4.x). */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

type KernelArgs = { inputs: Record<string, tf.TensorInfo>; backend: unknown; attrs?: Record<string, unknown> };

function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

/** Copy `x[begin : begin + size]` into a new tensor, reading only the bytes of the slice. */
function sliceFromHeap(backend: WasmBackendLike, x: tf.TensorInfo, begin: readonly number[], size: readonly number[]): tf.TensorInfo {
  // makeOutput may grow the heap, which detaches earlier views: take the views after it.
  const out = backend.makeOutput([...size], x.dtype);
  const numel = size.reduce((a, b) => a * b, 1);
  if (numel === 0) return out;
  const xVals = backend.typedArrayFromHeap(x);
  const outVals = backend.typedArrayFromHeap(out);
  const rank = x.shape.length;
  if (rank === 0) {
    outVals.set(xVals);
    return out;
  }
  const xStrides = stridesOf(x.shape);
  // The innermost run that is contiguous in x: trailing axes taken whole, plus the first partial one.
  let inner = rank - 1;
  while (inner > 0 && size[inner] === x.shape[inner] && begin[inner] === 0) inner--;
  const runLength = size.slice(inner).reduce((a, b) => a * b, 1);
  const numRuns = numel / runLength;
  const index = new Array<number>(inner).fill(0);
  for (let run = 0; run < numRuns; run++) {
    let offset = begin[inner] * xStrides[inner];
    for (let d = 0; d < inner; d++) offset += (begin[d] + index[d]) * xStrides[d];
    outVals.set(xVals.subarray(offset, offset + runLength), run * runLength);
    for (let d = inner - 1; d >= 0; d--) {
      if (++index[d] < size[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

function normaliseSlice(x: tf.TensorInfo, begin: number | number[], size: number | number[] | undefined): [number[], number[]] {
  const rank = x.shape.length;
  const b = typeof begin === 'number' ? [begin, ...new Array<number>(rank - 1).fill(0)] : [...begin];
  while (b.length < rank) b.push(0);
  const s = size === undefined ? new Array<number>(rank).fill(-1) : typeof size === 'number' ? [size, ...new Array<number>(rank - 1).fill(-1)] : [...size];
  while (s.length < rank) s.push(-1);
  return [b, s.map((v, i) => (v === -1 ? x.shape[i] - b[i] : v))];
}

let installed = false;

/**
 * Register the heap-view Slice, Unpack and SplitV kernels for the `wasm` backend (idempotent). String tensors keep
 * the original kernels.
 */
export function installWasmSliceKernels(): void {
  if (installed) return;
  const original = {
    Slice: tf.getKernel('Slice', 'wasm'),
    Unpack: tf.getKernel('Unpack', 'wasm'),
    SplitV: tf.getKernel('SplitV', 'wasm'),
  };
  if (!original.Slice || !original.Unpack || !original.SplitV) return;

  const replace = (name: keyof typeof original, kernelFunc: (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[]): void => {
    const config = original[name] as tf.KernelConfig;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ ...config, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  };

  replace('Slice', (args) => {
    const { x } = args.inputs;
    if (x.dtype === 'string') return (original.Slice as tf.KernelConfig).kernelFunc(args as never) as tf.TensorInfo;
    const attrs = args.attrs as { begin: number | number[]; size?: number | number[] };
    const [begin, size] = normaliseSlice(x, attrs.begin, attrs.size);
    return sliceFromHeap(args.backend as WasmBackendLike, x, begin, size);
  });

  replace('Unpack', (args) => {
    const { value } = args.inputs;
    if (value.dtype === 'string') return (original.Unpack as tf.KernelConfig).kernelFunc(args as never) as tf.TensorInfo[];
    let axis = (args.attrs as { axis: number }).axis;
    if (axis < 0) axis += value.shape.length;
    const outShape = value.shape.filter((_, i) => i !== axis);
    const size = [...value.shape];
    size[axis] = 1;
    const outs: tf.TensorInfo[] = [];
    for (let i = 0; i < value.shape[axis]; i++) {
      const begin = new Array<number>(value.shape.length).fill(0);
      begin[axis] = i;
      const out = sliceFromHeap(args.backend as WasmBackendLike, value, begin, size);
      outs.push({ dataId: out.dataId, dtype: out.dtype, shape: outShape });
    }
    return outs;
  });

  replace('SplitV', (args) => {
    const { x } = args.inputs;
    if (x.dtype === 'string') return (original.SplitV as tf.KernelConfig).kernelFunc(args as never) as tf.TensorInfo[];
    const attrs = args.attrs as { numOrSizeSplits: number | number[]; axis: number | number[] };
    const axis = tf.util.parseAxisParam(attrs.axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, attrs.numOrSizeSplits, axis);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((s) => {
      const size = [...x.shape];
      size[axis] = s;
      const out = sliceFromHeap(args.backend as WasmBackendLike, x, begin, size);
      begin[axis] += s;
      return out;
    });
  });
  installed = true;
}
