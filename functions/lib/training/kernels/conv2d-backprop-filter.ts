/**
 * Conv2DBackpropFilter for wasm, which has none, so without this no
 * convolution can train there. The filter gradient is itself a convolution:
 * with the batch and channel axes swapped, the input [Cin,H,W,N] convolved
 * with the output gradient [Ho,Wo,N,Cout] as its filter (dilated by the
 * forward stride) gives [Cin,fh,fw,Cout], so the stock XNNPACK Conv2D does the
 * work. Measured at batch 128 with 3×3 filters (scripts/bench-kernels.ts):
 * 13×13×32→11×11×64 38 ms, against 25 ms for the forward convolution;
 * 26×26×32→24×24×64 311 ms against 131 ms, as XNNPACK repacks the 4.7M-value
 * gradient "filter" on every call and runs a 24×24 window less efficiently.
 * Writing the input's patches out in JavaScript and taking one matrix
 * product instead was measured too: 1.2× faster with one input channel,
 * slower from three, so not worth a second path.
 */
import { backend_util } from '@tensorflow/tfjs-core';
import type { Conv2DBackpropFilterAttrs, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { addKernel, stockKernel, withScratch, type Scratch } from './kernel-utils.ts';

interface Helpers {
  conv2d: KernelConfig;
  transpose: KernelConfig;
  slice: KernelConfig;
}

function filterGradient(
  s: Scratch,
  h: Helpers,
  x: TensorInfo,
  dy: TensorInfo,
  info: backend_util.Conv2DInfo,
): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, filterHeight, filterWidth, outHeight, outWidth } = info;
  const { top, left } = info.padInfo;
  // Padding after the input that makes the dilated output-gradient "filter"
  // produce exactly fh×fw; negative when strides skip the trailing rows or
  // columns, which are then cut off instead.
  const bottom = (outHeight - 1) * info.strideHeight + filterHeight - top - inHeight;
  const right = (outWidth - 1) * info.strideWidth + filterWidth - left - inWidth;
  let input = x;
  if (bottom < 0 || right < 0) {
    const size = [batchSize, inHeight + Math.min(bottom, 0), inWidth + Math.min(right, 0), inChannels];
    input = s.run(h.slice, { x }, { begin: [0, 0, 0, 0], size });
  }
  const channelsAsBatch = s.run(h.transpose, { x: input }, { perm: [3, 1, 2, 0] });
  const gradAsFilter = s.run(h.transpose, { x: dy }, { perm: [1, 2, 0, 3] });
  const grad = s.run(
    h.conv2d,
    { x: channelsAsBatch, filter: gradAsFilter },
    {
      strides: [1, 1],
      dilations: [info.strideHeight, info.strideWidth],
      pad: [
        [0, 0],
        [top, Math.max(bottom, 0)],
        [left, Math.max(right, 0)],
        [0, 0],
      ],
      dataFormat: 'NHWC',
    },
  );
  return s.run(h.transpose, { x: grad }, { perm: [1, 2, 0, 3] });
}

function backpropFilter(h: Helpers): KernelFunc {
  return ({ inputs, backend, attrs = {} }) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const attr = attrs as unknown as Conv2DBackpropFilterAttrs;
    if (attr.dataFormat !== 'NHWC')
      throw new Error(`wasm Conv2DBackpropFilter supports NHWC only, got ${attr.dataFormat}`);
    const info = backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      attr.filterShape,
      attr.strides,
      1,
      attr.pad,
      attr.dimRoundingMode,
    );
    return withScratch(backend, (s) => filterGradient(s, h, x, dy, info));
  };
}

export function registerConv2DBackpropFilter(): void {
  addKernel(
    'Conv2DBackpropFilter',
    backpropFilter({
      conv2d: stockKernel('Conv2D'),
      transpose: stockKernel('Transpose'),
      slice: stockKernel('Slice'),
    }),
  );
}
