/**
 * Adam for the wasm backend as one pass per variable over the wasm heap. The
 * stock optimizer runs ~12 kernels per variable (70 a step for the MLP), and
 * under Node each wasm kernel call costs tens of microseconds of engine work
 * before any arithmetic. Here one small SIMD function (built by
 * wasm-module.ts, running on the backend's own memory) updates the first and
 * second moments and writes the new weights in a single loop: ~0.5 ms a
 * step for the MLP's 269,322 weights, where a JavaScript loop doing the same
 * float32 operations took 5 ms (both measured on the shared two-core
 * machine under load).
 *
 * It gives the numbers tf.train.adam gives on wasm, bit for bit: the loop
 * does the stock kernels' float32 operations in the same order, and the step
 * counts `accBeta1`/`accBeta2` advance in float32 as the stock optimizer's
 * scalar variables do.
 */
import * as tf from '@tensorflow/tfjs-core';
// For its side effect: tfjs-core's node build registers no gradients; tfjs-layers' registers them all.
import '@tensorflow/tfjs-layers';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import {
  F32,
  F32_LANES,
  F32X4_LANES,
  I32,
  V128,
  heapOffset,
  instantiate,
  op,
  type Lanes,
  type ValueType,
} from './wasm-module.ts';

const fround = Math.fround;

type VariableGradients = Parameters<tf.Optimizer['applyGradients']>[0];

/** The stock optimizer's scalars for one step, in the order the update function takes them. */
const SCALARS = [
  'beta1',
  'beta2',
  'oneMinusBeta1',
  'oneMinusBeta2',
  'correction1',
  'correction2',
  'epsilon',
  'step',
] as const;
type Scalar = (typeof SCALARS)[number];

/** gradient, weights, m, v, new weights (heap offsets), element count, then SCALARS. */
type UpdateArgs = [number, number, number, number, number, number, ...number[]];
type Update = (...args: UpdateArgs) => void;

// Parameter and local indices of the update function.
const [GRADIENT, WEIGHTS, M, V, OUT, COUNT] = [0, 1, 2, 3, 4, 5];
const SCALAR_PARAM = 6;
const [INDEX, LIMIT] = [14, 15];
const SCALAR_LOCALS = { g: 16, m: 17, v: 18 };
const VECTOR_LOCALS = { g: 19, m: 20, v: 21 };
const SPLATS = 22;

/**
 * One element (or four) of Adam at byte offset INDEX:
 *   m = m·β1 + g·(1−β1);  v = v·β2 + g²·(1−β2)
 *   w' = (m / (1−β1ᵗ)) / (√(v / (1−β2ᵗ)) + ε) · (−lr) + w
 */
function step(lanes: Lanes, scalar: (name: Scalar) => number[], x: { g: number; m: number; v: number }): number[] {
  const at = (pointer: number) => [...op.localGet(pointer), ...op.localGet(INDEX), ...op.i32Add];
  const get = op.localGet;
  return [
    ...at(GRADIENT),
    ...lanes.load,
    ...op.localSet(x.g),
    ...at(M),
    ...lanes.load,
    ...scalar('beta1'),
    ...lanes.mul,
    ...get(x.g),
    ...scalar('oneMinusBeta1'),
    ...lanes.mul,
    ...lanes.add,
    ...op.localSet(x.m),
    ...at(V),
    ...lanes.load,
    ...scalar('beta2'),
    ...lanes.mul,
    ...get(x.g),
    ...get(x.g),
    ...lanes.mul,
    ...scalar('oneMinusBeta2'),
    ...lanes.mul,
    ...lanes.add,
    ...op.localSet(x.v),
    ...at(M),
    ...get(x.m),
    ...lanes.store,
    ...at(V),
    ...get(x.v),
    ...lanes.store,
    ...at(OUT),
    ...get(x.m),
    ...scalar('correction1'),
    ...lanes.div,
    ...get(x.v),
    ...scalar('correction2'),
    ...lanes.div,
    ...lanes.sqrt,
    ...scalar('epsilon'),
    ...lanes.add,
    ...lanes.div,
    ...scalar('step'),
    ...lanes.mul,
    ...at(WEIGHTS),
    ...lanes.load,
    ...lanes.add,
    ...lanes.store,
  ];
}

/** Four elements at a time while four remain, then one at a time. */
function buildUpdate(backend: BackendWasm): Update {
  const param = (name: Scalar) => SCALAR_PARAM + SCALARS.indexOf(name);
  const splat = (name: Scalar) => SPLATS + SCALARS.indexOf(name);
  return instantiate<UpdateArgs>(backend, {
    params: [I32, I32, I32, I32, I32, I32, ...SCALARS.map((): ValueType => F32)],
    locals: [I32, I32, F32, F32, F32, V128, V128, V128, ...SCALARS.map((): ValueType => V128)],
    body: [
      ...SCALARS.flatMap((name) => [...op.localGet(param(name)), ...op.f32x4Splat, ...op.localSet(splat(name))]),
      ...op.localGet(COUNT),
      ...op.i32Const(-4),
      ...op.i32And,
      ...op.i32Const(2),
      ...op.i32Shl,
      ...op.localSet(LIMIT),
      ...op.loopWhileBelow(
        INDEX,
        LIMIT,
        F32X4_LANES.bytes,
        step(F32X4_LANES, (name) => op.localGet(splat(name)), VECTOR_LOCALS),
      ),
      ...op.localGet(COUNT),
      ...op.i32Const(2),
      ...op.i32Shl,
      ...op.localSet(LIMIT),
      ...op.loopWhileBelow(
        INDEX,
        LIMIT,
        F32_LANES.bytes,
        step(F32_LANES, (name) => op.localGet(param(name)), SCALAR_LOCALS),
      ),
    ],
  });
}

