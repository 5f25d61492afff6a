import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend } from '#lib/backend';
import { UnavailableError } from '#lib/errors';
import { createLogger } from '#lib/log';
import { ModelCache } from '#lib/model-cache';
import type { ObjectStore } from '#lib/objects';
import { ModelStore } from '#lib/store';
import { testBucket, type TestBucket } from './support/env.ts';
import { storeTrainedModel } from './support/service.ts';

before(() => initBackend());

/** Wraps a real bucket: counts reads per key and can be switched off like an unreachable S3. */
function instrumented(inner: ObjectStore) {
  const reads = new Map<string, number>();
  const state = { down: false };
  const guard = (key: string) => {
    if (state.down) throw new Error('connect ECONNREFUSED (injected)');
    reads.set(key, (reads.get(key) ?? 0) + 1);
  };
  const objects: ObjectStore = {
    get: async (key) => (guard(key), inner.get(key)),
    getIfChanged: async (key, etag) => (guard(key), inner.getIfChanged(key, etag)),
    exists: async (key) => (guard(key), inner.exists(key)),
    list: async (prefix) => (guard(prefix), inner.list(prefix)),
    put: async (key, body, type) => (guard(key), inner.put(key, body, type)),
  };
  return { objects, reads, state };
}

async function setup(refreshSeconds = 60) {
  const bucket: TestBucket = await testBucket();
  const store = new ModelStore(bucket.objects);
  const probe = instrumented(bucket.objects);
  const logs: Record<string, unknown>[] = [];
  let now = 0;
  const cache = new ModelCache({
    store: new ModelStore(probe.objects),
    refreshSeconds,
    logger: createLogger({}, (line) => logs.push(JSON.parse(line)), 'debug'),
    now: () => now,
  });
  return { bucket, store, probe, logs, cache, advance: (ms: number) => (now += ms) };
}

describe('ModelCache', () => {
  test('concurrent first requests share one load', async () => {
    const { store, probe, cache } = await setup();
    const version = await storeTrainedModel(store);
    await store.promote(version);
    const served = await Promise.all(Array.from({ length: 20 }, () => cache.get()));
    assert.ok(served.every((s) => s === served[0]));
    assert.equal(probe.reads.get('models/latest.json'), 1);
    assert.equal(probe.reads.get(`models/${version}/weights.bin`), 1);
  });

  test('re-checks the pointer only after refreshSeconds, and then swaps to a newly promoted version', async () => {
    const { store, probe, cache, advance } = await setup(30);
    const first = await storeTrainedModel(store);
    await store.promote(first);
    assert.equal((await cache.get()).version, first);
    const second = await storeTrainedModel(store);
    await store.promote(second);
    advance(29_000);
    assert.equal((await cache.get()).version, first, 'not re-checked before refreshSeconds');
    assert.equal(probe.reads.get('models/latest.json'), 1);
    advance(1_000);
    await cache.get();
    await cache.refresh();
    assert.equal((await cache.get()).version, second);
  });

  test('an unchanged pointer is not reloaded', async () => {
    const { store, probe, cache, advance } = await setup(1);
    const version = await storeTrainedModel(store);
    await store.promote(version);
    await cache.get();
    for (let i = 0; i < 3; i++) {
      advance(1_000);
      await cache.get();
      await cache.refresh();
    }
    assert.equal(probe.reads.get(`models/${version}/weights.bin`), 1);
  });

  test('a promoted version that fails to load never replaces the serving one, and the failure is logged', async () => {
    const { bucket, store, cache, logs, advance } = await setup(1);
    const good = await storeTrainedModel(store);
    await store.promote(good);
    const before = await cache.get();
    const bad = await storeTrainedModel(store);
    await store.promote(bad);
    const weights = (await bucket.objects.get(`models/${bad}/weights.bin`))!.body;
    await bucket.objects.put(`models/${bad}/weights.bin`, weights.subarray(0, 1000));
    advance(1_000);
    await cache.get();
    await cache.refresh();
    const after = await cache.get();
    assert.equal(after.version, good);
    assert.equal(after.model, before.model, 'the old model object is still the one serving');
    assert.ok(logs.some((l) => l.level === 'error' && l.failedVersion === bad && l.modelVersion === good));
  });

  test('storage unreachable at cold start is a 503 with Retry-After, and the cache recovers by itself', async () => {
    const { store, probe, cache } = await setup();
    const version = await storeTrainedModel(store);
    await store.promote(version);
    probe.state.down = true;
    await assert.rejects(cache.get(), (error: unknown) => error instanceof UnavailableError && error.status === 503 && error.retryAfterSeconds! > 0);
    probe.state.down = false;
    assert.equal((await cache.get()).version, version);
  });

  test('storage unreachable during a refresh keeps the loaded model serving', async () => {
    const { store, probe, cache, advance, logs } = await setup(1);
    const version = await storeTrainedModel(store);
    await store.promote(version);
    await cache.get();
    probe.state.down = true;
    advance(5_000);
    assert.equal((await cache.get()).version, version);
    await cache.refresh();
    assert.equal((await cache.get()).version, version);
    assert.ok(logs.some((l) => l.message === 'could not read the model pointer'));
  });

  test('no promoted model is a 503 that says how to train', async () => {
    const { cache } = await setup();
    await assert.rejects(cache.get(), /npm run train/);
  });
});
