/**
 * A real prediction service for tests: a trained MLP stored in a fresh
 * embedded S3, promoted, and served by the same handler factories, routing
 * and HTTP adapter as `npm start` (POST /feedback writes to the same bucket).
 * The trained weights are cached under test/artifacts/ so each suite does not
 * train its own.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { initBackend, tf } from '#lib/backend';
import { createLogger, type Logger } from '#lib/log';
import { cachedLiveView } from '#lib/live/stored';
import { ModelCache } from '#lib/model-cache';
import { evaluateModel } from '#lib/training/evaluate';
import { createModel } from '#lib/training/model';
import { trainModel } from '#lib/training/train-loop';
import { ModelStore, versionName, type MetricsInput } from '#lib/storage/store';
import * as tfl from '@tensorflow/tfjs-layers';
import { makeFeedbackHandler } from '../../functions/feedback/app.ts';
import { type AppDeps, makeHandler, type Handler } from '../../functions/predict/app.ts';
import { serveHandler } from '../../scripts/local/http-adapter.ts';
import { localHandler } from '../../scripts/local/routes.ts';
import { repoRoot, testBucket, testMnist, type TestBucket } from './env.ts';

const CACHE_DIR = path.join(repoRoot, 'test', 'artifacts', 'mlp-2epochs');
const TRAINING = { epochs: 2, batchSize: 128, learningRate: 1e-3, schedule: 'cosine' as const, seed: 42 };

async function cachedModel(): Promise<{
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
    const { train, test } = await testMnist();
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

let versionClock = Date.UTC(2026, 5, 1);
/** A unique, increasing version name for test saves. */
export function nextVersion(arch: 'mlp' | 'cnn' = 'mlp'): string {
  versionClock += 1000;
  return versionName(arch, new Date(versionClock));
}

/** Stores the trained test MLP as a new version (not promoted) and returns the version name. */
export async function storeTrainedModel(store: ModelStore): Promise<string> {
  const { model, metrics } = await cachedModel();
  const version = nextVersion();
  await store.save(model, { ...metrics, version, createdAt: new Date(versionClock).toISOString() });
  return version;
}

export interface TestService {
  bucket: TestBucket;
  store: ModelStore;
  handler: Handler;
  cache: ModelCache;
  version: string | undefined;
  url: string;
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

/**
 * Serves the real handlers over HTTP on 127.0.0.1, with a promoted trained model unless `promote: false`.
 * POST /feedback is not throttled unless `throttleFeedback` is given.
 */
export async function startService(
  options: {
    promote?: boolean;
    refreshSeconds?: number;
    page?: string;
    capture?: AppDeps['capture'];
    throttleFeedback?: () => void;
  } = {},
): Promise<TestService> {
  const bucket = await testBucket();
  const store = new ModelStore(bucket.objects);
  let version: string | undefined;
  if (options.promote !== false) {
    version = await storeTrainedModel(store);
    await store.promote(version);
  }
  const logs: Record<string, unknown>[] = [];
  const logger: Logger = createLogger({ service: 'digitnet-test' }, (line) => logs.push(JSON.parse(line)), 'debug');
  const cache = new ModelCache({ store, refreshSeconds: options.refreshSeconds ?? 60, logger });
  const page = options.page ?? (await readFile(path.join(repoRoot, 'web', 'index.html'), 'utf8'));
  const handler = makeHandler({
    cache,
    logger,
    backendReady: () => initBackend(),
    page: async () => page,
    report: (v) => store.attachment(v, 'report.html'),
    capture: options.capture,
    live: cachedLiveView(store, logger),
  });
  const feedback = makeFeedbackHandler({
    objects: bucket.objects,
    logger,
    throttle: options.throttleFeedback ?? (() => {}),
  });
  // No operator routes here: the predict handler stands in for them behind a token no caller holds.
  const routes = localHandler({ predict: handler, feedback, operator: handler, token: randomUUID() });
  const served = await serveHandler(routes, {
    host: '127.0.0.1',
    port: 0,
    onError: (error) => logs.push({ level: 'error', error: String(error) }),
  });
  return { bucket, store, handler, cache, version, url: served.url, logs, close: served.close };
}
