/**
 * Faults on the real embedded S3 (s3rver) and the real HTTP server: storage
 * that goes away and comes back, promoted versions that cannot load, a
 * training process killed half-way through its upload and a corrupt dataset.
 * (Racing promotions are tested on the store in store.test.ts: s3rver writes
 * objects in place, so over it concurrent PUTs of one key are not atomic the
 * way S3's are.) Every request goes to 127.0.0.1; every loop is bounded.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { initBackend } from '#lib/backend';
import { startEmbeddedS3, type EmbeddedS3 } from '#lib/storage/embedded-s3';
import { createLogger } from '#lib/log';
import { MNIST_FILES, MNIST_PREFIX } from '#lib/training/mnist';
import { ModelCache } from '#lib/model-cache';
import { createModel } from '#lib/training/model';
import { createS3Client, IN_PROCESS_S3_TIMEOUTS, S3ObjectStore } from '#lib/storage/objects';
import { storageEnv } from '#lib/storage/storage';
import { LATEST_KEY, ModelStore, type LatestPointer } from '#lib/storage/store';
import { makeHandler } from '../functions/predict/app.ts';
import { serveHandler } from '../scripts/local/http-adapter.ts';
import { mnistDir, repoRoot, tempDir } from './support/env.ts';
import { nextVersion, storeTrainedModel } from './support/service.ts';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
});

before(() => initBackend());

/** s3rver on a loopback port over `directory`; `port` reopens a stopped one where it was. */
async function s3At(directory: string, port = 0): Promise<EmbeddedS3 & { port: number; stop(): Promise<void> }> {
  const server = await startEmbeddedS3({ directory, port });
  let running = true;
  const stop = async () => {
    if (!running) return;
    running = false;
    await server.close();
  };
  closers.push(stop);
  return { ...server, port: Number(new URL(server.endpoint).port), stop };
}

function bucketStore(s3: EmbeddedS3) {
  const client = createS3Client({ ...s3, timeouts: IN_PROCESS_S3_TIMEOUTS });
  closers.push(async () => client.destroy());
  const objects = new S3ObjectStore(client, s3.bucket);
  return { objects, store: new ModelStore(objects) };
}

/** The predict service as `npm start` serves it, on its own S3 client, over HTTP on 127.0.0.1. */
async function startPredictService(s3: EmbeddedS3, refreshSeconds: number) {
  const { store } = bucketStore(s3);
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger({ service: 'digitnet-faults' }, (line) => logs.push(JSON.parse(line)), 'debug');
  const cache = new ModelCache({ store, refreshSeconds, logger });
  const handler = makeHandler({
    cache,
    logger,
    backendReady: () => initBackend(),
    page: async () => '<!doctype html>',
  });
  const served = await serveHandler(handler, {
    host: '127.0.0.1',
    port: 0,
    onError: (error) => logs.push({ level: 'error', message: 'adapter', error: String(error) }),
  });
  closers.push(served.close);
  return { url: served.url, cache, logs };
}

/** A bright vertical bar: a valid MNIST-style input; which digit it reads as does not matter here. */
const PIXELS = JSON.stringify({
  pixels: Array.from({ length: 784 }, (_, i) => (i % 28 >= 12 && i % 28 <= 15 && i > 100 && i < 680 ? 255 : 0)),
});

interface Answer {
  status: number;
  retryAfter: string | null;
  body: { modelVersion?: string; error?: { code: string; message: string } };
}

async function call(url: string, method: 'GET' | 'POST', route: string): Promise<Answer> {
  const response = await fetch(
    url + route,
    method === 'POST' ? { method, headers: { 'content-type': 'application/json' }, body: PIXELS } : { method },
  );
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    body: (await response.json()) as Answer['body'],
  };
}

const predict = (url: string) => call(url, 'POST', '/predict');

