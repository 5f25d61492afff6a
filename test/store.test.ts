import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '#lib/backend';
import { ModelIntegrityError, PointerChangedError, PointerInvalidError } from '#lib/errors';
import { summarise } from '#lib/training/evaluate';
import { createModel, type Arch } from '#lib/training/model';
import type { ObjectStore } from '#lib/storage/objects';
import { qualityGate } from '#lib/training/quality-gate';
import {
  LATEST_KEY,
  ModelStore,
  WEIGHTS_MAX_BYTES,
  isVersionName,
  versionName,
  type MetricsInput,
  type VersionFile,
} from '#lib/storage/store';
import { testBucket, type TestBucket } from './support/env.ts';
import { MemoryObjects } from './support/memory-objects.ts';
import { untrainedTraining } from './support/metrics.ts';

let bucket: TestBucket;
before(async () => {
  await initBackend();
  bucket = await testBucket();
});

/** What createModel({ arch: 'mlp' }) has; a version's metrics must record its real parameter count. */
const MLP_PARAMS = 269_322;

let clock = Date.UTC(2026, 0, 1);
function nextVersion(arch: Arch = 'mlp'): string {
  clock += 1000;
  return versionName(arch, new Date(clock));
}

function metricsFor(version: string, accuracy: number, arch: Arch = 'mlp', params = MLP_PARAMS): MetricsInput {
  const confusion = Array.from({ length: 10 }, (_, i) => Array.from({ length: 10 }, (_, j) => (i === j ? 1 : 0)));
  return {
    version,
    arch,
    createdAt: new Date(clock).toISOString(),
    backend: 'wasm',
    params,
    training: untrainedTraining(1),
    test: { ...summarise(confusion, 0.1), accuracy },
  };
}

/** Saves a freshly initialised model (its weights differ per seed) as a new version. */
async function saveVersion(store: ModelStore, accuracy = 0.98, seed = 1): Promise<string> {
  const version = nextVersion();
  const model = createModel({ arch: 'mlp', seed });
  await store.save(model, metricsFor(version, accuracy));
  model.dispose();
  return version;
}

/** An ObjectStore that fails the n-th put, as a crash or network fault mid-upload would. */
function failingOnPut(inner: ObjectStore, failAt: (key: string) => boolean): ObjectStore {
  return {
    get: (key, options) => inner.get(key, options),
    getIfChanged: (key, etag, options) => inner.getIfChanged(key, etag, options),
    exists: (key) => inner.exists(key),
    list: (prefix) => inner.list(prefix),
    put: async (key, body, type, condition) => {
      if (failAt(key)) throw new Error(`injected failure writing ${key}`);
      return inner.put(key, body, type, condition);
    },
  };
}

const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

// biome-ignore lint/suspicious/noExplicitAny: a forger edits arbitrary fields of parsed JSON
type Json = any;

/** Rewrites a version's model.json and/or metrics and records matching checksums, as a forger with write access could. */
async function forge(version: string, edit: { modelJson?: (json: Json) => void; metrics?: (metrics: Json) => void }) {
  const modelKey = `models/${version}/model.json`;
  const metricsKey = `models/${version}/metrics.json`;
  const modelJson = JSON.parse((await bucket.objects.get(modelKey))!.body.toString());
  edit.modelJson?.(modelJson);
  const text = JSON.stringify(modelJson);
  const metrics = JSON.parse((await bucket.objects.get(metricsKey))!.body.toString());
  metrics.artifacts.modelJsonSha256 = sha256(text);
  edit.metrics?.(metrics);
  await bucket.objects.put(modelKey, text);
  await bucket.objects.put(metricsKey, JSON.stringify(metrics));
}

