/**
 * Evaluation on a labelled split: accuracy, loss, the confusion matrix,
 * per-class precision/recall/F1 and the most confident mistakes.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Predictor } from '../inference-model.ts';
import { range, toTensors, type LabelledImages } from './batches.ts';
import { crossEntropy } from './loss.ts';
import { MNIST_CLASSES, argmax } from '../mnist-shape.ts';

export interface ClassMetrics {
  digit: number;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface Evaluation {
  accuracy: number;
  loss: number;
  count: number;
  /** confusion[true][predicted] */
  confusion: number[][];
  perClass: ClassMetrics[];
  /** The most confidently wrong predictions, worst first (index into the evaluated set). */
  worst: { index: number; label: number; predicted: number; confidence: number }[];
}

const EVAL_BATCH = 1000;

/** Class probabilities for a batch of inputs [n,28,28,1]; the caller owns the result. */
export function predictProbabilities(model: Predictor, x: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => model.predict(x) as tf.Tensor2D);
}

/** Each evaluated example's answer: its index, the digit predicted and the confidence in it. */
export type AnswerSink = (index: number, predicted: number, confidence: number) => void;

/**
 * Evaluates the examples at `indices`; `worstCount` of the most confident
 * mistakes are kept. `onAnswer` sees every answer, for a caller that needs
 * them (the input profile) without a second pass over the model.
 */
export async function evaluateIndices(
  model: Predictor,
  data: LabelledImages,
  indices: Int32Array,
  worstCount = 0,
  onAnswer?: AnswerSink,
): Promise<Evaluation> {
  const confusion = Array.from({ length: MNIST_CLASSES }, () => new Array<number>(MNIST_CLASSES).fill(0));
  let lossSum = 0;
  const wrong: Evaluation['worst'] = [];
  for (let start = 0; start < indices.length; start += EVAL_BATCH) {
    const batch = indices.subarray(start, Math.min(indices.length, start + EVAL_BATCH));
    const { x, y } = toTensors(data, batch);
    const probabilities = predictProbabilities(model, x);
    const lossTensor = tf.tidy(() => tf.mul(crossEntropy(y, probabilities), batch.length));
    const probs = await probabilities.data();
    lossSum += (await lossTensor.data())[0]!;
    tf.dispose([x, y, probabilities, lossTensor]);
    for (let row = 0; row < batch.length; row++) {
      const index = batch[row]!;
      const label = data.labels[index]!;
      const predicted = argmax(probs, row * MNIST_CLASSES);
      confusion[label]![predicted]!++;
      onAnswer?.(index, predicted, probs[row * MNIST_CLASSES + predicted]!);
      if (worstCount > 0 && predicted !== label) {
        wrong.push({ index, label, predicted, confidence: probs[row * MNIST_CLASSES + predicted]! });
      }
    }
  }
  return summarise(
    confusion,
    lossSum / indices.length,
    wrong.sort((a, b) => b.confidence - a.confidence).slice(0, worstCount),
  );
}

/** Accuracy and per-class precision/recall/F1 from a confusion matrix. */
export function summarise(confusion: number[][], loss: number, worst: Evaluation['worst'] = []): Evaluation {
  const count = confusion.reduce((sum, row) => sum + row.reduce((a, b) => a + b, 0), 0);
  let correct = 0;
  const perClass: ClassMetrics[] = [];
  for (let digit = 0; digit < MNIST_CLASSES; digit++) {
    const truePositives = confusion[digit]![digit]!;
    correct += truePositives;
    const support = confusion[digit]!.reduce((a, b) => a + b, 0);
    const predictedAs = confusion.reduce((sum, row) => sum + row[digit]!, 0);
    const precision = predictedAs === 0 ? 0 : truePositives / predictedAs;
    const recall = support === 0 ? 0 : truePositives / support;
    const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    perClass.push({ digit, precision, recall, f1, support });
  }
  return { accuracy: count === 0 ? 0 : correct / count, loss, count, confusion, perClass, worst };
}

/** Evaluates on a whole split: accuracy, loss, confusion matrix, per-class metrics, worst mistakes. */
export function evaluateModel(
  model: Predictor,
  data: LabelledImages,
  worstCount = 36,
  onAnswer?: AnswerSink,
): Promise<Evaluation> {
  return evaluateIndices(model, data, range(0, data.count), worstCount, onAnswer);
}
