/**
 * Identity for wasm by reference, as the cpu backend and wasm's own Reshape
 * do: the output shares the input's heap buffer and its reference count.
 * The engine clones through Identity every tensor it keeps for the backward
 * pass (about twenty per MLP training step, the [784,256] weights among
 * them), and the stock kernel copies each one. Sharing is safe because no
 * kernel writes into a buffer once it has been returned as a tensor.
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { replaceKernel } from './kernel-utils.ts';

export function registerIdentity(): void {
  replaceKernel(
    'Identity',
    (stock): KernelFunc =>
      (args) => {
        const x = args.inputs.x as TensorInfo;
        // Strings live in JavaScript, not on the heap; the stock kernel handles them.
        if (x.dtype === 'string') return stock.kernelFunc(args);
        (args.backend as BackendWasm).incRef(x.dataId);
        return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
      },
  );
}
