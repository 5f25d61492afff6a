/** Turns preprocessed 28×28 inputs into digits, with every tensor freed per call. */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { argmax, MNIST_CLASSES, MNIST_PIXELS, MNIST_SIDE } from './mnist-shape.ts';

export interface Prediction {
  digit: number;
  confidence: number;
  probabilities: number[];
}

const round = (p: number) => Math.round(p * 1e6) / 1e6;

export function classify(model: tfl.LayersModel, inputs: Float32Array[]): Prediction[] {
  const batch = new Float32Array(inputs.length * MNIST_PIXELS);
  inputs.forEach((input, i) => batch.set(input, i * MNIST_PIXELS));
  const probabilities = tf.tidy(() =>
    (model.predict(tf.tensor4d(batch, [inputs.length, MNIST_SIDE, MNIST_SIDE, 1])) as tf.Tensor).dataSync(),
  );
  return inputs.map((_, i) => {
    const row = Array.from(probabilities.subarray(i * MNIST_CLASSES, (i + 1) * MNIST_CLASSES), round);
    const digit = argmax(row);
    return { digit, confidence: row[digit]!, probabilities: row };
  });
}
