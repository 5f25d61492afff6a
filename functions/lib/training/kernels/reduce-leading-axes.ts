/**
 * Sum and Mean over leading axes for wasm, e.g. a convolution's bias gradient
 * (sum of [N,H,W,C] over N, H and W) or batch-norm moments. The stock kernels
 * first transpose the reduced axes to the end: at a Keras convnet's first
 * layer (batch 128, 26×26×32) that bias gradient took 20–35 ms, about as
 * long as the layer's filter gradient; summing rows in place on the wasm heap
 * takes ~7 ms. Accumulates in float64, like the cpu backend.
 */
import { util } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { replaceKernel, withScratch } from './kernel-utils.ts';

/** How many leading axes `axes` reduces, or 0 when it is not a leading block short of the last axis. */
function leadingCount(axes: number[], rank: number): number {
  const sorted = [...new Set(axes)].sort((a, b) => a - b);
  const leading = sorted.every((axis, i) => axis === i);
  return leading && sorted.length < rank ? sorted.length : 0;
}

function reduceLeading(stock: KernelConfig, mean: boolean): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs = {} } = args;
    const x = inputs.x as TensorInfo;
    const axes = util.parseAxisParam(attrs.axis as number | number[], x.shape);
    const count = leadingCount(axes, x.shape.length);
    if (count === 0 || x.dtype !== 'float32') return stock.kernelFunc(args);

    const rows = util.sizeFromShape(x.shape.slice(0, count));
    const width = util.sizeFromShape(x.shape.slice(count));
    const outShape = attrs.keepDims === true ? x.shape.map((size, i) => (i < count ? 1 : size)) : x.shape.slice(count);
    return withScratch(backend, (s) => {
      const out = s.alloc(outShape);
      const values = s.view(x);
      const totals = new Float64Array(width);
      let row = 0;
      let at = 0;
      // Four rows a pass: a quarter of the updates to `totals`, ~2.5× faster.
      for (; row + 4 <= rows; row += 4, at += 4 * width) {
        for (let i = 0; i < width; i++) {
          totals[i] +=
            values[at + i] + values[at + width + i] + values[at + 2 * width + i] + values[at + 3 * width + i];
        }
      }
      for (; row < rows; row++, at += width) {
        for (let i = 0; i < width; i++) totals[i] += values[at + i];
      }
      const scale = mean ? 1 / rows : 1;
      s.view(out).set(totals.map((total) => total * scale));
      return out;
    });
  };
}

export function registerLeadingReductions(): void {
  replaceKernel('Sum', (stock) => reduceLeading(stock, false));
  replaceKernel('Mean', (stock) => reduceLeading(stock, true));
}
