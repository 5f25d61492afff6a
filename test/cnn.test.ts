import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, tf } from '#lib/backend';
import { seededRandom, toTensors } from '#lib/training/batches';
import { evaluateModel } from '#lib/training/evaluate';
import { createModel } from '#lib/training/model';
import { trainModel, TRAINING_DEFAULTS, type TrainResult } from '#lib/training/train-loop';
import type { Mnist } from '#lib/training/mnist';
import { testMnist } from './support/env.ts';

let mnist: Mnist;
before(async () => {
  // Forced: the wasm backend with the project's gradient kernels is what trains where tfjs-node cannot install.
  await initBackend(['wasm'], 'wasm');
  mnist = await testMnist();
});

function subset(split: Mnist['train'], n: number): Mnist['train'] {
  return { images: split.images.subarray(0, n * 784), labels: split.labels.subarray(0, n), count: n };
}

const firstN = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('the CNN', () => {
  test('is a strided 5×5 conv, then 3×3 convs in pairs with a max-pool after each, dropout and a softmax: 38,570 parameters', () => {
    const model = createModel({ arch: 'cnn' });
    assert.deepEqual(
      model.layers.map((layer) => layer.getClassName()),
      ['Conv2D', 'Conv2D', 'MaxPooling2D', 'Conv2D', 'Conv2D', 'MaxPooling2D', 'Flatten', 'Dropout', 'Dense'],
    );
    assert.deepEqual(model.layers[5]!.outputShape, [null, 3, 3, 64]);
    const conv = (filters: number, size: number, inChannels: number) => size * size * inChannels * filters + filters;
    assert.equal(
      model.countParams(),
      conv(16, 5, 1) + conv(32, 3, 16) + conv(32, 3, 32) + conv(64, 3, 32) + 3 * 3 * 64 * 10 + 10,
    );
    assert.equal(model.countParams(), 38_570);
    assert.deepEqual(model.outputs[0]!.shape, [null, 10]);
    model.dispose();
  });

  test('outputs a probability distribution per image', () => {
    const model = createModel({ arch: 'cnn' });
    const { x, y } = toTensors(mnist.test, firstN(5));
    const out = model.predict(x) as tf.Tensor;
    assert.deepEqual(out.shape, [5, 10]);
    const probabilities = out.dataSync();
    assert.ok(probabilities.every((p) => p >= 0 && p <= 1));
    const sums = tf.sum(out, -1);
    for (const sum of sums.arraySync() as number[]) assert.ok(Math.abs(sum - 1) < 1e-5, `sum ${sum}`);
    tf.dispose([x, y, out, sums]);
    model.dispose();
  });

  describe('trained for one epoch on 2,000 images', () => {
    let model: tfl.LayersModel;
    let result: TrainResult;
    let tensorsBefore: number;
    const tensorsPerBatch: number[] = [];

    before(async () => {
      tensorsBefore = tf.memory().numTensors;
      model = createModel({ arch: 'cnn' });
      result = await trainModel(model, subset(mnist.train, 2000), {
        epochs: 1,
        batchSize: 32,
        learningRate: TRAINING_DEFAULTS.cnn.learningRate,
        onProgress: (event) => {
          if (event.type === 'batch') tensorsPerBatch.push(tf.memory().numTensors);
        },
      });
    });

    test('learns: test accuracy far above chance, with the same tensor count after every batch', async (t) => {
      assert.equal(result.trainCount, 1800);
      const evaluation = await evaluateModel(model, subset(mnist.test, 1000), 0);
      t.diagnostic(`accuracy on 1,000 test images ${evaluation.accuracy}`);
      assert.ok(evaluation.accuracy > 0.8, `accuracy ${evaluation.accuracy}`);
      assert.ok(tensorsPerBatch.length > 10);
      assert.equal(new Set(tensorsPerBatch).size, 1, `tensor counts ${[...new Set(tensorsPerBatch)].join(', ')}`);
    });

    test('a save → load round trip predicts exactly the same', async () => {
      let artifacts: tf.io.ModelArtifacts | undefined;
      await model.save(
        tf.io.withSaveHandler(async (saved) => {
          artifacts = saved;
          return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
        }),
      );
      const loaded = await tfl.loadLayersModel(tf.io.fromMemory(artifacts!));
      const { x, y } = toTensors(mnist.test, firstN(64));
      const [a, b] = [model.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
      assert.deepEqual(await b.data(), await a.data());
      tf.dispose([x, y, a, b]);
      loaded.dispose();
    });

    test('the same weights predict the same on the cpu backend as on wasm (within 1e-4)', async () => {
      const { x, y } = toTensors(mnist.test, firstN(64));
      const out = model.predict(x) as tf.Tensor;
      const onWasm = await out.data();
      const pixels = await x.data();
      const weights = await Promise.all(
        model.getWeights().map(async (w) => ({ values: await w.data(), shape: w.shape })),
      );
      tf.dispose([x, y, out]);

      await tf.setBackend('cpu');
      try {
        const copy = createModel({ arch: 'cnn' });
        const values = weights.map((w) => tf.tensor(w.values, w.shape));
        copy.setWeights(values);
        tf.dispose(values);
        const onCpu = tf.tidy(() => (copy.predict(tf.tensor4d(pixels, [64, 28, 28, 1])) as tf.Tensor).dataSync());
        let worst = 0;
        for (let i = 0; i < onWasm.length; i++) worst = Math.max(worst, Math.abs(onWasm[i]! - onCpu[i]!));
        assert.ok(worst < 1e-4, `largest difference ${worst}`);
        copy.dispose();
      } finally {
        await tf.setBackend('wasm');
      }
    });

    test('training frees every tensor it made once the model is disposed', () => {
      model.dispose();
      assert.equal(tf.memory().numTensors, tensorsBefore);
    });
  });
});

describe('augmentation (toTensors with a random stream)', () => {
  const indices = firstN(32);
  const pixelsOf = (distort?: () => number) => {
    const { x, y } = toTensors(mnist.train, indices, distort);
    const pixels = x.dataSync<'float32'>();
    tf.dispose([x, y]);
    return pixels;
  };

  test('keeps the shapes and the labels, changes the pixels, and a seed gives the same images', () => {
    const plain = toTensors(mnist.train, indices);
    const first = toTensors(mnist.train, indices, seededRandom(5));
    const again = toTensors(mnist.train, indices, seededRandom(5));
    const other = toTensors(mnist.train, indices, seededRandom(6));
    assert.deepEqual(first.x.shape, plain.x.shape);
    assert.deepEqual(first.y.dataSync(), plain.y.dataSync());
    assert.deepEqual(first.x.dataSync(), again.x.dataSync());
    assert.notDeepEqual(first.x.dataSync(), plain.x.dataSync());
    assert.notDeepEqual(first.x.dataSync(), other.x.dataSync());
    const pixels = first.x.dataSync();
    assert.ok(pixels.every((p) => p >= 0 && p <= 1));
    tf.dispose([plain.x, plain.y, first.x, first.y, again.x, again.y, other.x, other.y]);
  });

  test('with every draw at the middle of its range (no distortion), image i is exactly image i', () => {
    assert.deepEqual(
      pixelsOf(() => 0.5),
      pixelsOf(),
    );
  });

  test('shifts, rotates and scales about the centre as drawn', () => {
    // One lit pixel 6 rows above the centre; draws come in the order rotation, scale, shift x, shift y.
    const image = new Uint8Array(784);
    image[8 * 28 + 14] = 255;
    const data = { images: image, labels: new Uint8Array([3]), count: 1 };
    const litAt = (draws: number[]) => {
      let next = 0;
      const { x, y } = toTensors(data, [0], () => draws[next++]!);
      const pixels = x.dataSync();
      tf.dispose([x, y]);
      let mass = 0;
      let cx = 0;
      let cy = 0;
      pixels.forEach((v, p) => {
        mass += v;
        cx += v * (p % 28);
        cy += v * Math.floor(p / 28);
      });
      return [cx / mass, cy / mass];
    };
    const close = (actual: number[], expected: number[]) =>
      assert.ok(Math.hypot(actual[0]! - expected[0]!, actual[1]! - expected[1]!) < 0.05, `${actual} vs ${expected}`);
    close(litAt([0.5, 0.5, 1, 0]), [16, 6]);
    // The pixel sits at (+0.5, −5.5) from the centre (13.5, 13.5); +10° turns it towards +x.
    const [cos, sin] = [Math.cos(Math.PI / 18), Math.sin(Math.PI / 18)];
    close(litAt([1, 0.5, 0.5, 0.5]), [13.5 + 0.5 * cos + 5.5 * sin, 13.5 + 0.5 * sin - 5.5 * cos]);
    close(litAt([0.5, 1, 0.5, 0.5]), [13.5 + 0.5 * 1.1, 13.5 - 5.5 * 1.1]);
  });

  test('moves the ink by no more than the shift, rotation and scale allow', () => {
    const centreOfMass = (data: Float32Array, i: number) => {
      let mass = 0;
      let x = 0;
      let y = 0;
      for (let p = 0; p < 784; p++) {
        const v = data[i * 784 + p]!;
        mass += v;
        x += v * (p % 28);
        y += v * Math.floor(p / 28);
      }
      return [x / mass, y / mass] as const;
    };
    const plain = pixelsOf();
    const distorted = pixelsOf(seededRandom(3));
    for (const i of indices) {
      const [x0, y0] = centreOfMass(plain, i);
      const [x1, y1] = centreOfMass(distorted, i);
      // ±2 px of shift plus what a 10° turn and 10% scale move a centre of mass that is ~1 px off the image centre.
      assert.ok(Math.hypot(x1 - x0, y1 - y0) < 2 * Math.SQRT2 + 1, `image ${i} moved ${Math.hypot(x1 - x0, y1 - y0)}`);
    }
  });

  test('trainModel with augment records it and leaves no tensors behind', async () => {
    const before = tf.memory().numTensors;
    const model = createModel({ arch: 'cnn' });
    const result = await trainModel(model, subset(mnist.train, 320), {
      epochs: 1,
      batchSize: 32,
      augment: true,
      validationSplit: 0,
    });
    assert.equal(result.augment, true);
    assert.ok(Number.isFinite(result.history[0]!.loss));
    model.dispose();
    assert.equal(tf.memory().numTensors, before);
  });
});
