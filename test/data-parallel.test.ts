import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '#lib/backend';
import { evaluateModel } from '#lib/training/evaluate';
import { createModel } from '#lib/training/model';
import { TrainingWorkerError, trainDataParallel, typeScriptWorker } from '#lib/training/data-parallel';
import { shardOf } from '#lib/training/replica';
import { planTraining, trainModel, type TrainOptions } from '#lib/training/train-loop';
import type { Mnist } from '#lib/training/mnist';
import { testMnist } from './support/env.ts';

let mnist: Mnist;
before(async () => {
  await initBackend(undefined, 'wasm');
  mnist = await testMnist();
});

function subset(split: Mnist['train'], n: number): Mnist['train'] {
  return { images: split.images.subarray(0, n * 784), labels: split.labels.subarray(0, n), count: n };
}

/** Every weight of a model trained with `options`, and the run's history. */
async function trained(options: TrainOptions, count: number) {
  const model = createModel({ arch: 'mlp', seed: 7 });
  const result = await trainModel(model, subset(mnist.train, count), { seed: 7, ...options });
  const weights = model.getWeights().map((w) => w.dataSync() as Float32Array);
  const accuracy = (await evaluateModel(model, subset(mnist.test, 1000), 0)).accuracy;
  model.dispose();
  return { result, weights, accuracy };
}

describe('trainModel on one thread', () => {
  test('gives bit-for-bit the same weights twice from the same seed', async () => {
    const options = { epochs: 1, batchSize: 50, threads: 1, augment: true };
    const first = await trained(options, 600);
    const second = await trained(options, 600);
    assert.equal(first.result.threads, 1);
    assert.deepEqual(second.weights, first.weights);
  });
});

describe('trainModel on two threads', () => {
  test('trains a subset to a sensible accuracy, reports every epoch and leaves no tensors behind', async () => {
    const tensors = tf.memory().numTensors;
    const events: string[] = [];
    const { result, accuracy } = await trained(
      {
        epochs: 2,
        batchSize: 64,
        threads: 2,
        onProgress: (event) => events.push(`${event.type} ${event.epoch}`),
      },
      3000,
    );
    assert.equal(result.threads, 2);
    assert.equal(result.history.length, 2);
    assert.equal(result.validationCount, 300);
    assert.ok(result.history[1]!.loss < result.history[0]!.loss, 'loss falls from epoch 1 to 2');
    assert.ok(result.history[1]!.valAccuracy! > 0.8, `validation accuracy ${result.history[1]!.valAccuracy}`);
    assert.ok(accuracy > 0.85, `test accuracy ${accuracy}`);
    assert.deepEqual(
      events.filter((e) => e.startsWith('epoch')),
      ['epoch 1', 'epoch 2'],
    );
    assert.ok(events.includes('batch 1') && events.includes('batch 2'), 'batch progress from the workers');
    assert.equal(tf.memory().numTensors, tensors);
  });

  test('takes the steps one thread takes, up to float rounding, augmentation included', async () => {
    const options = { epochs: 1, batchSize: 50, augment: true };
    const one = await trained({ ...options, threads: 1 }, 1000);
    const two = await trained({ ...options, threads: 2 }, 1000);
    const [a, b] = [one.result.history[0]!, two.result.history[0]!];
    assert.equal(b.accuracy, a.accuracy);
    assert.equal(b.valAccuracy, a.valAccuracy);
    assert.ok(Math.abs(b.loss - a.loss) < 1e-5, `loss ${b.loss} against ${a.loss}`);
    let largest = 0;
    for (const [i, w] of one.weights.entries())
      for (const [j, v] of w.entries()) largest = Math.max(largest, Math.abs(v - two.weights[i]![j]!));
    assert.ok(largest < 1e-4, `weights differ by up to ${largest}`);
  });
});

test('the CNN trains on two threads: its replicas are rebuilt from the model’s JSON, dropout included', async () => {
  const model = createModel({ arch: 'cnn', seed: 3 });
  const before = model.getWeights().map((w) => w.dataSync().slice());
  const result = await trainModel(model, subset(mnist.train, 640), { epochs: 1, batchSize: 64, threads: 2 });
  assert.equal(result.threads, 2);
  assert.ok(Number.isFinite(result.history[0]!.loss) && Number.isFinite(result.history[0]!.valLoss!));
  const after = model.getWeights().map((w) => w.dataSync());
  assert.ok(
    after.every((w, i) => w.some((v, j) => v !== before[i]![j])),
    'every weight changed',
  );
  model.dispose();
});

describe('a failing worker', () => {
  const run = (fault: 'throw' | 'exit') => {
    const model = createModel({ arch: 'mlp', seed: 1 });
    const options = { epochs: 3, batchSize: 50 };
    const plan = planTraining(subset(mnist.train, 500), options);
    const entry = typeScriptWorker(new URL(`./support/failing-train-worker.ts?fault=${fault}`, import.meta.url));
    return trainDataParallel(model, plan, options, 2, entry).finally(() => model.dispose());
  };

  test('that throws fails the run with its error, after its peer waiting at the barrier has stopped', async () => {
    await assert.rejects(run('throw'), (error: Error) => {
      assert.ok(error instanceof TrainingWorkerError);
      assert.equal(error.message, 'training worker 2 of 2 failed: injected failure in rank 1');
      return true;
    });
  });

  test('that exits mid-run fails the run and says so', async () => {
    await assert.rejects(run('exit'), {
      name: 'TrainingWorkerError',
      message: 'training worker 2 of 2 failed: it exited (code 3) before the run was done',
    });
  });
});

test('shards split a batch into contiguous shares that differ by at most one', () => {
  assert.deepEqual(
    [0, 1, 2].map((rank) => shardOf(128, rank, 3)),
    [
      [0, 42],
      [42, 85],
      [85, 128],
    ],
  );
  assert.deepEqual(shardOf(64, 1, 2), [32, 64]);
});
