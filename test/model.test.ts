import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '#lib/backend';
import { seededRandom, toTensors } from '#lib/training/batches';
import { evaluateModel, summarise } from '#lib/training/evaluate';
import { createModel, dropoutReseeder } from '#lib/training/model';
import { learningRateAt, trainModel, type ProgressEvent } from '#lib/training/train-loop';
import type { Mnist } from '#lib/training/mnist';
import { testMnist } from './support/env.ts';

let mnist: Mnist;
before(async () => {
  await initBackend();
  mnist = await testMnist();
});

function subset(split: Mnist['train'], n: number): Mnist['train'] {
  return { images: split.images.subarray(0, n * 784), labels: split.labels.subarray(0, n), count: n };
}

describe('createModel', () => {
  test('the MLP is the classic Keras one: 784 → 256 relu → 256 relu → 10 softmax', () => {
    const model = createModel({ arch: 'mlp' });
    const dense = model.layers.filter((layer) => layer.getClassName() === 'Dense');
    assert.deepEqual(
      dense.map((layer) => [layer.getConfig().units, layer.getConfig().activation]),
      [
        [256, 'relu'],
        [256, 'relu'],
        [10, 'softmax'],
      ],
    );
    assert.deepEqual(model.inputs[0]!.shape, [null, 28, 28, 1]);
    assert.equal(model.countParams(), 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10);
    model.dispose();
  });

  test('the same seed gives the same initial weights, another seed different ones', async () => {
    const [a, b, c] = [
      createModel({ arch: 'mlp', seed: 7 }),
      createModel({ arch: 'mlp', seed: 7 }),
      createModel({ arch: 'mlp', seed: 8 }),
    ];
    const first = (m: typeof a) => m.getWeights()[0]!.dataSync();
    assert.deepEqual(first(a), first(b));
    assert.notDeepEqual(first(a), first(c));
    [a, b, c].forEach((m) => m.dispose());
  });

  test('outputs a probability distribution per image', () => {
    const model = createModel({ arch: 'mlp' });
    const { x, y } = toTensors(mnist.test, [0, 1, 2]);
    const out = model.predict(x) as tf.Tensor;
    assert.deepEqual(out.shape, [3, 10]);
    for (const sum of tf.sum(out, -1).arraySync() as number[]) assert.ok(Math.abs(sum - 1) < 1e-5);
    tf.dispose([x, y, out]);
    model.dispose();
  });
});

