/**
 * A stored model (model.json's topology and weights.bin) as an inference-only
 * forward pass on tfjs-core ops, for the two architectures the service trains:
 * the MLP (Flatten, Dense with ReLU or softmax) and the CNN (Conv2D, max
 * pooling, Flatten, Dropout as the identity, Dense). Serving never trains, so
 * it does not load tfjs-layers: in a cold start that cost ~15 ms of import
 * and ~20 ms of building the model. Each layer calls the ops tfjs-layers
 * calls for it (fused matMul/conv2d with bias and ReLU; a softmax output as
 * matMul, bias add, softmax), so the answers are the ones a tfjs-layers model
 * gives.
 *
 * Everything is checked against the stored topology before a tensor is made:
 * a layer class, activation, padding, data format or weight this pass does
 * not know is a ModelIntegrityError naming it, never a guess.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ModelIntegrityError } from './errors.ts';

/** What answering needs of a model, served or in training: class probabilities for [n, 28, 28, 1] inputs. */
export interface Predictor {
  /** The caller owns the result; call inside tf.tidy or dispose it. A tfjs-layers model returns a single tensor here. */
  predict(x: tf.Tensor): tf.Tensor | tf.Tensor[];
}

/** A served model. */
export interface InferenceModel extends Predictor {
  predict(x: tf.Tensor): tf.Tensor;
  countParams(): number;
  dispose(): void;
}

type Activation = 'relu' | 'linear' | 'softmax';
type LayerConfig = Record<string, unknown>;
type Step = (x: tf.Tensor) => tf.Tensor;

const fail = (message: string): never => {
  throw new ModelIntegrityError(`model.json: ${message}`);
};

function activationOf(config: LayerConfig): Activation {
  const activation = config.activation ?? 'linear';
  if (activation !== 'relu' && activation !== 'linear' && activation !== 'softmax')
    fail(
      `${String(config.name)} has activation ${JSON.stringify(activation)}; only relu, linear and softmax are served`,
    );
  return activation as Activation;
}

function pair(value: unknown, fallback: number): [number, number] {
  const list = Array.isArray(value) ? value : [value ?? fallback, value ?? fallback];
  return [list[0] as number, list[1] as number];
}

function padding(config: LayerConfig): 'same' | 'valid' {
  const value = config.padding ?? 'valid';
  if (value !== 'same' && value !== 'valid')
    fail(`${String(config.name)} has unknown padding ${JSON.stringify(value)}`);
  if ((config.data_format ?? 'channels_last') !== 'channels_last')
    fail(`${String(config.name)} is not channels_last; only channels_last is served`);
  return value as 'same' | 'valid';
}

/** Takes each weight a layer needs out of `weights`, checking its shape; what is left over at the end is an error. */
class Weights {
  constructor(private readonly remaining: Map<string, tf.Tensor>) {}

  take(layer: string, name: string, shape: number[]): tf.Tensor {
    const key = `${layer}/${name}`;
    const tensor = this.remaining.get(key);
    if (!tensor) return fail(`weight ${key} is missing`);
    if (tensor.shape.length !== shape.length || tensor.shape.some((d, i) => d !== shape[i]))
      fail(`weight ${key} has shape [${tensor.shape}]; the topology needs [${shape}]`);
    this.remaining.delete(key);
    return tensor;
  }

  unused(): string[] {
    return [...this.remaining.keys()];
  }
}

/** A matrix product with bias and activation, exactly as tfjs-layers' Dense computes it. */
function dense(config: LayerConfig, inputs: number, weights: Weights): { step: Step; units: number } {
  const units = config.units as number;
  const name = String(config.name);
  const activation = activationOf(config);
  const kernel = weights.take(name, 'kernel', [inputs, units]) as tf.Tensor2D;
  const bias = config.use_bias === false ? undefined : weights.take(name, 'bias', [units]);
  if (activation === 'softmax')
    return {
      units,
      step: (x) => {
        const product = tf.fused.matMul({ a: x as tf.Tensor2D, b: kernel });
        return tf.softmax(bias ? tf.add(product, bias) : product);
      },
    };
  return { units, step: (x) => tf.fused.matMul({ a: x as tf.Tensor2D, b: kernel, bias, activation }) };
}