describe('ModelStore on the embedded S3', () => {
  test('a saved model round-trips and gives bit-identical predictions', async () => {
    const store = new ModelStore(bucket.objects);
    const version = nextVersion();
    const model = createModel({ arch: 'mlp', seed: 11 });
    const saved = await store.save(model, metricsFor(version, 0.98));
    assert.equal(saved.artifacts.weightsBytes, model.countParams() * 4);
    const { model: loaded, metrics } = await store.load(version);
    assert.equal(metrics.version, version);
    const x = tf.randomUniform([16, 28, 28, 1], 0, 1, 'float32', 5);
    const expected = (model.predict(x) as tf.Tensor).dataSync();
    const actual = (loaded.predict(x) as tf.Tensor).dataSync();
    assert.deepEqual(Buffer.from(actual.buffer), Buffer.from(expected.buffer));
    tf.dispose(x);
    model.dispose();
    loaded.dispose();
  });

  test('writes the layout from DESIGN.md', async () => {
    const store = new ModelStore(bucket.objects);
    const version = await saveVersion(store);
    const keys = await bucket.objects.list(`models/${version}/`);
    assert.deepEqual(
      keys,
      ['metrics.json', 'model.json', 'weights.bin'].map((f) => `models/${version}/${f}`),
    );
    const modelJson = JSON.parse((await bucket.objects.get(`models/${version}/model.json`))!.body.toString());
    assert.equal(modelJson.format, 'layers-model');
    assert.deepEqual(modelJson.weightsManifest[0].paths, ['weights.bin']);
  });

  test('versions are immutable: saving the same version twice fails', async () => {
    const store = new ModelStore(bucket.objects);
    const version = await saveVersion(store);
    const model = createModel({ arch: 'mlp' });
    await assert.rejects(store.save(model, metricsFor(version, 0.99)), /already exists/);
    model.dispose();
  });

  test('promote writes latest.json; promoting an older version rolls back', async () => {
    const store = new ModelStore(bucket.objects);
    const first = await saveVersion(store, 0.981);
    const second = await saveVersion(store, 0.982);
    await store.promote(first);
    const pointer = await store.promote(second);
    assert.equal(pointer.version, second);
    assert.equal(pointer.previous, first);
    assert.equal(pointer.accuracy, 0.982);
    const rolledBack = await store.promote(first);
    assert.equal((await store.latest())!.version, first);
    assert.equal(rolledBack.previous, second);
    const listed = await store.list();
    assert.deepEqual(
      listed.filter((v) => v.serving).map((v) => v.version),
      [first],
    );
  });

  test('a failure at any write before the pointer leaves the serving model untouched', async () => {
    const store = new ModelStore(bucket.objects);
    const serving = await saveVersion(store);
    await store.promote(serving);
    const before = (await bucket.objects.get(LATEST_KEY))!.body.toString();
    for (const file of ['weights.bin', 'model.json', 'metrics.json']) {
      const broken = new ModelStore(failingOnPut(bucket.objects, (key) => key.endsWith(file)));
      const version = nextVersion();
      const model = createModel({ arch: 'mlp' });
      await assert.rejects(broken.save(model, metricsFor(version, 0.99)), /injected failure/);
      model.dispose();
      await assert.rejects(
        store.promote(version),
        ModelIntegrityError,
        `a version that failed at ${file} cannot be promoted`,
      );
      assert.equal((await bucket.objects.get(LATEST_KEY))!.body.toString(), before);
      assert.ok(
        !(await store.list()).some((v) => v.version === version),
        `a version that failed at ${file} is not listed`,
      );
    }
  });

  test('refuses to promote or load a version whose weights were truncated', async () => {
    const store = new ModelStore(bucket.objects);
    const version = await saveVersion(store);
    const key = `models/${version}/weights.bin`;
    const weights = (await bucket.objects.get(key))!.body;
    await bucket.objects.put(key, weights.subarray(0, weights.length - 100));
    await assert.rejects(store.promote(version), /weights\.bin of .* does not match/);
    await assert.rejects(store.load(version), ModelIntegrityError);
  });

  test('refuses a version whose weights were swapped for another version’s', async () => {
    const store = new ModelStore(bucket.objects);
    const a = await saveVersion(store, 0.98, 1);
    const b = await saveVersion(store, 0.98, 2);
    await bucket.objects.put(`models/${a}/weights.bin`, (await bucket.objects.get(`models/${b}/weights.bin`))!.body);
    await assert.rejects(store.load(a), /does not match its recorded checksum/);
  });

  test('refuses a model.json that is not JSON', async () => {
    const store = new ModelStore(bucket.objects);
    const version = await saveVersion(store);
    await bucket.objects.put(`models/${version}/model.json`, '{"format": "layers-model", ');
    await assert.rejects(store.load(version), ModelIntegrityError);
  });

  test('refuses names that are not version names before touching storage', async () => {
    const store = new ModelStore(bucket.objects);
    for (const name of ['../latest', 'latest', '', '20261125T220000Z-mlp/../../x']) {
      await assert.rejects(store.promote(name), /not a model version name/);
    }
  });

  test('two promotions racing leave the pointer on one complete version', async () => {
    const store = new ModelStore(bucket.objects);
    const a = await saveVersion(store);
    const b = await saveVersion(store);
    const results = await Promise.allSettled([store.promote(a), store.promote(b), store.promote(a), store.promote(b)]);
    // With conditional writes a promotion may lose every retry; then it says so instead of overwriting.
    for (const result of results)
      if (result.status === 'rejected') assert.ok(result.reason instanceof PointerChangedError, String(result.reason));
    const latest = await store.latest();
    assert.ok(latest && [a, b].includes(latest.version));
    await store.verify(latest.version);
  });

  test('latestIfChanged answers "unchanged" for the same ETag and the new pointer after a promotion', async () => {
    const store = new ModelStore(bucket.objects);
    const a = await saveVersion(store);
    const b = await saveVersion(store);
    await store.promote(a);
    const first = await store.latestIfChanged(undefined);
    assert.ok(first && first !== 'unchanged');
    assert.equal(await store.latestIfChanged(first.etag), 'unchanged');
    await store.promote(b);
    const second = await store.latestIfChanged(first.etag);
    assert.ok(second && second !== 'unchanged' && second.pointer.version === b);
  });
});

