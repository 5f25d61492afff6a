/**
 * The training step's loss (trainingLoss, worked out in JavaScript) against
 * Keras' cross-entropy built from tfjs ops (crossEntropy): the same gradient
 * bit for bit, the same loss to float32 rounding, and the batch accuracy.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '#lib/backend';
import { seededRandom } from '#lib/training/batches';
import { crossEntropy, trainingLoss, type BatchScore } from '#lib/training/loss';
import { MNIST_CLASSES } from '#lib/mnist-shape';

before(async () => {
  assert.equal(await initBackend(['wasm'], 'wasm'), 'wasm');
});

const ROWS = 37;
const random = seededRandom(20261127);
const labels = Array.from({ length: ROWS }, () => Math.floor(random() * MNIST_CLASSES));
// Softmax-like rows, a few with label probabilities at and beyond the clip bounds.
const probabilities = new Float32Array(ROWS * MNIST_CLASSES);
for (let row = 0; row < ROWS; row++) {
  const weights = Array.from({ length: MNIST_CLASSES }, () => random() ** 4);
  const total = weights.reduce((a, b) => a + b, 0);
  weights.forEach((w, c) => (probabilities[row * MNIST_CLASSES + c] = w / total));
}
const extremes = [0, 1e-8, Math.fround(1e-7), 1 - 1e-7, Math.fround(1 - 1e-7), 1];
extremes.forEach((value, i) => (probabilities[i * MNIST_CLASSES + labels[i]!] = value));
probabilities[extremes.length * MNIST_CLASSES + 3] = 1; // outside the clip on a class other than the label

async function gradients(
  backend: 'cpu' | 'wasm',
): Promise<{ keras: Float32Array; ours: Float32Array; kerasLoss: number; score: BatchScore }> {
  await tf.setBackend(backend);
  try {
    const p = tf.tensor2d(probabilities, [ROWS, MNIST_CLASSES]);
    const y = tf.oneHot(tf.tensor1d(labels, 'int32'), MNIST_CLASSES);
    const score: BatchScore = { loss: 0, correct: 0 };
    const keras = tf.grad((q: tf.Tensor) => crossEntropy(y, q))(p);
    const ours = tf.grad((q: tf.Tensor) => trainingLoss(q, labels, score))(p);
    const kerasLoss = crossEntropy(y, p);
    const out = {
      keras: keras.dataSync() as Float32Array,
      ours: ours.dataSync() as Float32Array,
      kerasLoss: kerasLoss.dataSync()[0]!,
      score,
    };
    tf.dispose([p, y, keras, ours, kerasLoss]);
    return out;
  } finally {
    await tf.setBackend('wasm');
  }
}

describe('trainingLoss', () => {
  for (const backend of ['wasm', 'cpu'] as const) {
    test(`gives the gradient of crossEntropy bit for bit on ${backend}, including signed zeros and clipped rows`, async () => {
      const { keras, ours } = await gradients(backend);
      assert.deepEqual(ours, keras);
      for (let i = 0; i < keras.length; i++)
        assert.ok(Object.is(ours[i], keras[i]), `element ${i}: ${ours[i]} vs ${keras[i]}`);
    });
  }

  test('reports the loss crossEntropy reports, and the rows whose most probable class is the label', async () => {
    const { kerasLoss, score } = await gradients('wasm');
    assert.ok(Math.abs(score.loss - kerasLoss) <= 1e-6 * kerasLoss, `${score.loss} vs ${kerasLoss}`);
    let correct = 0;
    for (let row = 0; row < ROWS; row++) {
      const values = probabilities.subarray(row * MNIST_CLASSES, (row + 1) * MNIST_CLASSES);
      if (values.indexOf(Math.max(...values)) === labels[row]) correct++;
    }
    assert.equal(score.correct, correct);
  });

  test('with label smoothing, gives the loss and gradient of crossEntropy against the smoothed targets', () => {
    const epsilon = 0.1;
    const p = tf.tensor2d(probabilities, [ROWS, MNIST_CLASSES]);
    const smoothed = tf.tidy(() =>
      tf.add(tf.mul(tf.oneHot(tf.tensor1d(labels, 'int32'), MNIST_CLASSES), 1 - epsilon), epsilon / MNIST_CLASSES),
    );
    const score: BatchScore = { loss: 0, correct: 0 };
    const reference = tf
      .grad((q: tf.Tensor) => crossEntropy(smoothed, q))(p)
      .dataSync();
    const ours = tf
      .grad((q: tf.Tensor) => trainingLoss(q, labels, score, epsilon))(p)
      .dataSync();
    const referenceLoss = crossEntropy(smoothed, p).dataSync()[0]!;
    for (let i = 0; i < reference.length; i++)
      assert.ok(
        Math.abs(ours[i]! - reference[i]!) <= 1e-5 * Math.abs(reference[i]!),
        `element ${i}: ${ours[i]} vs ${reference[i]}`,
      );
    assert.ok(Math.abs(score.loss - referenceLoss) <= 1e-5 * referenceLoss, `${score.loss} vs ${referenceLoss}`);
    // Smoothing spreads the target: every in-range class now has a gradient, not just the label's.
    assert.ok(ours[(ROWS - 1) * MNIST_CLASSES + ((labels[ROWS - 1]! + 1) % MNIST_CLASSES)]! < 0);
    tf.dispose([p, smoothed]);
  });
});