function conv2d(config: LayerConfig, shape: number[], weights: Weights): { step: Step; shape: number[] } {
  const name = String(config.name);
  const activation = activationOf(config);
  if (activation === 'softmax') return fail(`${name} is a Conv2D with a softmax; only relu and linear are served`);
  const filters = config.filters as number;
  const kernelSize = pair(config.kernel_size, 1);
  const strides = pair(config.strides, 1);
  if (pair(config.dilation_rate, 1).some((d) => d !== 1))
    fail(`${name} is dilated; dilated convolutions are not served`);
  const pad = padding(config);
  const [height, width, channels] = shape as [number, number, number];
  const filter = weights.take(name, 'kernel', [...kernelSize, channels, filters]) as tf.Tensor4D;
  const bias = config.use_bias === false ? undefined : weights.take(name, 'bias', [filters]);
  const out = (size: number, k: number, s: number) =>
    pad === 'same' ? Math.ceil(size / s) : Math.floor((size - k) / s) + 1;
  return {
    shape: [out(height, kernelSize[0], strides[0]), out(width, kernelSize[1], strides[1]), filters],
    step: (x) =>
      tf.fused.conv2d({
        x: x as tf.Tensor4D,
        filter,
        strides,
        pad,
        dataFormat: 'NHWC',
        dilations: 1,
        bias,
        activation,
      }),
  };
}

function maxPooling2d(config: LayerConfig, shape: number[]): { step: Step; shape: number[] } {
  const pool = pair(config.pool_size, 2);
  const strides = config.strides == null ? pool : pair(config.strides, 1);
  const pad = padding(config);
  const [height, width, channels] = shape as [number, number, number];
  const out = (size: number, k: number, s: number) =>
    pad === 'same' ? Math.ceil(size / s) : Math.floor((size - k) / s) + 1;
  return {
    shape: [out(height, pool[0], strides[0]), out(width, pool[1], strides[1]), channels],
    step: (x) => tf.maxPool(x as tf.Tensor4D, pool, strides, pad),
  };
}

/**
 * Builds the forward pass of a Sequential topology over its decoded weights
 * (named `<layer>/kernel`, `<layer>/bias` as tfjs-layers saves them). Takes
 * ownership of `weights`: they are the model's from here on, and disposed
 * with it, or at once if the topology is refused. Call it after
 * `topologyParams` has checked the parameter count.
 */
export function inferenceModel(topology: unknown, weights: tf.NamedTensorMap): InferenceModel {
  const all = Object.values(weights);
  try {
    const root = topology as { class_name?: unknown; config?: { layers?: unknown } } | null;
    if (root?.class_name !== 'Sequential' || !Array.isArray(root.config?.layers) || root.config.layers.length === 0)
      fail('the topology must be a Sequential model with layers');
    const layers = (root!.config!.layers as { class_name?: unknown; config?: LayerConfig }[]).map((entry) => ({
      className: entry?.class_name,
      config: entry?.config ?? fail('a layer has no config'),
    }));
    const first = layers[0]!.config.batch_input_shape;
    if (!Array.isArray(first) || first[0] !== null)
      fail('the first layer needs a batch_input_shape like [null, 28, 28, 1]');
    const inputShape = (first as number[]).slice(1);
    const pool = new Weights(new Map(Object.entries(weights)));
    let shape = inputShape;
    const steps: Step[] = [];
    for (const { className, config } of layers) {
      if (className === 'Flatten') {
        const size = shape.reduce((a, b) => a * b, 1);
        steps.push((x) => tf.reshape(x, [x.shape[0]!, size]));
        shape = [size];
      } else if (className === 'Dropout') {
        // The identity at inference, as in tfjs-layers' predict.
      } else if (className === 'Dense') {
        if (shape.length !== 1) fail(`${String(config.name)} needs a flat input`);
        const layer = dense(config, shape[0]!, pool);
        steps.push(layer.step);
        shape = [layer.units];
      } else if (className === 'Conv2D' || className === 'MaxPooling2D') {
        if (shape.length !== 3) fail(`${String(config.name)} needs a [height, width, channels] input`);
        const layer = className === 'Conv2D' ? conv2d(config, shape, pool) : maxPooling2d(config, shape);
        steps.push(layer.step);
        shape = layer.shape;
      } else {
        fail(`layer class ${JSON.stringify(className)} is not one this service serves`);
      }
    }
    const unused = pool.unused();
    if (unused.length > 0) fail(`the weights hold ${unused.join(', ')}, which no layer uses`);
    const params = all.reduce((sum, t) => sum + t.size, 0);
    return {
      predict: (x) => {
        if (x.shape.length !== inputShape.length + 1 || inputShape.some((d, i) => x.shape[i + 1] !== d))
          throw new RangeError(`the model takes [n, ${inputShape}] inputs; got [${x.shape}]`);
        return tf.tidy(() => steps.reduce((y, step) => step(y), x));
      },
      countParams: () => params,
      dispose: () => tf.dispose(all),
    };
  } catch (error) {
    tf.dispose(all);
    throw error;
  }
}
