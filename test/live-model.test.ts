import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cachedLiveView, LIVE_CACHE_MS, refreshLiveSummaries } from '#lib/live/stored';
import { wilsonInterval } from '#lib/live/summary';
import { createLogger } from '#lib/log';
import { MNIST_PIXELS } from '#lib/mnist-shape';
import { makeHandler } from '../functions/predict/app.ts';
import { apiEvent, postJson } from './support/events.ts';
import { writeTraffic } from './support/live.ts';
import { startService, type TestService } from './support/service.ts';

let service: TestService;
before(async () => {
  service = await startService();
});
after(() => service.close());

const logger = createLogger({}, () => {});
const modelBody = async (handler: TestService['handler']) => {
  const result = await handler(apiEvent('GET', '/model'));
  assert.equal(result.statusCode, 200, String(result.body));
  return JSON.parse(String(result.body));
};

describe('GET /model live', () => {
  test('is null while the serving version has no live.json', async () => {
    assert.equal((await modelBody(service.handler)).live, null);
  });

  test('gives the serving version’s stored live summary, re-read once the cache period has passed', async () => {
    let clock = 0;
    const handler = makeHandler({
      cache: service.cache,
      logger,
      backendReady: async () => {},
      page: async () => '',
      live: cachedLiveView(service.store, logger, () => clock),
    });
    assert.equal((await modelBody(handler)).live, null);
    const version = service.version!;
    const at = new Date(Date.now() - 60_000);
    await writeTraffic(service.bucket.objects, [
      { version, digit: 3, confidence: 0.97, at, feedback: { correct: true } },
      { version, digit: 1, confidence: 0.51, at, feedback: { label: 7 } },
      { version, digit: 8, confidence: 0.88, at },
    ]);
    const updatedAt = new Date();
    await refreshLiveSummaries(service.bucket.objects, updatedAt);
    assert.equal((await modelBody(handler)).live, null, 'cached until the period ends');
    clock += LIVE_CACHE_MS;
    const { low, high } = wilsonInterval(1, 2)!;
    assert.deepEqual((await modelBody(handler)).live, {
      predictions: 3,
      feedback: 2,
      correct: 1,
      corrected: 1,
      accuracy: 0.5,
      low,
      high,
      updatedAt: updatedAt.toISOString(),
    });
  });

  test('a malformed live.json is null, and GET /model still answers 200', async () => {
    await service.store.attach(service.version!, 'live.json', '{"predictions": "many"}', 'application/json');
    const handler = makeHandler({
      cache: service.cache,
      logger,
      backendReady: async () => {},
      page: async () => '',
      live: cachedLiveView(service.store, logger),
    });
    assert.equal((await modelBody(handler)).live, null);
  });

  test('POST /predict never reads it', async () => {
    let reads = 0;
    const handler = makeHandler({
      cache: service.cache,
      logger,
      backendReady: async () => {},
      page: async () => '',
      live: async () => {
        reads++;
        return null;
      },
    });
    const result = await handler(
      postJson('/predict', { pixels: Array.from({ length: MNIST_PIXELS }, (_, i) => i % 255) }),
    );
    assert.equal(result.statusCode, 200, String(result.body));
    assert.equal(reads, 0);
    await modelBody(handler);
    assert.equal(reads, 1);
  });
});