describe('toTensors', () => {
  test('scales pixels to 0–1 and one-hot encodes labels', () => {
    const { x, y } = toTensors(mnist.train, [0]);
    const pixels = x.dataSync();
    assert.equal(Math.max(...pixels), mnist.train.images.subarray(0, 784).reduce((m, v) => Math.max(m, v), 0) / 255);
    assert.deepEqual(Array.from(y.dataSync()), [0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    tf.dispose([x, y]);
  });
});

describe('trainModel', () => {
  test('learns a subset: loss falls and test accuracy is far above chance', async () => {
    const model = createModel({ arch: 'mlp' });
    const result = await trainModel(model, subset(mnist.train, 3000), { epochs: 2, batchSize: 64 });
    assert.equal(result.history.length, 2);
    assert.ok(result.history[1]!.loss < result.history[0]!.loss, 'loss falls from epoch 1 to 2');
    assert.equal(result.validationCount, 300);
    assert.ok(result.history[1]!.valAccuracy! > 0.8);
    const evaluation = await evaluateModel(model, subset(mnist.test, 1000));
    assert.ok(evaluation.accuracy > 0.85, `accuracy ${evaluation.accuracy}`);
    model.dispose();
  });

  test('keeps the tensor count flat across epochs and frees everything it made', async () => {
    const before = tf.memory().numTensors;
    const model = createModel({ arch: 'mlp' });
    const perEpoch: number[] = [];
    await trainModel(model, subset(mnist.train, 1000), {
      epochs: 3,
      batchSize: 100,
      onProgress: (event: ProgressEvent) => {
        if (event.type === 'epoch') perEpoch.push(tf.memory().numTensors);
      },
    });
    assert.equal(new Set(perEpoch).size, 1, `tensors after each epoch: ${perEpoch}`);
    model.dispose();
    assert.equal(tf.memory().numTensors, before);
  });

  test('is reproducible with a fixed seed', async () => {
    const run = async () => {
      const model = createModel({ arch: 'mlp', seed: 3 });
      const result = await trainModel(model, subset(mnist.train, 600), { epochs: 1, batchSize: 50, seed: 3 });
      model.dispose();
      return result.history[0]!.loss;
    };
    assert.equal(await run(), await run());
  });

  test('adds extra examples to the training part only, each `repeat` times an epoch, and learns them', async () => {
    const model = createModel({ arch: 'mlp', seed: 5 });
    // An image MNIST never has (every pixel full ink), labelled 7: only the extra examples can teach it.
    const extra = { images: new Uint8Array(2 * 784).fill(255), labels: Uint8Array.of(7, 7), count: 2 };
    const result = await trainModel(model, subset(mnist.train, 1000), {
      epochs: 2,
      batchSize: 50,
      validationSplit: 0.1,
      extra: { data: extra, repeat: 10 },
    });
    assert.equal(result.validationCount, 100, 'validation is still the last 10% of the MNIST part');
    assert.equal(result.trainCount, 900 + 2 * 10);
    const { x } = toTensors(extra, [0]);
    const out = model.predict(x) as tf.Tensor;
    const probabilities = out.dataSync();
    assert.ok(probabilities[7]! > 0.9, `P(7) = ${probabilities[7]}`);
    tf.dispose([x, out]);
    model.dispose();
  });

  test('rejects a training set smaller than one batch', async () => {
    const model = createModel({ arch: 'mlp' });
    await assert.rejects(
      trainModel(model, subset(mnist.train, 100), { epochs: 1, batchSize: 128 }),
      /at least one full batch/,
    );
    model.dispose();
  });
});

describe('evaluation', () => {
  test('summarise computes accuracy and per-class precision, recall and F1', () => {
    const confusion = Array.from({ length: 10 }, () => new Array<number>(10).fill(0));
    confusion[0]![0] = 8;
    confusion[0]![1] = 2;
    confusion[1]![1] = 5;
    confusion[2]![0] = 2;
    const result = summarise(confusion, 0.5);
    assert.equal(result.count, 17);
    assert.equal(result.accuracy, 13 / 17);
    assert.equal(result.perClass[0]!.precision, 8 / 10);
    assert.equal(result.perClass[0]!.recall, 8 / 10);
    assert.equal(result.perClass[1]!.precision, 5 / 7);
    assert.equal(result.perClass[1]!.recall, 1);
    assert.equal(result.perClass[2]!.recall, 0);
    assert.equal(result.perClass[2]!.f1, 0);
    assert.equal(result.perClass[3]!.support, 0);
  });

  test('evaluateModel fills a confusion matrix whose rows are the true label counts', async () => {
    const model = createModel({ arch: 'mlp' });
    const test500 = subset(mnist.test, 500);
    const evaluation = await evaluateModel(model, test500, 5);
    const rowSums = evaluation.confusion.map((row) => row.reduce((a, b) => a + b, 0));
    const labelCounts = new Array<number>(10).fill(0);
    for (const label of test500.labels) labelCounts[label]!++;
    assert.deepEqual(rowSums, labelCounts);
    assert.equal(evaluation.worst.length, 5);
    assert.ok(evaluation.worst.every((w) => w.label !== w.predicted));
    assert.ok(evaluation.worst[0]!.confidence >= evaluation.worst[4]!.confidence);
    model.dispose();
  });
});

test('seededRandom is deterministic and uniform-ish', () => {
  const a = seededRandom(1);
  const b = seededRandom(1);
  const xs = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(
    xs.slice(0, 5),
    Array.from({ length: 5 }, () => b()),
  );
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(mean > 0.45 && mean < 0.55);
});

test('the cosine schedule holds the base rate for the first half, halves at three quarters and ends near zero; constant stays', () => {
  assert.equal(learningRateAt('cosine', 1e-3, 0, 100), 1e-3);
  assert.equal(learningRateAt('cosine', 1e-3, 49, 100), 1e-3);
  assert.ok(Math.abs(learningRateAt('cosine', 1e-3, 75, 100) - 5e-4) < 1e-12);
  assert.ok(learningRateAt('cosine', 1e-3, 99, 100) < 1e-5);
  assert.equal(learningRateAt('constant', 1e-3, 99, 100), 1e-3);
});

test('warmup-cosine rises linearly to the base rate over the first 15% of the run, then anneals it to zero', () => {
  assert.ok(Math.abs(learningRateAt('warmup-cosine', 1e-3, 0, 100) - 1e-3 / 15) < 1e-12);
  assert.ok(Math.abs(learningRateAt('warmup-cosine', 1e-3, 7, 100) - 8e-3 / 15) < 1e-12);
  assert.equal(learningRateAt('warmup-cosine', 1e-3, 15, 100), 1e-3);
  const rates = Array.from({ length: 100 }, (_, step) => learningRateAt('warmup-cosine', 1e-3, step, 100));
  assert.ok(rates.every((rate) => rate > 0 && rate <= 1e-3));
  assert.ok(rates.slice(15).every((rate, i, later) => i === 0 || rate < later[i - 1]!));
  assert.ok(Math.abs(learningRateAt('warmup-cosine', 1e-3, 57.5, 100) - 5e-4) < 1e-12);
  assert.ok(rates[99]! < 1e-6);
  // A short run's fractional warm-up never overshoots the base rate.
  for (const total of [1, 2, 3, 10, 13])
    for (let step = 0; step < total; step++)
      assert.ok(learningRateAt('warmup-cosine', 1e-3, step, total) <= 1e-3, `step ${step} of ${total}`);
});

test("the CNN's dropout draws a fresh mask each step, the same masks in every run", () => {
  const masks = (steps: number[]) => {
    const model = createModel({ arch: 'cnn' });
    const reseed = dropoutReseeder(model);
    const dropout = model.layers.find((layer) => layer.getClassName() === 'Dropout')!;
    const ones = tf.ones([4, 576]);
    const out = steps.map((step) => {
      reseed(step);
      return Array.from((dropout.apply(ones, { training: true }) as tf.Tensor).dataSync());
    });
    ones.dispose();
    model.dispose();
    return out;
  };
  const [first, again, next] = masks([0, 0, 1]);
  assert.deepEqual(first, again);
  assert.notDeepEqual(first, next);
  assert.deepEqual(masks([1])[0], next);
  // Roughly the layer's rate of units dropped, so the mask is a real dropout mask.
  const dropped = next!.filter((value) => value === 0).length / next!.length;
  assert.ok(dropped > 0.2 && dropped < 0.4, `dropped ${dropped}`);
});
