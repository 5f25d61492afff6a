/**
 * `npm run bench -- jpeg-scale [--per-kind N]`: what decoding a JPEG at
 * reduced scale costs in accuracy and saves in time. A 2-epoch MLP (the
 * tests' model) classifies the first N MNIST test digits rendered as 320×240
 * paper photos (as the tests and the augment bench render them, and with the
 * digit drawn 3× smaller), each preprocessed through jpeg-js at full size
 * (the decoder before the scaled one), through the project's decoder at
 * 1/1, 1/2, 1/4 and 1/8, and as the service does it (the scale for the
 * photo's size, decoded again finer when the digit comes out small). JSON
 * lines, machine first.
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import jpeg from 'jpeg-js';
import { initBackend } from '#lib/backend';
import { classify } from '#lib/classify';
import { readConfig } from '#lib/config';
import type { JpegScale } from '#lib/image/jpeg';
import { toMnistInput } from '#lib/image/mnist-transform';
import { preprocessImage } from '#lib/image/preprocess';
import { MNIST_PIXELS } from '#lib/mnist-shape';
import { loadMnist } from '#lib/training/mnist';
import { createModel } from '#lib/training/model';
import { trainModel } from '#lib/training/train-loop';
import { paperPhoto } from './rerender.ts';
import { machine, percentile, round } from './stats.ts';

const emit = (record: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(record)}\n`);

type Preprocess = (bytes: Buffer) => Promise<Float32Array>;

const decoders: Record<string, Preprocess> = {
  'jpeg-js, full size': async (bytes) => toMnistInput({ ...jpeg.decode(bytes), channels: 4 }),
  ...Object.fromEntries(
    ([1, 2, 4, 8] as JpegScale[]).map((scale) => [
      `scaled, 1/${scale}`,
      async (bytes: Buffer) => (await preprocessImage(bytes, { jpegScale: scale })).input,
    ]),
  ),
  'as served: by size, finer for a small digit': async (bytes) => (await preprocessImage(bytes)).input,
};

export async function benchJpegScale(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { 'per-kind': { type: 'string', default: '500' } } });
  const perKind = Number(values['per-kind']);
  if (!(Number.isInteger(perKind) && perKind > 0)) throw new Error('--per-kind must be a positive whole number');
  const config = readConfig();
  const backend = await initBackend(undefined, config.tfjsBackend);
  const { train, test } = await loadMnist({
    dir: config.mnistDir && path.resolve(config.mnistDir),
    cacheDir: path.join(config.dataDir, 'mnist'),
  });
  emit({ bench: 'jpeg-scale', machine: machine(), backend, perKind });
  const model = createModel({ arch: 'mlp', seed: 42 });
  await trainModel(model, train, { epochs: 2, batchSize: 128, learningRate: 1e-3, schedule: 'cosine', seed: 42 });
  const kinds: Record<string, [number, number]> = {
    'paper photo, digit 120-210 px': [120, 210],
    'paper photo, digit 40-70 px': [40, 70],
  };
  for (const [kind, digitSide] of Object.entries(kinds)) {
    const photos: Buffer[] = [];
    for (let i = 0; i < perKind; i++) {
      photos.push(await paperPhoto(test.images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS), i + 1, digitSide));
    }
    for (const [decoder, preprocess] of Object.entries(decoders)) {
      const inputs: Float32Array[] = [];
      const times: number[] = [];
      let empty = 0;
      for (const photo of photos) {
        const started = performance.now();
        try {
          inputs.push(await preprocess(photo));
        } catch {
          // A digit the transform cannot find counts as wrong.
          inputs.push(new Float32Array(MNIST_PIXELS));
          empty++;
        }
        times.push(performance.now() - started);
      }
      let correct = 0;
      for (let start = 0; start < perKind; start += 100) {
        const predictions = classify(model, inputs.slice(start, start + 100));
        predictions.forEach((p, k) => (correct += p.digit === test.labels[start + k] ? 1 : 0));
      }
      emit({
        kind,
        decoder,
        accuracy: round(correct / perKind, 4),
        noDigitFound: empty,
        preprocessP50Ms: round(percentile(times, 50), 3),
        loadAverage: round(os.loadavg()[0]!),
      });
    }
  }
  model.dispose();
}
