/**
 * Categorical cross-entropy: the reference definition (Keras') and the fused
 * version a training step uses, which gives the same gradient.
 */
import * as tf from '@tensorflow/tfjs-core';
// For its side effect: tfjs-core's node build registers no gradients; tfjs-layers' registers them all.
import '@tensorflow/tfjs-layers';
import { argmax } from '../mnist-shape.ts';

const EPSILON = 1e-7;

/** Keras' categorical cross-entropy on probabilities, mean over the batch. */
export function crossEntropy(y: tf.Tensor, probabilities: tf.Tensor): tf.Scalar {
  return tf.tidy(
    () =>
      tf.neg(tf.mean(tf.sum(tf.mul(y, tf.log(tf.clipByValue(probabilities, EPSILON, 1 - EPSILON))), -1))) as tf.Scalar,
  );
}

/** The float32 bounds `crossEntropy`'s clip compares probabilities with. */
const CLIP_MIN = Math.fround(EPSILON);
const CLIP_MAX = Math.fround(1 - EPSILON);

const clip = (value: number) => Math.min(Math.max(value, CLIP_MIN), CLIP_MAX);

/** What a training step's loss function learnt about its batch. */
export interface BatchScore {
  loss: number;
  correct: number;
}

/**
 * `crossEntropy` for a training step, worked out in JavaScript from one read
 * of the batch's probabilities instead of ~20 small kernels forward and
 * backward (each costs tens of microseconds of engine work on wasm), and
 * counting the rows classified right on the way. The gradient is the one
 * the clip → log → sum → mean → neg chain gives, element for element in
 * float32 — -1/n over the label's probability inside the clip range, zero
 * elsewhere (negative zero where the chain gives one) — so training takes
 * the same steps. The loss is summed in float64, so it can differ from
 * `crossEntropy`'s in the last float32 digit.
 *
 * With `labelSmoothing` ε > 0 the target is 1 − ε + ε/K on the label and ε/K
 * on every other class (K classes), as Keras' `label_smoothing`: the model is
 * no longer pushed to put all of its probability on one class, which is
 * worth ~0.05–0.1 points of CNN test accuracy after augmented training.
 */
export function trainingLoss(
  probabilities: tf.Tensor,
  labels: ArrayLike<number>,
  score: BatchScore,
  labelSmoothing = 0,
): tf.Scalar {
  const withGradient = tf.customGrad((...inputs) => {
    const p = inputs[0] as tf.Tensor;
    const [rows, classes] = p.shape as [number, number];
    const values = p.dataSync();
    const gradient = new Float32Array(rows * classes);
    const scale = Math.fround(-1 / rows);
    const other = labelSmoothing / classes;
    const own = 1 - labelSmoothing + other;
    let sum = 0;
    let correct = 0;
    for (let row = 0, at = 0; row < rows; row++, at += classes) {
      const label = labels[row]!;
      if (labelSmoothing === 0) {
        for (let c = 0; c < classes; c++) {
          const value = values[at + c]!;
          const inRange = value >= CLIP_MIN && value <= CLIP_MAX;
          gradient[at + c] = !inRange ? 0 : c === label ? scale / value : -0;
        }
        sum -= Math.log(clip(values[at + label]!));
      } else {
        for (let c = 0; c < classes; c++) {
          const value = values[at + c]!;
          const target = c === label ? own : other;
          const inRange = value >= CLIP_MIN && value <= CLIP_MAX;
          gradient[at + c] = inRange ? (scale * target) / value : 0;
          sum -= target * Math.log(clip(value));
        }
      }
      if (argmax(values, at, classes) === label) correct++;
    }
    score.loss = sum / rows;
    score.correct = correct;
    return {
      value: tf.scalar(score.loss),
      gradFunc: (dy: tf.Tensor) => tf.mul(dy, tf.tensor2d(gradient, [rows, classes])),
    };
  });
  return withGradient(probabilities) as tf.Scalar;
}
