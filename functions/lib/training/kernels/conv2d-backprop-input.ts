/**
 * Conv2DBackpropInput for wasm. The stock kernel is a naive loop; the input
 * gradient is a stride-1 convolution of the output gradient (zero-stuffed
 * between rows and columns when the forward stride is larger) with the filter
 * flipped in space and its channel axes swapped, so the stock XNNPACK Conv2D
 * does the work. Measured at batch 128 (scripts/bench-kernels.ts), 3×3
 * filters: 26×26×32→24×24×64 1760 → 136 ms, 13×13×32→11×11×64 293 → 46 ms;
 * with stride 2, where three in four multiplications hit stuffed zeros,
 * 26×26×32→12×12×64 395 → 140 ms.
 */
import { backend_util } from '@tensorflow/tfjs-core';
import type { Conv2DBackpropInputAttrs, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { replaceKernel, stockKernel, withScratch, type Scratch } from './kernel-utils.ts';

interface Helpers {
  conv2d: KernelConfig;
  transpose: KernelConfig;
  reverse: KernelConfig;
  reshape: KernelConfig;
  pad: KernelConfig;
  slice: KernelConfig;
}

/** [N,Ho,Wo,C] → [N,Ho·sh,Wo·sw,C] with each value followed by sh−1 rows and sw−1 columns of zeros. */
function stuffZeros(s: Scratch, h: Helpers, dy: TensorInfo, sh: number, sw: number): TensorInfo {
  if (sh === 1 && sw === 1) return dy;
  const [n, ho, wo, c] = dy.shape;
  const spread = s.run(h.reshape, { x: dy }, { shape: [n, ho, 1, wo, 1, c] });
  const paddings = [
    [0, 0],
    [0, 0],
    [0, sh - 1],
    [0, 0],
    [0, sw - 1],
    [0, 0],
  ];
  const padded = s.run(h.pad, { x: spread }, { paddings, constantValue: 0 });
  return s.run(h.reshape, { x: padded }, { shape: [n, ho * sh, wo * sw, c] });
}

/** Cuts rows/columns off `x` [N,H,W,C] where a pad amount is negative; returns the pads left to apply. */
function cropNegative(s: Scratch, h: Helpers, x: TensorInfo, pads: [number, number, number, number]) {
  const [top, bottom, left, right] = pads;
  const cut = pads.map((p) => Math.max(-p, 0));
  let out = x;
  if (cut.some((amount) => amount > 0)) {
    const [n, height, width, c] = x.shape;
    out = s.run(
      h.slice,
      { x },
      { begin: [0, cut[0], cut[2], 0], size: [n, height - cut[0] - cut[1], width - cut[2] - cut[3], c] },
    );
  }
  const keep = (p: number) => Math.max(p, 0);
  return {
    x: out,
    pad: [
      [0, 0],
      [keep(top), keep(bottom)],
      [keep(left), keep(right)],
      [0, 0],
    ],
  };
}

function backpropInput(stock: KernelConfig, h: Helpers): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs = {} } = args;
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const attr = attrs as unknown as Conv2DBackpropInputAttrs;
    if (attr.dataFormat !== 'NHWC') return stock.kernelFunc(args);
    const info = backend_util.computeConv2DInfo(
      attr.inputShape,
      filter.shape as [number, number, number, number],
      attr.strides,
      1,
      attr.pad,
      attr.dimRoundingMode,
    );
    const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw, inHeight, inWidth } = info;
    const top = fh - 1 - info.padInfo.top;
    const left = fw - 1 - info.padInfo.left;

    return withScratch(backend, (s) => {
      const stuffed = stuffZeros(s, h, dy, sh, sw);
      const bottom = inHeight + fh - 1 - top - stuffed.shape[1];
      const right = inWidth + fw - 1 - left - stuffed.shape[2];
      const { x, pad } = cropNegative(s, h, stuffed, [top, bottom, left, right]);
      const flipped = s.run(h.reverse, { x: filter }, { dims: [0, 1] });
      const swapped = s.run(h.transpose, { x: flipped }, { perm: [0, 1, 3, 2] });
      return s.run(h.conv2d, { x, filter: swapped }, { strides: [1, 1], dilations: [1, 1], pad, dataFormat: 'NHWC' });
    });
  };
}

export function registerConv2DBackpropInput(): void {
  const helpers: Helpers = {
    conv2d: stockKernel('Conv2D'),
    transpose: stockKernel('Transpose'),
    reverse: stockKernel('Reverse'),
    reshape: stockKernel('Reshape'),
    pad: stockKernel('PadV2'),
    slice: stockKernel('Slice'),
  };
  replaceKernel('Conv2DBackpropInput', (stock) => backpropInput(stock, helpers));
}
