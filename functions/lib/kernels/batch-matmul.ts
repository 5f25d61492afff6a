/**
 * BatchMatMul and _FusedMatMul for wasm, rearranged into the one case the stock
 * kernels hand to XNNPACK: a single [M,K]·[K,N] product with no transposes.
 * Everything else (transposeA, transposeB, more than one matrix in the batch)
 * runs in a naive loop there. A Dense layer's backward pass asks for
 * aᵀ·dy and dy·bᵀ on every step. Measured (scripts/bench-kernels.ts, node 20,
 * SIMD wasm, one thread): [128,784]ᵀ·[128,256] 51 → 3.2 ms,
 * [128,256]·[784,256]ᵀ 29 → 3.9 ms, a batch of four [128,784]·[784,256]
 * 222 → 17 ms; one MLP training step (batch 128) 104 → 31 ms.
 */
import { backend_util, util } from '@tensorflow/tfjs-core';
import type { _FusedMatMulInputs, KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { replaceKernel, stockKernel, withScratch, type Scratch } from './kernel-utils.ts';

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