describe('files saved with a version (profile.json)', () => {
  const PROFILE = { name: 'profile.json', body: '{"schema":1}', contentType: 'application/json' };

  /** Saves a version with `files` through a store that records the order of its writes. */
  async function saveWith(files: VersionFile[]) {
    const objects = new MemoryObjects();
    const writes: string[] = [];
    const recording: ObjectStore = {
      get: (key, options) => objects.get(key, options),
      getIfChanged: (key, etag, options) => objects.getIfChanged(key, etag, options),
      exists: (key) => objects.exists(key),
      list: (prefix) => objects.list(prefix),
      put: async (key, body, type, condition) => {
        writes.push(key.split('/').at(-1)!);
        return objects.put(key, body, type, condition);
      },
    };
    const store = new ModelStore(recording);
    const version = nextVersion();
    const model = createModel({ arch: 'mlp', seed: 1 });
    try {
      await store.save(model, metricsFor(version, 0.98), files);
    } finally {
      model.dispose();
    }
    return { version, writes, store, objects };
  }

  test('are written before metrics.json, which records their checksums', async () => {
    const { version, writes, store } = await saveWith([PROFILE]);
    assert.deepEqual(writes, ['weights.bin', 'model.json', 'profile.json', 'metrics.json']);
    const metrics = await store.metrics(version);
    assert.deepEqual(metrics?.artifacts.files, { 'profile.json': sha256(PROFILE.body) });
    assert.equal((await store.verifiedFile(version, 'profile.json', 1024))?.toString(), PROFILE.body);
  });

  test('a version saved without the file has none: undefined, not an error', async () => {
    const { version, store } = await saveWith([]);
    assert.equal((await store.metrics(version))?.artifacts.files, undefined);
    assert.equal(await store.verifiedFile(version, 'profile.json', 1024), undefined);
    assert.equal(await store.verifiedFile(nextVersion(), 'profile.json', 1024), undefined, 'no such version');
  });

  test('a file changed, deleted or grown past the cap after saving is a ModelIntegrityError', async () => {
    const { version, store, objects } = await saveWith([PROFILE]);
    await assert.rejects(store.verifiedFile(version, 'profile.json', 4), ModelIntegrityError);
    await objects.put(`models/${version}/profile.json`, '{"schema":2}');
    await assert.rejects(store.verifiedFile(version, 'profile.json', 1024), /does not match its recorded checksum/);
    objects.objects.delete(`models/${version}/profile.json`);
    await assert.rejects(store.verifiedFile(version, 'profile.json', 1024), /is missing profile.json/);
  });

  test('names that are paths or the version’s own files are refused before anything is written', async () => {
    for (const name of ['../latest.json', 'a/b.json', 'metrics.json', 'weights.bin', '', 'Profile.json']) {
      await assert.rejects(saveWith([{ ...PROFILE, name }]), ModelIntegrityError, name);
    }
  });

  test('metrics whose file checksums are malformed are refused', async () => {
    const { version, store, objects } = await saveWith([PROFILE]);
    const key = `models/${version}/metrics.json`;
    const metrics = JSON.parse(objects.objects.get(key)!.body.toString());
    await objects.put(key, JSON.stringify({ ...metrics, artifacts: { ...metrics.artifacts, files: ['x'] } }));
    await assert.rejects(store.metrics(version), /malformed file checksums/);
  });
});

