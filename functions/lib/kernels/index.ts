/** Project kernels registered for the wasm backend; see each module for why. */
import '@tensorflow/tfjs-backend-wasm';
import { registerMatMulKernels } from './batch-matmul.ts';
import { registerConv2DBackpropFilter } from './conv2d-backprop-filter.ts';
import { registerConv2DBackpropInput } from './conv2d-backprop-input.ts';
import { registerIdentity } from './identity.ts';
import { registerMaxPoolGrad } from './max-pool-grad.ts';
import { registerLeadingReductions } from './reduce-leading-axes.ts';

let registered = false;

export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
  registerMatMulKernels();
  registerConv2DBackpropFilter();
  registerConv2DBackpropInput();
  registerMaxPoolGrad();
  registerLeadingReductions();
  registerIdentity();
}
