/**
 * Just enough of the WebAssembly binary format to build a one-function module
 * that works on the wasm backend's own memory: project kernels that are plain
 * element-wise loops run there with SIMD, without a toolchain or a second
 * copy of their data. Opcodes and layout follow the WebAssembly core and
 * fixed-width SIMD specifications.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;
export type ValueType = typeof I32 | typeof F32 | typeof V128;

/** Unsigned LEB128. */
function uleb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

/** Signed LEB128, for i32.const. */
function sleb(value: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    const done = (value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (text: string): number[] => vec([...Buffer.from(text, 'utf8')].map((byte) => [byte]));
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

/** The instructions the project's modules use. */
export const op = {
  localGet: (index: number) => [0x20, ...uleb(index)],
  localSet: (index: number) => [0x21, ...uleb(index)],
  i32Const: (value: number) => [0x41, ...sleb(value)],
  i32Add: [0x6a],
  i32Mul: [0x6c],
  i32And: [0x71],
  i32Shl: [0x74],
  // Memory arguments: alignment 2^2 (float32 arrays), then a constant byte offset.
  f32Load: (offset = 0) => [0x2a, 2, ...uleb(offset)],
  f32Store: (offset = 0) => [0x38, 2, ...uleb(offset)],
  v128Load: (offset = 0) => [0xfd, 0x00, 2, ...uleb(offset)],
  v128Store: (offset = 0) => [0xfd, 0x0b, 2, ...uleb(offset)],
  v128Zero: [0xfd, 0x0c, ...new Array<number>(16).fill(0)],
  /** Runs `body` while the i32 local `counter` is below the i32 local `limit`, adding `stride` after each pass. */
  loopWhileBelow: (counter: number, limit: number, stride: number, body: number[]) => [
    0x02,
    0x40, // block
    0x03,
    0x40, // loop
    ...op.localGet(counter),
    ...op.localGet(limit),
    0x4f,
    0x0d,
    0x01, // i32.ge_u; br_if to the block's end
    ...body,
    ...op.localGet(counter),
    ...op.i32Const(stride),
    0x6a,
    ...op.localSet(counter),
    0x0c,
    0x00, // br to the loop's start
    0x0b,
    0x0b, // end loop, end block
  ],
  f32x4Splat: [0xfd, 0x13],
};

/** Element-wise float arithmetic, one float (f32) or four (f32x4) at a time. */
export interface Lanes {
  bytes: number;
  load: number[];
  store: number[];
  add: number[];
  mul: number[];
  div: number[];
  sqrt: number[];
}

export const F32_LANES: Lanes = {
  bytes: 4,
  load: op.f32Load(),
  store: op.f32Store(),
  add: [0x92],
  mul: [0x94],
  div: [0x95],
  sqrt: [0x91],
};
export const F32X4_LANES: Lanes = {
  bytes: 16,
  load: op.v128Load(),
  store: op.v128Store(),
  add: [0xfd, 0xe4, 0x01],
  mul: [0xfd, 0xe6, 0x01],
  div: [0xfd, 0xe7, 0x01],
  sqrt: [0xfd, 0xe3, 0x01],
};

export interface FunctionSpec {
  params: ValueType[];
  locals: ValueType[];
  body: number[];
}

/** A module importing `env.memory` and exporting one function, `run`, with no results. */
function encode({ params, locals, body }: FunctionSpec): Uint8Array<ArrayBuffer> {
  const code = [...vec(locals.map((type) => [1, type])), ...body, 0x0b];
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec([[0x60, ...vec(params.map((type) => [type])), ...vec([])]])),
    ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x00, 0x00]])),
    ...section(3, vec([[0]])),
    ...section(7, vec([[...name('run'), 0x00, 0x00]])),
    ...section(10, vec([[...uleb(code.length), ...code]])),
  ]);
}

type WasmInternals = { wasm?: { asm?: { memory?: unknown } }; dataIdMap?: { get?: unknown } };

/**
 * The kernels read two tfjs-wasm internals, present in the pinned 4.22.0: the
 * module's memory (`backend.wasm.asm.memory`) and each tensor's heap offset
 * (`backend.dataIdMap`). Throws, naming what moved, if either is missing.
 */
export function assertWasmInternals(backend: BackendWasm): void {
  const internals = backend as unknown as WasmInternals;
  const missing = [
    internals.wasm?.asm?.memory instanceof WebAssembly.Memory ? undefined : 'backend.wasm.asm.memory',
    typeof internals.dataIdMap?.get === 'function' ? undefined : 'backend.dataIdMap',
  ].filter((name) => name !== undefined);
  if (missing.length > 0) {
    throw new Error(
      `this @tensorflow/tfjs-backend-wasm no longer has ${missing.join(' and ')}, which the project's training kernels use: ` +
        'keep tfjs at the version package.json pins, or update functions/lib/training/kernels/wasm-module.ts',
    );
  }
}

/** The wasm backend's memory, which its heap views and tensor offsets refer to. */
function memoryOf(backend: BackendWasm): WebAssembly.Memory {
  return (backend.wasm as unknown as { asm: { memory: WebAssembly.Memory } }).asm.memory;
}

/** Compiles `spec` against the backend's memory; pointers passed to `run` are tensors' heap offsets. */
export function instantiate<Args extends number[]>(backend: BackendWasm, spec: FunctionSpec): (...args: Args) => void {
  const instance = new WebAssembly.Instance(new WebAssembly.Module(encode(spec)), {
    env: { memory: memoryOf(backend) },
  });
  return instance.exports.run as (...args: Args) => void;
}

/** Where a tensor's data starts in the backend's memory. */
export function heapOffset(backend: BackendWasm, dataId: object): number {
  return backend.dataIdMap.get(dataId)!.memoryOffset;
}
