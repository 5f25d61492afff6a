/**
 * Shared plumbing for the project's wasm kernels: they are compositions of the
 * stock wasm kernels, called directly (not through tf ops) so they add no
 * tensors to the engine and can free every intermediate themselves.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';

const WASM = 'wasm';

/** The kernel the wasm package registered under `name`; throws if there is none. */
export function stockKernel(name: string): KernelConfig {
  const kernel = tf.getKernel(name, WASM);
  if (kernel === undefined) {
    throw new Error(`wasm kernel ${name} is not registered; import @tensorflow/tfjs-backend-wasm first`);
  }
  return kernel;
}

/**
 * Replaces the wasm kernel `name` with the one `make` builds from the stock
 * kernel, keeping the stock setup function so the wasm functions the stock
 * kernel binds are still bound when the backend initialises.
 */
export function replaceKernel(name: string, make: (stock: KernelConfig) => KernelConfig['kernelFunc']): void {
  const stock = stockKernel(name);
  tf.unregisterKernel(name, WASM);
  tf.registerKernel({ ...stock, kernelFunc: make(stock) });
}

/** Registers a kernel wasm lacks; a no-op if a later tfjs release brings its own. */
export function addKernel(name: string, kernelFunc: KernelConfig['kernelFunc']): void {
  if (tf.getKernel(name, WASM) === undefined) tf.registerKernel({ kernelName: name, backendName: WASM, kernelFunc });
}

/**
 * Runs stock kernels and owns their outputs: `dispose` frees everything that
 * was not handed out with `release`, so a kernel built on it frees its
 * intermediates even when a step throws.
 */
export class Scratch {
  private readonly owned = new Set<TensorInfo>();

  constructor(readonly backend: BackendWasm) {}

  run(kernel: KernelConfig, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
    const out = kernel.kernelFunc({ inputs, attrs, backend: this.backend });
    if (Array.isArray(out)) throw new Error(`${kernel.kernelName} returned several outputs`);
    this.owned.add(out);
    return out;
  }

  /** Allocates an uninitialised tensor on the wasm heap. */
  alloc(shape: number[]): TensorInfo {
    const out = this.backend.makeOutput(shape, 'float32');
    this.owned.add(out);
    return out;
  }

  /**
   * The heap memory behind `info`. Take views only after the last allocation
   * they must outlive: a growing heap detaches earlier ones.
   */
  view(info: TensorInfo): Float32Array {
    return this.backend.typedArrayFromHeap(info) as Float32Array;
  }

  /** Hands `info` to the caller, who becomes responsible for freeing it. */
  release(info: TensorInfo): TensorInfo {
    this.owned.delete(info);
    return info;
  }

  /** Frees an intermediate as soon as it is no longer needed. */
  free(info: TensorInfo): void {
    if (this.owned.delete(info)) this.backend.disposeData(info.dataId);
  }

  dispose(): void {
    for (const info of this.owned) this.backend.disposeData(info.dataId);
    this.owned.clear();
  }
}

/** Runs `body` with a fresh Scratch and frees whatever it did not release. */
export function withScratch(backend: unknown, body: (s: Scratch) => TensorInfo): TensorInfo {
  const scratch = new Scratch(backend as BackendWasm);
  try {
    return scratch.release(body(scratch));
  } finally {
    scratch.dispose();
  }
}
