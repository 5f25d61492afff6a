/**
 * BatchMatMul and _FusedMatMul for wasm. Single float32 products whose rows
 * and columns fit its blocks (no bias or activation, as the Dense layers'
 * products are while training) run in the project's own SIMD loop
 * (gemm.ts), which needs neither XNNPACK's per-tensor packing of B nor a
 * Transpose for a transposed operand. Everything else is rearranged into the one
 * case the stock kernels hand to XNNPACK: a single [M,K]·[K,N] product with
 * no transposes; the stock kernels run all other cases (transposeA,
 * transposeB, more than one matrix in the batch) in a naive loop, and a
 * Dense layer's backward pass asks for aᵀ·dy and dy·bᵀ on every step.
 * Measured (`npm run bench -- kernels`, node 20, SIMD wasm, one thread, the
 * other core busy), stock → project: [128,784]ᵀ·[128,256] 56 → 3.2 ms,
 * [128,256]·[784,256]ᵀ 41 → 2.5 ms, [128,784]·[784,256] with new weights
 * 4.8 → 3.2 ms, a batch of four [128,784]·[784,256] 225 → 18 ms.
 */
import { backend_util, util } from '@tensorflow/tfjs-core';
import type { _FusedMatMulInputs, KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { COLS, PANEL_FLOATS, ROWS, gemmFor } from './gemm.ts';
import { replaceKernel, stockKernel, withScratch, type Scratch } from './kernel-utils.ts';
import { heapOffset } from './wasm-module.ts';

/**
 * Below this many multiply-adds per matrix, a call per matrix costs more in
 * setup than the stock loop loses (measured break-even near 32×32×32), so
 * batches of small matrices stay in that loop.
 */
const LOOP_MIN_MACS = 1 << 14;

interface Helpers {
  transpose: KernelConfig;
  reshape: KernelConfig;
}

/** `x` as [batch, rows, cols], transposed in its last two axes when asked. */
function asBatch(s: Scratch, h: Helpers, x: TensorInfo, batch: number, transposed: boolean): TensorInfo {
  const [rows, cols] = x.shape.slice(-2);
  const x3 = s.run(h.reshape, { x }, { shape: [batch, rows, cols] });
  return transposed ? s.run(h.transpose, { x: x3 }, { perm: [0, 2, 1] }) : x3;
}

/**
 * Matrix `i` of a [batch, rows, cols] tensor as [1, rows, cols]. A heap copy:
 * the stock Slice kernel reads the whole source tensor out of the heap first.
 */
function matrixAt(s: Scratch, x3: TensorInfo, i: number): TensorInfo {
  const [, rows, cols] = x3.shape;
  const out = s.alloc([1, rows, cols]);
  s.view(out).set(s.view(x3).subarray(i * rows * cols, (i + 1) * rows * cols));
  return out;
}

interface Dims {
  m: number;
  k: number;
  n: number;
}

/** The product's sizes when gemm.ts can run it: float32, and M and N multiples of its block. */
function ownDims(a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): Dims | undefined {
  const [rowsA, colsA] = a.shape.slice(-2);
  const [rowsB, colsB] = b.shape.slice(-2);
  const dims = { m: transposeA ? colsA! : rowsA!, k: transposeA ? rowsA! : colsA!, n: transposeB ? rowsB! : colsB! };
  const fits =
    a.dtype === 'float32' && b.dtype === 'float32' && dims.m % ROWS === 0 && dims.n % COLS === 0 && dims.k > 0;
  return fits ? dims : undefined;
}

function ownProduct(
  s: Scratch,
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  { m, k, n }: Dims,
  outShape: number[],
): TensorInfo {
  const out = s.alloc(outShape);
  const panel = s.alloc([k * PANEL_FLOATS]);
  const backend = s.backend;
  const at = (info: TensorInfo) => heapOffset(backend, info.dataId);
  gemmFor(backend, transposeB)(
    at(a),
    at(b),
    at(out),
    at(panel),
    m,
    n,
    k,
    transposeA ? 4 : k * 4,
    transposeA ? m * 4 : 4,
  );
  return out;
}

function product(stock: KernelConfig, h: Helpers): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs = {} } = args;
    const { a, b, ...extra } = inputs as _FusedMatMulInputs;
    const transposeA = attrs.transposeA === true;
    const transposeB = attrs.transposeB === true;
    const outerA = a.shape.slice(0, -2);
    const outerB = b.shape.slice(0, -2);
    const batchA = util.sizeFromShape(outerA);
    const batchB = util.sizeFromShape(outerB);
    const batch = Math.max(batchA, batchB);
    const plain =
      extra.bias === undefined &&
      extra.preluActivationWeights === undefined &&
      (attrs.activation ?? 'linear') === 'linear';
    const dims = batch === 1 && plain ? ownDims(a, b, transposeA, transposeB) : undefined;
    if (dims !== undefined) {
      const outShape = [...backend_util.assertAndGetBroadcastShape(outerA, outerB), dims.m, dims.n];
      return withScratch(backend, (s) => ownProduct(s, a, b, transposeA, transposeB, dims, outShape));
    }
    const broadcastable = batchA === 1 || batchB === 1 || util.arraysEqual(outerA, outerB);
    // Per-matrix PReLU weights would have to be split along with the batch; no
    // layer in this project uses them, so such products keep the stock path.
    const splittable = batch === 1 || extra.preluActivationWeights === undefined;
    if ((!transposeA && !transposeB && batch === 1) || !broadcastable || !splittable) return stock.kernelFunc(args);

    const outShape = [
      ...backend_util.assertAndGetBroadcastShape(outerA, outerB),
      transposeA ? a.shape[a.shape.length - 1] : a.shape[a.shape.length - 2],
      transposeB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1],
    ];
    const plainAttrs: NamedAttrMap = { ...attrs, transposeA: false, transposeB: false };
    const multiply = (s: Scratch, x: TensorInfo, y: TensorInfo): TensorInfo =>
      s.run(stock, { ...extra, a: x, b: y }, plainAttrs);

    return withScratch(backend, (s) => {
      const a3 = asBatch(s, h, a, batchA, transposeA);
      const b3 = asBatch(s, h, b, batchB, transposeB);
      const [, m, k] = a3.shape;
      const n = b3.shape[2];
      if (batchB === 1) {
        // One shared right operand: stacking the left matrices is one taller product.
        const tall = s.run(h.reshape, { x: a3 }, { shape: [1, batchA * m, k] });
        return s.run(h.reshape, { x: multiply(s, tall, b3) }, { shape: outShape });
      }
      if (m * k * n < LOOP_MIN_MACS) {
        return s.run(h.reshape, { x: multiply(s, a3, b3) }, { shape: outShape });
      }
      const out = s.alloc([batch, m, n]);
      for (let i = 0; i < batch; i++) {
        const ai = batchA === 1 ? a3 : matrixAt(s, a3, i);
        const bi = matrixAt(s, b3, i);
        const ci = multiply(s, ai, bi);
        s.view(out).set(s.view(ci), i * m * n);
        for (const t of [ai, bi, ci]) if (t !== a3) s.free(t);
      }
      return s.run(h.reshape, { x: out }, { shape: outShape });
    });
  };
}

export function registerMatMulKernels(): void {
  const helpers: Helpers = {
    transpose: stockKernel('Transpose'),
    reshape: stockKernel('Reshape'),
  };
  replaceKernel('BatchMatMul', (stock) => product(stock, helpers));
  replaceKernel('_FusedMatMul', (stock) => product(stock, helpers));
}
