import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { initBackend } from '#lib/backend';
import { UnavailableError } from '#lib/errors';
import { createLogger } from '#lib/log';
import { ModelCache } from '#lib/model-cache';
import { createS3Client, S3ObjectStore, type ObjectStore } from '#lib/storage/objects';
import { LATEST_KEY, ModelStore } from '#lib/storage/store';
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
    get: async (key, options) => {
      guard(key);
      return inner.get(key, options);
    },
    getIfChanged: async (key, etag, options) => {
      guard(key);
      return inner.getIfChanged(key, etag, options);
    },
    exists: async (key) => {
      guard(key);
      return inner.exists(key);
    },
    list: async (prefix) => {
      guard(prefix);
      return inner.list(prefix);
    },
    put: async (key, body, type, condition) => {
      guard(key);
      return inner.put(key, body, type, condition);
    },
  };
  return { objects, reads, state };
}

/** A TCP server on 127.0.0.1 that accepts every connection and never answers: a stalled, not a refused, S3. */
async function stalledS3() {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  const { port } = server.address() as net.AddressInfo;
  let accepted = 0;
  server.on('connection', () => accepted++);
  const client = createS3Client({
    bucket: 'stalled',
    endpoint: `http://127.0.0.1:${port}`,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    timeouts: { connectMs: 300, requestMs: 300 },
  });
  after(() => client.destroy());
  return { objects: new S3ObjectStore(client, 'stalled'), accepted: () => accepted };
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
    await assert.rejects(
      cache.get(),
      (error: unknown) => error instanceof UnavailableError && error.status === 503 && error.retryAfterSeconds! > 0,
    );
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

  for (const [what, body] of [
    ['null', 'null'],
    ['an empty object', '{}'],
    ['not JSON', '\u0000garbage{'],
    ['a path for a version', JSON.stringify({ version: '../../etc', promotedAt: 'x', accuracy: 1, arch: 'mlp' })],
  ] as const) {
    test(`a pointer that is ${what}: a warm cache keeps serving and logs it; a cold one is a 503 pointer_invalid`, async () => {
      const { bucket, store, cache, advance, logs } = await setup(1);
      const version = await storeTrainedModel(store);
      await store.promote(version);
      await cache.get();
      await bucket.objects.put(LATEST_KEY, body);
      advance(1_000);
      await cache.get();
      await cache.refresh();
      assert.equal((await cache.get()).version, version);
      assert.ok(logs.some((l) => l.level === 'error' && l.message === 'the model pointer is invalid'));

      const coldCache = new ModelCache({
        store: new ModelStore(bucket.objects),
        refreshSeconds: 60,
        logger: createLogger({}, () => {}),
      });
      await assert.rejects(
        coldCache.get(),
        (error: unknown) => error instanceof UnavailableError && error.code === 'pointer_invalid',
      );
      await store.promote(version);
      assert.equal((await coldCache.get()).version, version, 'recovers once a valid pointer is written');
    });
  }

  test('a cold process whose promoted version will not load serves the previous one, says so, and drops the fallback once re-promoted', async () => {
    const { bucket, store, cache, advance, logs } = await setup(1);
    const good = await storeTrainedModel(store);
    const bad = await storeTrainedModel(store);
    await store.promote(good);
    await store.promote(bad);
    const weights = (await bucket.objects.get(`models/${bad}/weights.bin`))!.body;
    await bucket.objects.put(`models/${bad}/weights.bin`, weights.subarray(0, 1000));
    const served = await cache.get();
    assert.equal(served.version, good);
    assert.equal(served.fallback?.from, bad);
    assert.match(served.fallback?.reason ?? '', /weights\.bin/);
    assert.ok(
      logs.some(
        (l) => l.level === 'error' && l.failedVersion === bad && l.modelVersion === good && l.fallback === true,
      ),
    );
    await store.promote(good);
    advance(1_000);
    await cache.get();
    await cache.refresh();
    const after = await cache.get();
    assert.equal(after.version, good);
    assert.equal(after.fallback, undefined, 'served as promoted now');
    assert.equal(after.model, served.model, 'not reloaded');
  });

  test('a cold process whose promoted version and its previous both fail is a 503 model_unloadable, every time', async () => {
    const { bucket, store, cache } = await setup();
    const first = await storeTrainedModel(store);
    const second = await storeTrainedModel(store);
    await store.promote(first);
    await store.promote(second);
    for (const version of [first, second])
      await bucket.objects.put(`models/${version}/weights.bin`, Buffer.from('broken'));
    for (let i = 0; i < 2; i++) {
      await assert.rejects(
        cache.get(),
        (error: unknown) => error instanceof UnavailableError && error.code === 'model_unloadable',
      );
    }
  });

  test('a stalled S3 at cold start is a 503 storage_unavailable once the request timeout passes', {
    timeout: 60_000,
  }, async () => {
    const stalled = await stalledS3();
    const cache = new ModelCache({
      store: new ModelStore(stalled.objects),
      refreshSeconds: 60,
      logger: createLogger({}, () => {}),
    });
    await assert.rejects(
      cache.get(),
      (error: unknown) => error instanceof UnavailableError && error.code === 'storage_unavailable',
    );
    assert.ok(stalled.accepted() > 0, 'the connection was accepted: a stall, not a refusal');
  });

  test('a stalled background refresh ends, so the next one picks up a promotion', { timeout: 60_000 }, async () => {
    const { bucket, store, logs } = await setup(1);
    const stalled = await stalledS3();
    const state = { stalled: false };
    const via = (): ObjectStore => (state.stalled ? stalled.objects : bucket.objects);
    const switching: ObjectStore = {
      get: (key, options) => via().get(key, options),
      getIfChanged: (key, etag, options) => via().getIfChanged(key, etag, options),
      exists: (key) => via().exists(key),
      list: (prefix) => via().list(prefix),
      put: (key, body, type, condition) => via().put(key, body, type, condition),
    };
    let now = 0;
    const cache = new ModelCache({
      store: new ModelStore(switching),
      refreshSeconds: 1,
      logger: createLogger({}, (line) => logs.push(JSON.parse(line)), 'debug'),
      now: () => now,
    });
    const first = await storeTrainedModel(store);
    await store.promote(first);
    assert.equal((await cache.get()).version, first);
    state.stalled = true;
    now += 1_000;
    assert.equal((await cache.get()).version, first, 'answers from the loaded model while the refresh hangs');
    await cache.refresh();
    assert.ok(logs.some((l) => l.message === 'could not read the model pointer'));
    state.stalled = false;
    const second = await storeTrainedModel(store);
    await store.promote(second);
    now += 1_000;
    await cache.get();
    await cache.refresh();
    assert.equal((await cache.get()).version, second);
  });

  test('no promoted model is a 503 that says how to train', async () => {
    const { cache } = await setup();
    await assert.rejects(cache.get(), /npm run train/);
  });
});
