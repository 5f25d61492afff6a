/** Turns preprocessed 28×28 inputs into digits, with every tensor freed per call. */
import * as tf from '@tensorflow/tfjs-core';
import type { Predictor } from './inference-model.ts';
import { argmax, MNIST_CLASSES, MNIST_PIXELS, MNIST_SIDE } from './mnist-shape.ts';

export interface Prediction {
  digit: number;
  confidence: number;
  probabilities: number[];
}

const round = (p: number) => Math.round(p * 1e6) / 1e6;

/** `model`: a served model (inference-model.ts) or a tfjs-layers one. */
export function classify(model: Predictor, inputs: Float32Array[]): Prediction[] {
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
