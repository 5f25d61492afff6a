/**
 * Picks the tfjs backend once per process: native TensorFlow (tfjs-node) where
 * its optional install succeeded, else WebAssembly, else the pure-JS cpu
 * backend. The caller may force one (`TFJS_BACKEND`, read by config.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { BACKEND_NAMES, type BackendName } from './config.ts';
import { logger } from './log.ts';

/** tfjs-core's own name for each backend. */
const TF_NAME: Record<BackendName, string> = { node: 'tensorflow', wasm: 'wasm', cpu: 'cpu' };

export class BackendUnavailableError extends Error {
  override name = 'BackendUnavailableError';
}

let active: Promise<BackendName> | undefined;
let wasmDir: string | undefined;

/**
 * Where the `.wasm` files live. A bundle ships them beside itself and calls
 * this before `initBackend`; unbundled code finds them in node_modules.
 */
export function useWasmFilesFrom(dir: string): void {
  wasmDir = dir.endsWith('/') ? dir : `${dir}/`;
}

async function tryNode(): Promise<boolean> {
  try {
    // A variable specifier keeps bundlers from following the optional native package.
    const name = '@tensorflow/tfjs-node';
    await import(name);
    return tf.findBackend(TF_NAME.node) !== null;
  } catch {
    return false;
  }
}

async function activate(name: BackendName): Promise<boolean> {
  if (name === 'node' && !(await tryNode())) return false;
  if (name === 'wasm' && wasmDir) setWasmPaths(wasmDir);
  return tf.setBackend(TF_NAME[name]);
}

async function choose(preferred: readonly BackendName[], forced: BackendName | undefined): Promise<BackendName> {
  const order = forced ? [forced] : preferred;
  for (const name of order) {
    if (await activate(name)) {
      await tf.ready();
      logger.info('tfjs backend active', { backend: name, forced: forced !== undefined });
      return name;
    }
  }
  throw new BackendUnavailableError(
    forced
      ? `TFJS_BACKEND=${forced} could not be loaded`
      : `no tfjs backend could be loaded (tried ${order.join(', ')})`,
  );
}

/**
 * Initialises the backend once and returns its name. Training prefers native
 * TensorFlow; prediction passes `['wasm', 'cpu']` because tfjs-node does not fit
 * a zip Lambda and wasm answers a single image in well under a millisecond.
 */
export function initBackend(
  preferred: readonly BackendName[] = BACKEND_NAMES,
  forced?: BackendName,
): Promise<BackendName> {
  active ??= choose(preferred, forced);
  return active;
}

/** The backend tfjs runs on now, by the project's name for it. */
export function currentBackend(): BackendName {
  const running = tf.getBackend();
  const name = BACKEND_NAMES.find((candidate) => TF_NAME[candidate] === running);
  if (name === undefined) throw new BackendUnavailableError(`tfjs runs on ${running}, which the project does not use`);
  return name;
}

export { tf };
