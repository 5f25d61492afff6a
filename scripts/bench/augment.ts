/**
 * `npm run bench -- augment [--arch cnn] [--epochs N] [--per-kind N]`:
 * what `--augment` buys. Trains the same model twice, with and without
 * augmentation (same seed, shuffles and schedule), and scores both on the
 * MNIST test set and on the first N test digits re-rendered as real uploads
 * (canvas drawings and paper photos, as in the prediction-service tests),
 * preprocessed the way the service does it. JSON lines, machine first.
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, tf } from '#lib/backend';
import { classify } from '#lib/classify';
import { readConfig } from '#lib/config';
import { loadMnist, type MnistSplit } from '#lib/training/mnist';
import { evaluateModel } from '#lib/training/evaluate';
import { MNIST_PIXELS } from '#lib/mnist-shape';
import { createModel, isArch } from '#lib/training/model';
import { trainModel, TRAINING_DEFAULTS } from '#lib/training/train-loop';
import { preprocessImage } from '#lib/image/preprocess';
import { canvasDrawing, paperPhoto } from './rerender.ts';
import { machine, round } from './stats.ts';

const emit = (record: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(record)}\n`);

function wholeNumber(name: string, raw: string, min: number, max: number): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max)
    throw new Error(`${name} must be a whole number from ${min} to ${max}; got "${raw}"`);
  return value;
}

/** The first `count` test digits rendered with `render` and preprocessed as an upload would be. */
async function uploads(
  split: MnistSplit,
  render: (digit: Uint8Array, seed: number) => Promise<Buffer>,
  count: number,
): Promise<Float32Array[]> {
  const inputs: Float32Array[] = [];
  for (let i = 0; i < count; i++) {
    const image = await render(split.images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS), i + 1);
    inputs.push((await preprocessImage(image)).input);
  }
  return inputs;
}

/** Share of `inputs` (the first test digits, in order) classified as their test label. */
function accuracy(model: tfl.LayersModel, inputs: Float32Array[], labels: Uint8Array): number {
  let correct = 0;
  for (let start = 0; start < inputs.length; start += 100) {
    const predictions = classify(model, inputs.slice(start, start + 100));
    predictions.forEach((p, k) => (correct += p.digit === labels[start + k] ? 1 : 0));
  }
  return correct / inputs.length;
}

export async function benchAugment(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      arch: { type: 'string', default: 'cnn' },
      epochs: { type: 'string', default: '5' },
      'per-kind': { type: 'string', default: '500' },
    },
  });
  const arch = values.arch;
  if (!isArch(arch)) throw new Error(`--arch must be mlp or cnn; got "${arch}"`);
  const epochs = wholeNumber('--epochs', values.epochs!, 1, 200);
  const perKind = wholeNumber('--per-kind', values['per-kind']!, 1, 10_000);

  const config = readConfig();
  const backend = await initBackend(undefined, config.tfjsBackend);
  const data = await loadMnist({
    dir: config.mnistDir && path.resolve(config.mnistDir),
    cacheDir: path.join(config.dataDir, 'mnist'),
  });
  emit({ bench: 'augment', machine: machine(), backend, arch, epochs, perKind });
  const kinds = {
    canvas: await uploads(data.test, canvasDrawing, perKind),
    photo: await uploads(data.test, paperPhoto, perKind),
  };

  for (const augment of [false, true]) {
    const model = createModel({ arch });
    const training = await trainModel(model, data.train, { epochs, ...TRAINING_DEFAULTS[arch], augment });
    const test = await evaluateModel(model, data.test, 0);
    emit({
      augment,
      mnistTestAccuracy: test.accuracy,
      canvasAccuracy: accuracy(model, kinds.canvas, data.test.labels),
      photoAccuracy: accuracy(model, kinds.photo, data.test.labels),
      secondsPerEpoch: round(training.secondsPerEpoch),
      loadAverage: round(os.loadavg()[0]!),
    });
    model.dispose();
  }
  tf.disposeVariables();
}
