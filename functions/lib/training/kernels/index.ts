/**
 * The project's wasm kernels for training: gradients tfjs-wasm lacks (conv
 * and pooling backprop) and faster products and reductions for the backward
 * pass. Inference never registers them: a prediction uses only stock kernels.
 * Registered from the training loop itself, so no entry point can forget;
 * replacing a kernel after the backend has started is safe because each
 * replacement keeps the stock kernel's setup function (kernel-utils.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { registerMatMulKernels } from './batch-matmul.ts';
import { registerConv2DBackpropFilter } from './conv2d-backprop-filter.ts';
import { registerConv2DBackpropInput } from './conv2d-backprop-input.ts';
import { registerIdentity } from './identity.ts';
import { registerMaxPoolGrad } from './max-pool-grad.ts';
import { registerLeadingReductions } from './reduce-leading-axes.ts';
import { assertWasmInternals } from './wasm-module.ts';

/** The stock kernels on wasm these replace or add, by name. */
export const TRAINING_KERNELS = [
  'BatchMatMul',
  '_FusedMatMul',
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
  'MaxPoolGrad',
  'Sum',
  'Mean',
  'Identity',
] as const;

let registered = false;

/**
 * Registers the training kernels once. When the wasm backend is active, first
 * checks the tfjs-wasm internals the kernels build on, so a tfjs upgrade that
 * moves them fails here with the reason instead of mid-step.
 */
export function registerTrainingKernels(): void {
  if (tf.getBackend() === 'wasm') assertWasmInternals(tf.backend() as BackendWasm);
  if (registered) return;
  registered = true;
  registerMatMulKernels();
  registerConv2DBackpropFilter();
  registerConv2DBackpropInput();
  registerMaxPoolGrad();
  registerLeadingReductions();
  registerIdentity();
}
