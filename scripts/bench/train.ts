/**
 * `npm run bench -- train [--arch mlp|cnn|all] [--epochs N] [--batch-size N]`:
 * trains on the full 60,000 images on the active backend and prints ms/step
 * and s/epoch per architecture.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend, tf } from '#lib/backend';
import { readConfig } from '#lib/config';
import { loadMnist } from '#lib/training/mnist';
import { evaluateModel } from '#lib/training/evaluate';
import { ARCHS, createModel, type Arch } from '#lib/training/model';
import { TRAINING_DEFAULTS, trainModel } from '#lib/training/train-loop';
import { machine, round } from './stats.ts';

export async function benchTrain(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      arch: { type: 'string', default: 'all' },
      epochs: { type: 'string', default: '1' },
      'batch-size': { type: 'string' },
    },
  });
  const archs: Arch[] = values.arch === 'all' ? [...ARCHS] : [values.arch as Arch];
  const epochs = Number(values.epochs);
  const config = readConfig();
  const backend = await initBackend(undefined, config.tfjsBackend);
  const data = await loadMnist({
    dir: config.mnistDir && path.resolve(config.mnistDir),
    cacheDir: path.join(config.dataDir, 'mnist'),
  });
  process.stdout.write(`${JSON.stringify({ bench: 'train', machine: machine(), backend })}\n`);
  for (const arch of archs) {
    // The same defaults as `npm run train`, so the accuracy column matches what users get.
    const { learningRate, batchSize: defaultBatch } = TRAINING_DEFAULTS[arch];
    const batchSize = values['batch-size'] ? Number(values['batch-size']) : defaultBatch;
    const model = createModel({ arch });
    const result = await trainModel(model, data.train, { epochs, batchSize, learningRate });
    const test = await evaluateModel(model, data.test);
    const steps = Math.floor(result.trainCount / batchSize);
    process.stdout.write(
      `${JSON.stringify({
        arch,
        backend,
        params: model.countParams(),
        batchSize,
        epochs,
        msPerStep: round((result.secondsPerEpoch * 1000) / steps),
        secondsPerEpoch: round(result.secondsPerEpoch),
        secondsPer60kEpoch: round((result.secondsPerEpoch * 60_000) / result.trainCount),
        testAccuracy: test.accuracy,
      })}\n`,
    );
    model.dispose();
  }
  tf.disposeVariables();
}