describe('the serving pointer is validated by every reader', () => {
  const valid = {
    version: '20260101T000000Z-mlp',
    promotedAt: '2026-01-01T00:00:00.000Z',
    accuracy: 0.98,
    arch: 'mlp',
  };
  for (const [what, body] of [
    ['null', 'null'],
    ['a number', '42'],
    ['an array', '[]'],
    ['an empty object', '{}'],
    ['not JSON', '{"version": '],
    ['a version that is a path', JSON.stringify({ ...valid, version: '../x' })],
    ['an unknown arch', JSON.stringify({ ...valid, arch: 'rnn' })],
    ['a string accuracy', JSON.stringify({ ...valid, accuracy: '0.98' })],
    ['a previous that is not a version', JSON.stringify({ ...valid, previous: 7 })],
    ['over the size cap', JSON.stringify({ ...valid, forced: { reason: 'x'.repeat(20_000) } })],
  ] as const) {
    test(`${what} is a PointerInvalidError from latest() and latestIfChanged()`, async () => {
      const objects = new MemoryObjects();
      await objects.put(LATEST_KEY, body);
      const store = new ModelStore(objects);
      await assert.rejects(store.latest(), PointerInvalidError);
      await assert.rejects(store.latestIfChanged(undefined), PointerInvalidError);
    });
  }

  test('an operator promotion replaces an invalid pointer', async () => {
    const store = new ModelStore(bucket.objects);
    const version = await saveVersion(store);
    await bucket.objects.put(LATEST_KEY, 'null');
    const pointer = await store.promote(version);
    assert.equal(pointer.previous, undefined);
    assert.deepEqual(await store.latest(), pointer);
  });
});

