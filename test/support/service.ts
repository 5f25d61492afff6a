/**
 * A real prediction service for tests: a trained MLP stored in a fresh
 * embedded S3, promoted, and served by the same handler factories, routing
 * and HTTP adapter as `npm start` (POST /feedback writes to the same bucket).
 * The trained model is the one test/support/test-model.ts caches.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { initBackend } from '#lib/backend';
import { createLogger, type Logger } from '#lib/log';
import { cachedLiveView } from '#lib/live/stored';
import { ModelCache } from '#lib/model-cache';
import { ModelStore, versionName } from '#lib/storage/store';
import { makeFeedbackHandler } from '../../functions/feedback/app.ts';
import { type AppDeps, makeHandler, type Handler } from '../../functions/predict/app.ts';
import { serveHandler } from '../../scripts/local/http-adapter.ts';
import { localHandler } from '../../scripts/local/routes.ts';
import { repoRoot, testBucket, testMnist, type TestBucket } from './env.ts';
import { cachedModel } from './test-model.ts';

let versionClock = Date.UTC(2026, 5, 1);
/** A unique, increasing version name for test saves. */
export function nextVersion(arch: 'mlp' | 'cnn' = 'mlp'): string {
  versionClock += 1000;
  return versionName(arch, new Date(versionClock));
}

/** Stores the trained test MLP as a new version (not promoted) and returns the version name. */
export async function storeTrainedModel(store: ModelStore): Promise<string> {
  const { model, metrics } = await cachedModel(testMnist);
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