/** One update function per backend instance: it is bound to that backend's memory. */
const updates = new WeakMap<BackendWasm, Update>();

interface Moments {
  m: TensorInfo;
  v: TensorInfo;
}

export class HeapAdam extends tf.Optimizer {
  static get className(): string {
    return 'HeapAdam';
  }

  private accBeta1: number;
  private accBeta2: number;
  /** First and second moments per variable name, on the wasm heap, owned here rather than by the engine. */
  private readonly moments = new Map<string, Moments>();
  private backend: BackendWasm | undefined;

  /** Public so a schedule can change it between steps, as it can on tf.train.adam. */
  constructor(
    public learningRate: number,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly epsilon = tf.backend().epsilon(),
  ) {
    super();
    this.accBeta1 = fround(beta1);
    this.accBeta2 = fround(beta2);
  }

  applyGradients(variableGradients: VariableGradients): void {
    const named = Array.isArray(variableGradients)
      ? variableGradients
      : Object.entries(variableGradients).map(([name, tensor]) => ({ name, tensor }));
    const backend = tf.backend() as BackendWasm;
    if (this.backend !== undefined && this.backend !== backend)
      throw new Error('HeapAdam: the backend changed since the first step');
    this.backend = backend;
    let update = updates.get(backend);
    if (update === undefined) {
      update = buildUpdate(backend);
      updates.set(backend, update);
    }
    // The stock optimizer's scalars, as the float32 values its kernels see.
    const scalars: Record<Scalar, number> = {
      beta1: fround(this.beta1),
      beta2: fround(this.beta2),
      oneMinusBeta1: fround(1 - this.beta1),
      oneMinusBeta2: fround(1 - this.beta2),
      correction1: fround(1 - this.accBeta1),
      correction2: fround(1 - this.accBeta2),
      epsilon: fround(this.epsilon),
      step: fround(-this.learningRate),
    };
    const scalarArgs = SCALARS.map((name) => scalars[name]);
    for (const { name, tensor: gradient } of named) {
      // Null when the loss does not depend on the variable; the stock optimizer skips those too.
      if (gradient == null) continue;
      const variable = tf.engine().registeredVariables[name];
      if (variable === undefined) throw new Error(`HeapAdam: no variable named ${name}`);
      this.update(backend, update, variable, gradient, scalarArgs);
    }
    this.accBeta1 = fround(this.accBeta1 * fround(this.beta1));
    this.accBeta2 = fround(this.accBeta2 * fround(this.beta2));
    this.incrementIterations();
  }

  private update(
    backend: BackendWasm,
    update: Update,
    variable: tf.Variable,
    gradient: Tensor,
    scalarArgs: number[],
  ): void {
    if (variable.dtype !== 'float32' || gradient.dtype !== 'float32')
      throw new Error(`HeapAdam: ${variable.name} is not float32`);
    let moments = this.moments.get(variable.name);
    if (moments === undefined) {
      moments = { m: backend.makeOutput(variable.shape, 'float32'), v: backend.makeOutput(variable.shape, 'float32') };
      backend.typedArrayFromHeap(moments.m).fill(0);
      backend.typedArrayFromHeap(moments.v).fill(0);
      this.moments.set(variable.name, moments);
    }
    // The new weights go to a fresh buffer, not over the old ones: wasm's
    // matmul caches the packed form of its right operand by buffer id, so
    // weights changed in place would be multiplied in their stale form.
    const next = backend.makeOutput(variable.shape, 'float32');
    const offset = (info: TensorInfo) => heapOffset(backend, info.dataId);
    update(
      offset(gradient),
      offset(variable),
      offset(moments.m),
      offset(moments.v),
      offset(next),
      variable.size,
      ...scalarArgs,
    );
    const tensor = tf.engine().makeTensorFromTensorInfo(next);
    variable.assign(tensor);
    tensor.dispose();
  }

  override dispose(): void {
    for (const { m, v } of this.moments.values()) {
      this.backend?.disposeData(m.dataId);
      this.backend?.disposeData(v.dataId);
    }
    this.moments.clear();
    super.dispose();
  }

  getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.learningRate, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon };
  }
}

/**
 * Adam with the given learning rate: HeapAdam on wasm, tf.train.adam on every
 * other backend. Both read `learningRate` on each step, so a schedule may
 * write it between steps; tf.train.adam declares the field protected and has
 * no setter, hence the cast.
 */
export function adam(learningRate: number): tf.Optimizer & { learningRate: number } {
  if (tf.getBackend() === 'wasm') return new HeapAdam(learningRate);
  return tf.train.adam(learningRate) as unknown as tf.Optimizer & { learningRate: number };
}