describe('loading refuses oversized or inconsistent versions before building anything', () => {
  test('metrics recording more parameters than served are refused before the weights are read', async () => {
    const store = new ModelStore(bucket.objects);
    const version = await saveVersion(store);
    const huge = WEIGHTS_MAX_BYTES / 4 + 1;
    await forge(version, {
      metrics: (m) => Object.assign(m, { params: huge, artifacts: { ...m.artifacts, weightsBytes: huge * 4 } }),
    });
    await assert.rejects(store.load(version), /records \d+ parameters; at most \d+ are served/);
  });

  test('a weights object larger than its metrics record is refused from its size, not its checksum', async () => {
    const store = new ModelStore(bucket.objects);
    const version = await saveVersion(store);
    const key = `models/${version}/weights.bin`;
    const weights = (await bucket.objects.get(key))!.body;
    await bucket.objects.put(key, Buffer.concat([weights, Buffer.alloc(4096)]));
    await assert.rejects(store.load(version), /weights\.bin is \d+ bytes, over the \d+-byte limit/);
  });

  test('a topology that disagrees with the recorded parameters is refused before building, and allocates nothing', async () => {
    const store = new ModelStore(bucket.objects);
    const version = await saveVersion(store);
    await forge(version, { modelJson: (json) => (json.modelTopology.config.layers[1].config.units = 300) });
    const tensors = tf.memory().numTensors;
    await assert.rejects(store.load(version), /describes \d+ parameters; its metrics record 269322/);
    assert.equal(tf.memory().numTensors, tensors);
  });

  test('both architectures pass the topology check and load', async () => {
    const store = new ModelStore(bucket.objects);
    for (const arch of ['mlp', 'cnn'] as const) {
      const version = nextVersion(arch);
      const model = createModel({ arch });
      await store.save(model, metricsFor(version, 0.99, arch, model.countParams()));
      model.dispose();
      const loaded = await store.load(version);
      assert.equal(loaded.model.countParams(), loaded.metrics.params);
      loaded.model.dispose();
    }
  });

  test('a build that fails after verification disposes every tensor it allocated', async () => {
    const store = new ModelStore(bucket.objects);
    const version = await saveVersion(store);
    await forge(version, { modelJson: (json) => (json.weightsManifest[0].weights[0].name = 'not/a/layer/weight') });
    const tensors = tf.memory().numTensors;
    await assert.rejects(store.load(version), /could not be built/);
    assert.equal(tf.memory().numTensors, tensors);
  });
});

describe('promotion is conditional on the pointer its decision was based on', () => {
  async function memoryStore() {
    const store = new ModelStore(new MemoryObjects());
    return { store, a: await saveVersion(store), b: await saveVersion(store), c: await saveVersion(store) };
  }

  test('a promotion based on a pointer that has since changed is refused and changes nothing', async () => {
    const { store, a, b, c } = await memoryStore();
    await store.promote(a);
    const basis = await store.pointerState();
    await store.promote(b);
    const before = await store.latest();
    await assert.rejects(store.promote(c, { basedOn: basis }), PointerChangedError);
    assert.deepEqual(await store.latest(), before);
  });

  test('a first promotion based on "no pointer yet" is refused once another one exists', async () => {
    const { store, a, b } = await memoryStore();
    const basis = await store.pointerState();
    await store.promote(a);
    await assert.rejects(
      store.promote(b, { basedOn: basis }),
      (error: unknown) => error instanceof PointerChangedError && error.status === 409,
    );
    assert.equal((await store.latest())?.version, a);
  });

  test('previous names the pointer the decision was based on', async () => {
    const { store, a, b } = await memoryStore();
    await store.promote(a);
    const pointer = await store.promote(b, { basedOn: await store.pointerState() });
    assert.equal(pointer.previous, a);
  });

  test('an operator promotion retries a lost race and names the version it really replaced', async () => {
    const objects = new MemoryObjects();
    const store = new ModelStore(objects);
    const [a, b, c] = [await saveVersion(store), await saveVersion(store), await saveVersion(store)];
    await store.promote(a);
    // Another writer lands between this promotion's read of the pointer and its write, once.
    let raced = false;
    const racing = new ModelStore({
      get: (key, options) => objects.get(key, options),
      getIfChanged: async (key, etag, options) => {
        const read = await objects.getIfChanged(key, etag, options);
        if (key === LATEST_KEY && !raced) {
          raced = true;
          await store.promote(b);
        }
        return read;
      },
      exists: (key) => objects.exists(key),
      list: (prefix) => objects.list(prefix),
      put: (key, body, type, condition) => objects.put(key, body, type, condition),
    });
    const pointer = await racing.promote(c);
    assert.equal(pointer.previous, b);
    assert.equal((await store.latest())?.version, c);
  });
});

