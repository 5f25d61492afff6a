/**
 * HeapAdam (functions/lib/training/kernels/adam.ts) against tf.train.adam: bit for bit
 * on wasm, and within float rounding of the cpu backend, over a changing
 * learning rate and variables of several shapes.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '#lib/backend';
import { HeapAdam, adam } from '#lib/training/kernels/adam';
import { seededRandom } from '#lib/training/batches';

before(async () => {
  assert.equal(await initBackend(['wasm'], 'wasm'), 'wasm');
});

const SHAPES = [[37, 11], [11], [5, 3, 2], [1]];
const STEPS = 25;
const random = seededRandom(20261126);
const values = (size: number, spread: number) => Float32Array.from({ length: size }, () => (random() * 2 - 1) * spread);
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const initial = SHAPES.map((shape) => values(size(shape), 1));
// Gradients of very different sizes, so both moments and the epsilon matter.
const gradients = Array.from({ length: STEPS }, (_, step) =>
  SHAPES.map((shape) => values(size(shape), step % 3 === 0 ? 1e-6 : 10 ** (step % 4))),
);
const rateAt = (step: number) => 1e-3 * (1 + Math.cos(step));

/** The variables after STEPS updates by `make()`'s optimizer on `backend`. */
async function train(
  backend: 'cpu' | 'wasm',
  make: () => tf.Optimizer & { learningRate: number },
): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  try {
    const variables = initial.map((data, i) => tf.variable(tf.tensor(data, SHAPES[i]!)));
    const optimizer = make();
    for (let step = 0; step < STEPS; step++) {
      optimizer.learningRate = rateAt(step);
      const grads = variables.map((variable, i) => ({
        name: variable.name,
        tensor: tf.tensor(gradients[step]![i]!, SHAPES[i]!),
      }));
      optimizer.applyGradients(grads);
      tf.dispose(grads.map((g) => g.tensor));
    }
    const out = variables.map((variable) => variable.dataSync() as Float32Array);
    optimizer.dispose();
    tf.dispose(variables);
    return out;
  } finally {
    await tf.setBackend('wasm');
  }
}

const stock = () => tf.train.adam(1e-3) as unknown as tf.Optimizer & { learningRate: number };

describe('HeapAdam', () => {
  test('gives the same weights as tf.train.adam on wasm, bit for bit', async () => {
    const [expected, actual] = [await train('wasm', stock), await train('wasm', () => new HeapAdam(1e-3))];
    actual.forEach((weights, i) => assert.deepEqual(weights, expected[i], `variable ${i}`));
  });

  test('gives the weights tf.train.adam gives on cpu, within 1e-5', async () => {
    const [expected, actual] = [await train('cpu', stock), await train('wasm', () => new HeapAdam(1e-3))];
    actual.forEach((weights, i) => {
      const worst = weights.reduce((max, w, j) => Math.max(max, Math.abs(w - expected[i]![j]!)), 0);
      assert.ok(worst <= 1e-5, `variable ${i}: max difference ${worst}`);
      assert.notDeepEqual(weights, initial[i], `variable ${i} moved`);
    });
  });

  test('minimize updates only the listed variables, skips ones the loss ignores, and leaks no tensors', async () => {
    const [a, b, unused, untouched] = [
      tf.variable(tf.tensor([1, 2])),
      tf.variable(tf.tensor([3])),
      tf.variable(tf.tensor([4])),
      tf.variable(tf.tensor([5])),
    ];
    const before = tf.memory().numTensors;
    const optimizer = new HeapAdam(0.1);
    for (let i = 0; i < 3; i++) {
      const cost = optimizer.minimize(() => tf.sum(tf.mul(a, b)), true, [a, b, unused])!;
      cost.dispose();
    }
    assert.equal(optimizer.iterations, 3);
    assert.equal(tf.memory().numTensors, before);
    assert.ok(
      a.dataSync().every((value, i) => value < [1, 2][i]!),
      'a descends',
    );
    assert.deepEqual(Array.from(unused.dataSync()), [4]);
    assert.deepEqual(Array.from(untouched.dataSync()), [5]);
    optimizer.dispose();
    tf.dispose([a, b, unused, untouched]);
  });

  test('adam() is HeapAdam on wasm and the stock optimizer elsewhere', async () => {
    assert.ok(adam(1e-3) instanceof HeapAdam);
    await tf.setBackend('cpu');
    try {
      assert.ok(adam(1e-3) instanceof tf.AdamOptimizer);
    } finally {
      await tf.setBackend('wasm');
    }
  });
});
