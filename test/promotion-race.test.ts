import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend } from '#lib/backend';
import { readConfig } from '#lib/config';
import { summarise } from '#lib/training/evaluate';
import { createModel } from '#lib/training/model';
import type { ObjectStore } from '#lib/storage/objects';
import type { Storage } from '#lib/storage/storage';
import { LATEST_KEY, ModelStore, versionName } from '#lib/storage/store';
import { parseTrainArgs, runTraining, type TrainArgs } from '../functions/train/job.ts';
import { mnistDir, tempDir, testBucket } from './support/env.ts';
import { MemoryObjects } from './support/memory-objects.ts';
import { untrainedTraining } from './support/metrics.ts';

before(() => initBackend());

const silent = { update: () => {}, note: () => {}, done: () => {} };

let clock = Date.UTC(2026, 2, 1);
/** Stores an untrained MLP as a version with the given accuracy, as the gate will see it. */
async function saveVersion(store: ModelStore, accuracy: number): Promise<string> {
  clock += 60_000;
  const version = versionName('mlp', new Date(clock));
  const model = createModel({ arch: 'mlp', seed: clock % 997 });
  const confusion = Array.from({ length: 10 }, (_, i) => Array.from({ length: 10 }, (_, j) => (i === j ? 1 : 0)));
  await store.save(model, {
    version,
    arch: 'mlp',
    createdAt: new Date(clock).toISOString(),
    backend: 'cpu',
    params: model.countParams(),
    training: untrainedTraining(32),
    test: { ...summarise(confusion, 0.1), accuracy },
  });
  model.dispose();
  return version;
}

/** Runs `first` (awaited) just before the job writes its first file of a new version: mid-run, after the gate's read. */
function beforeVersionWrite(inner: ObjectStore, first: () => Promise<void>): ObjectStore {
  let pending: Promise<void> | undefined;
  return {
    get: (key, options) => inner.get(key, options),
    getIfChanged: (key, etag, options) => inner.getIfChanged(key, etag, options),
    exists: (key) => inner.exists(key),
    list: (prefix) => inner.list(prefix),
    put: async (key, body, type, condition) => {
      if (key.startsWith('models/') && key !== LATEST_KEY) {
        pending ??= first();
        await pending;
      }
      return inner.put(key, body, type, condition);
    },
  };
}

const quickRun = (): TrainArgs => {
  const args = parseTrainArgs(['--epochs', '1', '--train-limit', '512', '--batch-size', '64'], {});
  if (args === 'help') throw new Error('unreachable');
  return args;
};

async function rollbackDuringTraining(objects: ObjectStore) {
  const store = new ModelStore(objects);
  // Accuracies low enough that the quick run passes the gate (minimum 0) against either of them.
  const older = await saveVersion(store, 0.1);
  const newer = await saveVersion(store, 0.1);
  await store.promote(older);
  await store.promote(newer);
  const storage: Storage = {
    objects: beforeVersionWrite(objects, async () => void (await store.promote(older))),
    bucket: 'test',
    embedded: false,
    close: async () => {},
  };
  const config = { ...readConfig({ MNIST_DIR: mnistDir, DATA_DIR: await tempDir() }), minAccuracy: 0 };
  const outcome = await runTraining(quickRun(), config, silent, async () => storage);
  return { outcome, older, newer, pointer: await store.latest() };
}

describe('promotion is a compare-and-swap on the serving pointer', () => {
  test('a rollback during a training run stays rolled back (conditional object store)', {
    timeout: 300_000,
  }, async () => {
    const { outcome, older, pointer } = await rollbackDuringTraining(new MemoryObjects());
    assert.equal(outcome.gate.passed, true);
    assert.equal(outcome.promoted, false);
    assert.equal(pointer?.version, older, 'the rollback is still in place');
    assert.match(outcome.notPromoted ?? '', /serving pointer changed while it trained.*now .*npm run promote -- /);
  });

  // Needs the embedded S3 to honour If-Match on PUT as S3 does; s3rver on its own ignores it.
  test('a rollback during a training run stays rolled back (embedded S3)', { timeout: 300_000 }, async () => {
    const bucket = await testBucket();
    const { outcome, older, pointer } = await rollbackDuringTraining(bucket.objects);
    assert.equal(outcome.promoted, false);
    assert.equal(pointer?.version, older, 'the rollback is still in place');
  });
});
