/** Turns preprocessed 28×28 inputs into digits, with every tensor freed per call. */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { CLASSES, IMAGE_SIZE, PIXELS } from './model.ts';

export interface Prediction {
  digit: number;
  confidence: number;
  probabilities: number[];
}

const round = (p: number) => Math.round(p * 1e6) / 1e6;

export function classify(model: tfl.LayersModel, inputs: Float32Array[]): Prediction[] {
  const batch = new Float32Array(inputs.length * PIXELS);
  inputs.forEach((input, i) => batch.set(input, i * PIXELS));
  const probabilities = tf.tidy(() => (model.predict(tf.tensor4d(batch, [inputs.length, IMAGE_SIZE, IMAGE_SIZE, 1])) as tf.Tensor).dataSync());
  return inputs.map((_, i) => {
    const row = Array.from(probabilities.subarray(i * CLASSES, (i + 1) * CLASSES), round);
    let digit = 0;
    for (let c = 1; c < CLASSES; c++) if (row[c]! > row[digit]!) digit = c;
    return { digit, confidence: row[digit]!, probabilities: row };
  });
}
