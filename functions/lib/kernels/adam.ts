/**
 * Adam for the wasm backend as one pass per variable over the wasm heap. The
 * stock optimizer runs ~12 kernels per variable (70 a step for the MLP), and
 * under Node each wasm kernel call costs tens of microseconds of engine work
 * before any arithmetic. Here every element's update is one iteration of a
 * JavaScript loop that reads the gradient and weights where they live.
 *
 * It gives the numbers tf.train.adam gives on wasm, bit for bit: every
 * intermediate is rounded to float32 in the stock kernels' order (`fround`),
 * and the step counts `accBeta1`/`accBeta2` advance in float32 as the stock
 * optimizer's scalar variables do.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { Tensor } from '@tensorflow/tfjs-core';

const fround = Math.fround;

type VariableGradients = Parameters<tf.Optimizer['applyGradients']>[0];

/** The stock optimizer's scalars for one step, each as the float32 it becomes there. */
interface StepScalars {
  beta1: number;
  beta2: number;
  oneMinusBeta1: number;
  oneMinusBeta2: number;
  correction1: number;
  correction2: number;
  epsilon: number;
  step: number;
}

interface Moments {
  m: Float32Array;
  v: Float32Array;
}

export class HeapAdam extends tf.Optimizer {
  static get className(): string {
    return 'HeapAdam';
  }

  private accBeta1: number;
  private accBeta2: number;
  private readonly moments = new Map<string, Moments>();

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
    const scale: StepScalars = {
      beta1: fround(this.beta1),
      beta2: fround(this.beta2),
      oneMinusBeta1: fround(1 - this.beta1),
      oneMinusBeta2: fround(1 - this.beta2),
      correction1: fround(1 - this.accBeta1),
      correction2: fround(1 - this.accBeta2),
      epsilon: fround(this.epsilon),
      step: fround(-this.learningRate),
    };
    for (const { name, tensor: gradient } of named) {
      // Null when the loss does not depend on the variable; the stock optimizer skips those too.
      if (gradient == null) continue;
      const variable = tf.engine().registeredVariables[name];
      if (variable === undefined) throw new Error(`HeapAdam: no variable named ${name}`);
      this.update(backend, variable, gradient, scale);
    }
    this.accBeta1 = fround(this.accBeta1 * fround(this.beta1));
    this.accBeta2 = fround(this.accBeta2 * fround(this.beta2));
    this.incrementIterations();
  }

  private update(backend: BackendWasm, variable: tf.Variable, gradient: Tensor, s: StepScalars): void {
    if (variable.dtype !== 'float32' || gradient.dtype !== 'float32') throw new Error(`HeapAdam: ${variable.name} is not float32`);
    let moments = this.moments.get(variable.name);
    if (moments === undefined) {
      moments = { m: new Float32Array(variable.size), v: new Float32Array(variable.size) };
      this.moments.set(variable.name, moments);
    }
    const { m, v } = moments;
    // The new weights go to a fresh buffer, not over the old ones: wasm's
    // matmul caches the packed form of its right operand by buffer id, so
    // weights changed in place would be multiplied in their stale form.
    const info = backend.makeOutput(variable.shape, 'float32');
    // Views after the allocation: a heap that grows detaches earlier ones.
    const out = backend.typedArrayFromHeap(info) as Float32Array;
    const g = backend.typedArrayFromHeap(gradient) as Float32Array;
    const w = backend.typedArrayFromHeap(variable) as Float32Array;
    for (let i = 0; i < out.length; i++) {
      const gi = g[i]!;
      const mi = fround(fround(m[i]! * s.beta1) + fround(gi * s.oneMinusBeta1));
      const vi = fround(fround(v[i]! * s.beta2) + fround(fround(gi * gi) * s.oneMinusBeta2));
      m[i] = mi;
      v[i] = vi;
      const mHat = fround(mi / s.correction1);
      const vHat = fround(vi / s.correction2);
      const direction = fround(mHat / fround(fround(Math.sqrt(vHat)) + s.epsilon));
      out[i] = fround(direction * s.step) + w[i]!;
    }
    const next = tf.engine().makeTensorFromTensorInfo(info);
    variable.assign(next);
    next.dispose();
  }

  override dispose(): void {
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
