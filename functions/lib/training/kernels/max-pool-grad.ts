/**
 * MaxPoolGrad for wasm. The stock kernel takes 158 ms at a Keras convnet's
 * pool (batch 128, 24×24×64, 2×2 stride 2) and, on ties, does not route the
 * gradient as the cpu backend does. One pass over the wasm heap in JavaScript
 * that finds each window's first maximum (row-major, as on cpu) and adds its
 * output gradient there takes 35 ms. Building the mask from wasm ops instead
 * is far slower: a broadcasting Equal of the input against the upsampled
 * maximum alone takes ~900 ms at that shape.
 */
import { backend_util } from '@tensorflow/tfjs-core';
import type { KernelFunc, MaxPoolGradAttrs, TensorInfo } from '@tensorflow/tfjs-core';
import { replaceKernel, withScratch } from './kernel-utils.ts';

const maxPoolGrad: KernelFunc = ({ inputs, backend, attrs = {} }) => {
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as MaxPoolGradAttrs;
  const info = backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth } = info;
  const { strideHeight, strideWidth } = info;
  const { top, left } = info.padInfo;

  return withScratch(backend, (s) => {
    const dx = s.alloc(input.shape);
    const out = s.view(dx);
    out.fill(0);
    const x = s.view(input);
    const grad = s.view(dy);
    // Keras' default pool, with every window inside the input, is unrolled
    // below: about twice as fast as the general loop.
    const unrolled =
      filterHeight === 2 &&
      filterWidth === 2 &&
      top === 0 &&
      left === 0 &&
      (outHeight - 1) * strideHeight + 2 <= inHeight &&
      (outWidth - 1) * strideWidth + 2 <= inWidth;
    const rowStride = inWidth * inChannels;
    let g = 0;
    for (let b = 0; b < batchSize; b++) {
      for (let oy = 0; oy < outHeight; oy++) {
        const y0 = oy * strideHeight - top;
        const yFrom = Math.max(y0, 0);
        const yTo = Math.min(y0 + filterHeight, inHeight);
        for (let ox = 0; ox < outWidth; ox++) {
          const x0 = ox * strideWidth - left;
          const xFrom = Math.max(x0, 0);
          const xTo = Math.min(x0 + filterWidth, inWidth);
          const corner = ((b * inHeight + yFrom) * inWidth + xFrom) * inChannels;
          if (unrolled) {
            for (let c = 0; c < inChannels; c++, g++) {
              const p0 = corner + c;
              const p1 = p0 + inChannels;
              const p2 = p0 + rowStride;
              const p3 = p2 + inChannels;
              let max = -Infinity;
              let at = -1;
              if (x[p0] > max) {
                max = x[p0];
                at = p0;
              }
              if (x[p1] > max) {
                max = x[p1];
                at = p1;
              }
              if (x[p2] > max) {
                max = x[p2];
                at = p2;
              }
              if (x[p3] > max) at = p3;
              if (at >= 0) out[at] += grad[g];
            }
            continue;
          }
          for (let c = 0; c < inChannels; c++, g++) {
            let max = -Infinity;
            let at = -1;
            for (let y = yFrom, row = corner + c; y < yTo; y++, row += rowStride) {
              for (let xi = xFrom, p = row; xi < xTo; xi++, p += inChannels) {
                if (x[p] > max) {
                  max = x[p];
                  at = p;
                }
              }
            }
            if (at >= 0) out[at] += grad[g];
          }
        }
      }
    }
    return dx;
  });
};

export function registerMaxPoolGrad(): void {
  replaceKernel('MaxPoolGrad', () => maxPoolGrad);
}
