/**
 * The tests' trained model: a 2-epoch MLP (seed 42), trained once and cached
 * under test/artifacts/ so each suite, and the benches that measure what the
 * tests assert (`npm run bench -- verdict`), use the same weights without
 * training their own. No node:test here, so a bench may import it.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, tf } from '#lib/backend';
import type { MetricsInput } from '#lib/storage/store';
import { evaluateModel } from '#lib/training/evaluate';
import type { Mnist } from '#lib/training/mnist';
import { createModel } from '#lib/training/model';
import { trainModel } from '#lib/training/train-loop';
import * as tfl from '@tensorflow/tfjs-layers';

const CACHE_DIR = fileURLToPath(new URL('../artifacts/mlp-2epochs', import.meta.url));
const TRAINING = { epochs: 2, batchSize: 128, learningRate: 1e-3, schedule: 'cosine' as const, seed: 42 };

/** `mnist` is read only when there is no cached model to load. */
export async function cachedModel(mnist: () => Promise<Mnist>): Promise<{
  model: tfl.LayersModel;
  metrics: Omit<MetricsInput, 'version' | 'createdAt'>;
}> {
  await initBackend();
  try {
    const artifacts = JSON.parse(await readFile(path.join(CACHE_DIR, 'artifacts.json'), 'utf8'));
    const weights = await readFile(path.join(CACHE_DIR, 'weights.bin'));
    const model = await tfl.loadLayersModel(
      tf.io.fromMemory({
        ...artifacts.model,
        weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
      }),
    );
    return { model, metrics: artifacts.metrics };
  } catch {
    const { train, test } = await mnist();
    const model = createModel({ arch: 'mlp', seed: TRAINING.seed });
    const training = await trainModel(model, train, TRAINING);
    const metrics = {
      arch: 'mlp' as const,
      backend: tf.getBackend(),
      params: model.countParams(),
      training: { ...training, ...TRAINING },
      test: await evaluateModel(model, test),
    };
    await model.save(
      tf.io.withSaveHandler(async (a) => {
        await mkdir(CACHE_DIR, { recursive: true });
        await writeFile(
          path.join(CACHE_DIR, 'weights.bin'),
          Buffer.from(tf.io.CompositeArrayBuffer.join(a.weightData)),
        );
        const model = {
          modelTopology: a.modelTopology,
          weightSpecs: a.weightSpecs,
          format: a.format,
          generatedBy: a.generatedBy,
        };
        await writeFile(path.join(CACHE_DIR, 'artifacts.json'), JSON.stringify({ model, metrics }));
        return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(a) };
      }),
    );
    return { model, metrics };
  }
}