/**
 * Points models/latest.json at a version without verifying it: what a
 * promotion leaves behind when the version's files are damaged after it was
 * checked, or when something other than `ModelStore.promote` writes the pointer.
 */
async function pointAt(objects: S3ObjectStore, version: string): Promise<void> {
  const pointer: LatestPointer = { version, promotedAt: new Date().toISOString(), accuracy: 0.99, arch: 'mlp' };
  await objects.put(LATEST_KEY, JSON.stringify(pointer), 'application/json');
}

/** Polls `condition` every 20 ms; fails after `ms` rather than waiting forever. */
async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(20);
  }
}

const rejected = (logs: Record<string, unknown>[], version: string) =>
  logs.some(
    (line) =>
      line.level === 'error' &&
      line.message === 'promoted model failed to load; keeping the current one' &&
      line.failedVersion === version,
  );

/** A model trained from a different seed: same shapes and byte size as the test MLP, different weights. */
async function storeOtherModel(store: ModelStore, like: string): Promise<string> {
  const { artifacts: _, ...metrics } = (await store.metrics(like))!;
  const model = createModel({ arch: 'mlp', seed: 7 });
  const version = nextVersion();
  await store.save(model, { ...metrics, version, createdAt: new Date().toISOString() });
  model.dispose();
  return version;
}

describe('storage faults', () => {
  test('S3 unreachable at cold start: /predict and /health answer 503 with Retry-After, and the service recovers by itself when S3 returns', async () => {
    const directory = await tempDir('digitnet-faults-s3-');
    const s3 = await s3At(directory);
    const { store } = bucketStore(s3);
    const version = await storeTrainedModel(store);
    await store.promote(version);
    await s3.stop();

    const service = await startPredictService(s3, 60);
    for (const answer of [await predict(service.url), await call(service.url, 'GET', '/health')]) {
      assert.equal(answer.status, 503);
      assert.ok(Number(answer.retryAfter) > 0, `Retry-After is ${answer.retryAfter}`);
      assert.equal(answer.body.error?.code, 'storage_unavailable');
    }

    await s3At(directory, s3.port);
    const recovered = await predict(service.url);
    assert.equal(recovered.status, 200, JSON.stringify(recovered.body));
    assert.equal(recovered.body.modelVersion, version);
    assert.equal((await call(service.url, 'GET', '/health')).status, 200);
  });

  test('S3 unreachable during a pointer refresh: the loaded model keeps answering', async () => {
    const s3 = await s3At(await tempDir('digitnet-faults-s3-'));
    const { store } = bucketStore(s3);
    const version = await storeTrainedModel(store);
    await store.promote(version);
    const service = await startPredictService(s3, 0);
    assert.equal((await predict(service.url)).body.modelVersion, version);

    await s3.stop();
    // With refreshSeconds 0 every request starts a pointer check; each one now fails.
    for (let i = 0; i < 5; i++) {
      const answer = await predict(service.url);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(answer.body.modelVersion, version);
      await service.cache.refresh();
    }
    assert.ok(
      service.logs.some((line) => line.level === 'error' && line.message === 'could not read the model pointer'),
    );
  });
});

