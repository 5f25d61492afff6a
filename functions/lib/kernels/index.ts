/** Project kernels registered for the wasm backend; see each module for why. */
let registered = false;

export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
}