describe('quality gate', () => {
  test('passes a first model above the minimum', () => {
    assert.deepEqual(qualityGate({ arch: 'mlp', accuracy: 0.98 }, undefined), { passed: true, reasons: [] });
  });

  test('refuses a model below its architecture’s minimum', () => {
    const decision = qualityGate({ arch: 'cnn', accuracy: 0.985 }, undefined);
    assert.equal(decision.passed, false);
    assert.match(decision.reasons[0]!, /below the minimum 99\.00% for cnn/);
  });

  test('allows up to 0.2 points below the serving model, not more', () => {
    const current = { accuracy: 0.985, version: '20260101T000000Z-mlp' };
    assert.equal(qualityGate({ arch: 'mlp', accuracy: 0.983 }, current).passed, true);
    const refused = qualityGate({ arch: 'mlp', accuracy: 0.9829 }, current);
    assert.equal(refused.passed, false);
    assert.match(refused.reasons[0]!, /more than 0\.2 points below the serving model 20260101T000000Z-mlp/);
  });

  test('a configured minimum overrides the default', () => {
    assert.equal(qualityGate({ arch: 'mlp', accuracy: 0.9 }, undefined, 0.85).passed, true);
  });

  test('NaN accuracy never passes', () => {
    assert.equal(qualityGate({ arch: 'mlp', accuracy: Number.NaN }, undefined).passed, false);
  });

  describe('on the live holdout', () => {
    const serving = { accuracy: 0.98, version: '20260101T000000Z-mlp', liveAccuracy: 0.9 };
    const candidate = (accuracy: number, count = 200) => ({
      arch: 'mlp' as const,
      accuracy: 0.98,
      live: { count, accuracy },
    });

    test('passes a candidate up to 1 point below the serving model', () => {
      assert.deepEqual(qualityGate(candidate(0.89), serving), { passed: true, reasons: [] });
    });

    test('refuses a candidate more than 1 point below the serving model, naming both figures', () => {
      assert.deepEqual(qualityGate(candidate(0.885), serving), {
        passed: false,
        reasons: [
          'live-holdout accuracy 88.50% is more than 1 point below the serving model 20260101T000000Z-mlp (90.00%) on the same 200 images',
        ],
      });
    });

    test('a configured tolerance overrides the default', () => {
      assert.equal(qualityGate(candidate(0.885), serving, undefined, 0.02).passed, true);
      assert.match(qualityGate(candidate(0.895), serving, undefined, 0.001).reasons[0]!, /more than 0\.1 points below/);
    });

    test('skips the rule, and says so, when the holdout is too small to judge', () => {
      assert.deepEqual(qualityGate(candidate(0.5, 49), serving), {
        passed: true,
        reasons: [],
        notes: ['live holdout of 49 too small to judge (at least 50 needed); rule skipped'],
      });
      assert.equal(qualityGate(candidate(0.5, 50), serving).passed, false, 'from 50 images the rule applies');
    });

    test('skips the rule, and says so, when the serving model could not be scored', () => {
      const decision = qualityGate(candidate(0.5), { accuracy: 0.98, version: '20260101T000000Z-mlp' });
      assert.equal(decision.passed, true);
      assert.deepEqual(decision.notes, [
        'the serving model 20260101T000000Z-mlp could not be scored on the live holdout; rule skipped',
      ]);
    });

    test('has nothing to compare for a first model', () => {
      assert.deepEqual(qualityGate(candidate(0.5), undefined), { passed: true, reasons: [] });
    });

    test('NaN live accuracy never passes', () => {
      assert.equal(qualityGate(candidate(Number.NaN), serving).passed, false);
    });

    test('refuses on both rules at once, test set and live holdout', () => {
      const decision = qualityGate({ ...candidate(0.8), accuracy: 0.97 }, serving);
      assert.equal(decision.reasons.length, 3, decision.reasons.join(' | '));
    });
  });
});

describe('version names', () => {
  test('sort by time and name the architecture', () => {
    assert.equal(versionName('cnn', new Date(Date.UTC(2026, 10, 25, 22, 0, 0, 123))), '20261125T220000Z-cnn');
    assert.ok(isVersionName('20261125T220000Z-mlp'));
    assert.ok(!isVersionName('20261125T220000Z-mlp/x'));
  });
});