describe('a promoted version that cannot load is never served', () => {
  const damages: [string, (objects: S3ObjectStore, store: ModelStore, good: string, bad: string) => Promise<void>][] = [
    [
      'truncated weights',
      async (objects, _store, _good, bad) => {
        const weights = (await objects.get(`models/${bad}/weights.bin`))!.body;
        await objects.put(`models/${bad}/weights.bin`, weights.subarray(0, weights.length >> 1));
      },
    ],
    [
      "another version's weights",
      async (objects, store, good, bad) => {
        const other = await storeOtherModel(store, good);
        await objects.put(`models/${bad}/weights.bin`, (await objects.get(`models/${other}/weights.bin`))!.body);
      },
    ],
    [
      'a model.json that is not JSON',
      async (objects, _store, _good, bad) => {
        await objects.put(
          `models/${bad}/model.json`,
          '{"format": "layers-model", "modelTopology": ',
          'application/json',
        );
      },
    ],
  ];

  for (const [damage, apply] of damages) {
    test(`${damage}: the previous version keeps answering and the failure is logged`, async () => {
      const s3 = await s3At(await tempDir('digitnet-faults-s3-'));
      const { objects, store } = bucketStore(s3);
      const good = await storeTrainedModel(store);
      await store.promote(good);
      const service = await startPredictService(s3, 0);
      assert.equal((await predict(service.url)).body.modelVersion, good);

      const bad = await storeTrainedModel(store);
      await apply(objects, store, good, bad);
      await pointAt(objects, bad);
      // s3rver may answer a PUT before its file is written, so a check right after can read a partial pointer; it is retried.
      for (let i = 0; i < 20 && !rejected(service.logs, bad); i++) await service.cache.refresh();
      for (let i = 0; i < 3; i++) {
        const answer = await predict(service.url);
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        assert.equal(answer.body.modelVersion, good);
      }
      assert.ok(rejected(service.logs, bad), 'the rejected version is logged as an error');
      assert.equal((await call(service.url, 'GET', '/health')).body.modelVersion, good);
    });
  }

  test('promoting a version with truncated weights under load fails no request, and every answer comes from the previous version', async (t) => {
    const s3 = await s3At(await tempDir('digitnet-faults-s3-'));
    const { objects, store } = bucketStore(s3);
    const good = await storeTrainedModel(store);
    await store.promote(good);
    const service = await startPredictService(s3, 0.2);
    assert.equal((await predict(service.url)).body.modelVersion, good);
    const bad = await storeTrainedModel(store);
    const weights = (await objects.get(`models/${bad}/weights.bin`))!.body;
    await objects.put(`models/${bad}/weights.bin`, weights.subarray(0, 1000));

    const answers: { status: number; modelVersion?: string; afterRejection: boolean }[] = [];
    let stop = false;
    let seenRejection = false;
    const worker = async () => {
      while (!stop) {
        try {
          const answer = await predict(service.url);
          answers.push({
            status: answer.status,
            modelVersion: answer.body.modelVersion,
            afterRejection: seenRejection,
          });
        } catch (error) {
          answers.push({ status: 0, modelVersion: String(error), afterRejection: seenRejection });
        }
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    try {
      await delay(1000);
      await pointAt(objects, bad);
      await until(() => rejected(service.logs, bad), 10_000, 'the service to try the bad version');
      seenRejection = true;
      await delay(1000);
    } finally {
      stop = true;
      await Promise.all(workers);
    }

    const failed = answers.filter((answer) => answer.status !== 200);
    t.diagnostic(
      `${answers.length} requests from 8 workers, ${answers.filter((answer) => answer.afterRejection).length} after the bad version was refused; ${failed.length} failed`,
    );
    assert.deepEqual(failed.slice(0, 5), [], `${failed.length} of ${answers.length} requests failed`);
    assert.deepEqual([...new Set(answers.map((answer) => answer.modelVersion))], [good]);
    assert.ok(
      answers.filter((answer) => answer.afterRejection).length > 0,
      'requests kept being answered after the bad version was tried',
    );
  });
});

/**
 * Forwards everything to s3rver except the first PUT whose path (without the
 * query) matches `hold`: that one is kept waiting, so a test knows exactly how far a
 * writer got, however fast it writes.
 */
async function holdingProxy(target: string, hold: RegExp) {
  const upstream = new URL(target);
  let announce!: (path: string) => void;
  const held = new Promise<string>((resolve) => (announce = resolve));
  let holding = false;
  const server = http.createServer((req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://proxy');
    if (!holding && req.method === 'PUT' && hold.test(pathname)) {
      holding = true;
      req.on('error', () => {});
      announce(pathname);
      return;
    }
    // `expect` is never signed; s3rver answers it by itself.
    const { expect: _, connection: __, ...headers } = req.headers;
    const forward = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  closers.push(close);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, held, close };
}

interface Training {
  child: ChildProcess;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout: () => string;
  stderr: () => string;
}

/** `npm run train` as a child process, against the given bucket endpoint. */
function train(args: string[], env: Record<string, string>): Training {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), 'functions/train/main.ts', ...args], {
    cwd: repoRoot,
    env: { ...process.env, LOG_LEVEL: 'warn', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  closers.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, exit, stdout: () => stdout, stderr: () => stderr };
}

describe('training faults', () => {
  test('a training process killed mid-upload leaves models/latest.json unchanged and its partial version unlisted', {
    timeout: 180_000,
  }, async () => {
    const s3 = await s3At(await tempDir('digitnet-faults-s3-'));
    const { objects, store } = bucketStore(s3);
    const serving = await storeTrainedModel(store);
    await store.promote(serving);
    const pointerBefore = (await objects.get(LATEST_KEY))!.body.toString('utf8');

    // weights.bin, model.json and profile.json go through; metrics.json, the write that completes a version, is held.
    const proxy = await holdingProxy(s3.endpoint, /\/models\/[^/]+\/metrics\.json$/);
    const training = train(['--epochs', '1', '--train-limit', '2000', '--force'], {
      MNIST_DIR: mnistDir,
      ...storageEnv(s3),
      S3_ENDPOINT: proxy.url,
      DATA_DIR: await tempDir(),
    });
    const outcome = await Promise.race([proxy.held, training.exit]);
    assert.equal(
      typeof outcome,
      'string',
      `training ended before uploading metrics.json: ${JSON.stringify(outcome)}\n${training.stderr()}`,
    );
    training.child.kill('SIGKILL');
    assert.equal((await training.exit).signal, 'SIGKILL');
    await proxy.close();

    const partial = /\/models\/([^/]+)\/metrics\.json$/.exec(outcome as string)![1]!;
    const keys = await objects.list(`models/${partial}/`);
    assert.deepEqual(
      keys,
      [`models/${partial}/model.json`, `models/${partial}/profile.json`, `models/${partial}/weights.bin`],
      'killed with the weights, topology and reference profile written, before the metrics',
    );
    assert.equal((await objects.get(LATEST_KEY))!.body.toString('utf8'), pointerBefore);
    assert.deepEqual(
      (await store.list()).map((version) => version.version),
      [serving],
    );
    await assert.rejects(store.promote(partial), /missing or incomplete/);
  });

  test('a corrupt dataset file in the bucket fails training before it starts, naming the file, and writes no version', {
    timeout: 120_000,
  }, async () => {
    const s3 = await s3At(await tempDir('digitnet-faults-s3-'));
    const { objects } = bucketStore(s3);
    const corrupt = 't10k-labels-idx1-ubyte.gz';
    for (const file of Object.keys(MNIST_FILES)) {
      const bytes = await readFile(path.join(mnistDir, file));
      if (file === corrupt) bytes[bytes.length >> 1]! ^= 0xff;
      await objects.put(MNIST_PREFIX + file, bytes, 'application/gzip');
    }

    const training = train(['--epochs', '1', '--train-limit', '2000', '--force'], {
      MNIST_DIR: '',
      // Nothing may be downloaded instead: a closed local port.
      MNIST_BASE_URL: 'http://127.0.0.1:9/',
      ...storageEnv(s3),
      DATA_DIR: await tempDir(),
    });
    const { code } = await training.exit;
    assert.equal(code, 1, training.stderr());
    assert.match(training.stderr(), new RegExp(`training failed: ${corrupt.replace(/\./g, '\\.')}: md5 `));
    assert.doesNotMatch(training.stdout(), /"event":"epoch"/, 'no training step ran');
    assert.deepEqual(await objects.list('models/'), []);
  });
});
