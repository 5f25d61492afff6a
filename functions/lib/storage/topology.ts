/**
 * The parameter count a stored model.json describes, worked out from the JSON
 * alone. tfjs allocates (and initialises) every weight of a topology before it
 * looks at the stored weights, so an absurd layer size would exhaust memory
 * before any check; comparing this count with the recorded one first makes
 * that a refusal instead. Only the layers our architectures use are known;
 * anything else is refused rather than guessed at.
 */
import { ModelIntegrityError } from '../errors.ts';

type Shape = number[];
type LayerConfig = Record<string, unknown>;

const fail = (message: string): never => {
  throw new ModelIntegrityError(`model.json: ${message}`);
};

function positiveInt(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1)
    fail(`${what} must be a positive integer`);
  return value as number;
}

function pair(value: unknown, what: string): [number, number] {
  const list = Array.isArray(value) ? value : [value, value];
  if (list.length !== 2) fail(`${what} must be one or two integers`);
  return [positiveInt(list[0], what), positiveInt(list[1], what)];
}

function inputShape(config: LayerConfig): Shape {
  const shape = config.batch_input_shape;
  if (!Array.isArray(shape) || shape.length < 2 || shape[0] !== null)
    fail('the first layer needs a batch_input_shape like [null, 28, 28, 1]');
  return (shape as unknown[]).slice(1).map((d) => positiveInt(d, 'an input dimension'));
}

function spatial(
  config: LayerConfig,
  shape: Shape,
  kernel: [number, number],
  strides: [number, number],
): [number, number] {
  if (shape.length !== 3) fail(`${String(config.name)} needs a [height, width, channels] input`);
  if ((config.data_format ?? 'channels_last') !== 'channels_last') fail('only channels_last is supported');
  const padding = config.padding ?? 'valid';
  if (padding !== 'same' && padding !== 'valid') fail(`unknown padding ${JSON.stringify(padding)}`);
  const out = (size: number, k: number, s: number) =>
    padding === 'same' ? Math.ceil(size / s) : Math.floor((size - k) / s) + 1;
  const dims: [number, number] = [out(shape[0]!, kernel[0], strides[0]), out(shape[1]!, kernel[1], strides[1])];
  if (dims[0] < 1 || dims[1] < 1) fail(`${String(config.name)} leaves nothing of its input`);
  return dims;
}

/** Output shape and parameter count of one layer, given its input shape. */
function layer(className: unknown, config: LayerConfig, shape: Shape): { shape: Shape; params: number } {
  const bias = config.use_bias !== false;
  switch (className) {
    case 'Flatten':
      return { shape: [shape.reduce((a, b) => a * b, 1)], params: 0 };
    case 'Dropout':
      return { shape, params: 0 };
    case 'Dense': {
      if (shape.length !== 1) fail('Dense needs a flat input');
      const units = positiveInt(config.units, 'Dense units');
      return { shape: [units], params: shape[0]! * units + (bias ? units : 0) };
    }
    case 'Conv2D': {
      const filters = positiveInt(config.filters, 'Conv2D filters');
      const kernel = pair(config.kernel_size, 'Conv2D kernel_size');
      if (pair(config.dilation_rate ?? 1, 'Conv2D dilation_rate').some((d) => d !== 1))
        fail('dilated convolutions are not supported');
      const [h, w] = spatial(config, shape, kernel, pair(config.strides ?? 1, 'Conv2D strides'));
      return { shape: [h, w, filters], params: kernel[0] * kernel[1] * shape[2]! * filters + (bias ? filters : 0) };
    }
    case 'MaxPooling2D': {
      const pool = pair(config.pool_size ?? 2, 'MaxPooling2D pool_size');
      const [h, w] = spatial(config, shape, pool, pair(config.strides ?? pool, 'MaxPooling2D strides'));
      return { shape: [h, w, shape[2]!], params: 0 };
    }
    default:
      return fail(`layer class ${JSON.stringify(className)} is not one this service builds`);
  }
}

/** Parameters of a Sequential topology; throws ModelIntegrityError for anything it cannot account for. */
export function topologyParams(topology: unknown): number {
  const root = topology as { class_name?: unknown; config?: { layers?: unknown } } | null;
  if (root?.class_name !== 'Sequential' || !Array.isArray(root.config?.layers) || root.config.layers.length === 0) {
    return fail('the topology must be a Sequential model with layers');
  }
  let shape: Shape | undefined;
  let params = 0;
  for (const entry of root.config.layers as { class_name?: unknown; config?: LayerConfig }[]) {
    const config = entry?.config;
    if (typeof config !== 'object' || config === null) return fail('a layer has no config');
    const next = layer(entry.class_name, config, shape ?? inputShape(config));
    shape = next.shape;
    params += next.params;
    // Checked as it grows: the sums stay exact and a huge layer stops the walk at once.
    if (!Number.isSafeInteger(params) || shape.some((d) => !Number.isSafeInteger(d)))
      fail('the topology is absurdly large');
  }
  return params;
}
