/**
 * The automatic rollout end to end on the local stack, as an operator sees
 * it. A weak version serves; a deliberately worse one (untrained) goes out as
 * a 50% canary, users send labelled drawings and correct the wrong answers,
 * and `npm start`'s rollout timer drops the canary by itself. Then a better
 * one runs as shadow, answering nobody, until the timer promotes it. Each
 * decision is in the audit history with its reason, and every request is
 * answered 200. The versions are far apart (≈10%, ≈85%, ≈97%) so that the
 * policy's 1-point tolerance on a few dozen labels decides the same way on
 * every run.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { before, test } from 'node:test';
import { initBackend } from '#lib/backend';
import { encodeGreyPng } from '#lib/image/png-encode';
import { MNIST_PIXELS } from '#lib/mnist-shape';
import type { PairComparison } from '#lib/live/comparison';
import type { AuditRecord } from '#lib/storage/audit';
import { createS3Client, IN_PROCESS_S3_TIMEOUTS, S3ObjectStore } from '#lib/storage/objects';
import { ModelStore, versionName } from '#lib/storage/store';
import { evaluateModel } from '#lib/training/evaluate';
import { createModel } from '#lib/training/model';
import { trainModel } from '#lib/training/train-loop';
import * as tf from '@tensorflow/tfjs-core';
import { runScript } from './support/cli.ts';
import { mnistDir, tempDir, testMnist } from './support/env.ts';
import { startLocalStack } from './support/local-stack.ts';
import { untrainedTraining } from './support/metrics.ts';
import { storeTrainedModel } from './support/service.ts';

const PORT = 42_000 + Math.floor(Math.random() * 1000);
const url = `http://127.0.0.1:${PORT}`;
/** Far more than the policy needs (40 shared, 20 labelled); each loop ends as soon as the candidate is gone. */
const MAX_ROUNDS = 2000;
/** MNIST test images drawn so far: each phase draws new ones. */
let drawn = 0;
let env: NodeJS.ProcessEnv;
let store: ModelStore;
let serving: string;
/** The stack's own first model, which serves until the test's weak version replaces it. */
let original: string;
let operator: Record<string, string>;

before(async () => {
  env = {
    ...process.env,
    MNIST_DIR: mnistDir,
    DATA_DIR: await tempDir('digitnet-rollout-'),
    PORT: String(PORT),
    MIN_ACCURACY: '0.5',
    CAPTURE_FLUSH_SECONDS: '0.1',
    FEEDBACK_RATE_PER_SECOND: '1000',
    FEEDBACK_BURST: '1000',
    MODEL_REFRESH_SECONDS: '1',
    ROLLOUT_INTERVAL_SECONDS: '0.2',
    ROLLOUT_COOL_DOWN_MINUTES: '0',
    ROLLOUT_MIN_SAMPLES: '40',
    ROLLOUT_MIN_LABELLED: '20',
    BUCKET: '',
    S3_ENDPOINT: '',
  };
  const { ready } = await startLocalStack(env, ['--epochs', '1', '--workers', '2']);
  const credentials = JSON.parse(await readFile(path.join(env.DATA_DIR!, 's3', 'credentials.json'), 'utf8'));
  // The stack's S3 shares two cores with its servers, its training of the first model and this test: no 2.5 s limit.
  const s3 = createS3Client({
    bucket: ready.bucket,
    endpoint: ready.s3,
    region: 'us-east-1',
    credentials,
    timeouts: IN_PROCESS_S3_TIMEOUTS,
  });
  store = new ModelStore(new S3ObjectStore(s3, ready.bucket));
  operator = { authorization: `Bearer ${(await readFile(path.join(env.DATA_DIR!, 'local-token'), 'utf8')).trim()}` };
  original = (await store.latest())!.version;
  serving = await storeVersionTrainedOn(store, 1000);
  const promoted = await post('/promote', { version: serving }, operator);
  assert.equal(promoted.status, 200, JSON.stringify(promoted));
});

async function post(
  route: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Record<string, unknown> & { status: number }> {
  const response = await fetch(url + route, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, ...((await response.json()) as Record<string, unknown>) };
}

/**
 * An MLP trained for one epoch on the first `count` training images (none: untrained, about one answer in ten
 * right; 1,000: about 85%), stored as a complete version. The stack's own first model is better than both.
 */
async function storeVersionTrainedOn(store: ModelStore, count: number): Promise<string> {
  await initBackend();
  const { train, test } = await testMnist();
  const version = versionName('mlp', new Date());
  const model = createModel({ arch: 'mlp', seed: 7 });
  const options = { epochs: 1, batchSize: 64, learningRate: 1e-3, schedule: 'cosine' as const, seed: 7 };
  const training =
    count === 0
      ? untrainedTraining(options.batchSize)
      : {
          ...options,
          ...(await trainModel(
            model,
            {
              images: train.images.subarray(0, count * MNIST_PIXELS),
              labels: train.labels.subarray(0, count),
              count,
            },
            { ...options, validationSplit: 0 },
          )),
        };
  await store.save(model, {
    version,
    arch: 'mlp',
    createdAt: new Date().toISOString(),
    backend: tf.getBackend(),
    params: model.countParams(),
    training,
    test: await evaluateModel(model, test),
  });
  model.dispose();
  return version;
}

/**
 * Users draw MNIST test digits (dark on light, as the page sends them) and tell the service whether each answer was
 * right, while `going()` holds; returns the versions that answered. The condition is read every 10 rounds: the
 * embedded S3 is busy enough with the stack's own reads.
 */
async function sendLabelledTrafficWhile(going: () => Promise<boolean>): Promise<Set<string>> {
  const { test: split } = await testMnist();
  const answeredBy = new Set<string>();
  for (let round = 0; round % 10 !== 0 || (await going()); round++) {
    assert.ok(round < MAX_ROUNDS, `the rollout timer had not decided after ${round} labelled uploads`);
    const i = drawn++ % split.count;
    const pixels = split.images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS).map((v) => 255 - v);
    const answer = await post('/predict', { image: encodeGreyPng(pixels, 28, 28).toString('base64') });
    assert.equal(answer.status, 200, JSON.stringify(answer));
    answeredBy.add(answer.modelVersion as string);
    const label = split.labels[i]!;
    const feedback = answer.digit === label ? { correct: true } : { label };
    const sent = await post('/feedback', { predictionId: answer.predictionId, ...feedback });
    assert.equal(sent.status, 200, JSON.stringify(sent));
  }
  return answeredBy;
}

async function history(): Promise<AuditRecord[]> {
  const run = await runScript('scripts/models.ts', ['--history', '--json'], { env });
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout) as AuditRecord[];
}

const candidateSet = async () => Boolean((await store.latest())?.candidate);

test('a worse canary is dropped automatically, with its reason in the history, and every request is answered', async () => {
  const worse = await storeVersionTrainedOn(store, 0);
  const canary = await post(
    '/promote',
    { version: worse, mode: 'canary', percent: 50, reason: 'try the new one on half the traffic' },
    operator,
  );
  assert.equal(canary.status, 200, JSON.stringify(canary));

  const answeredBy = await sendLabelledTrafficWhile(candidateSet);
  // The first answers may come from a server that has not yet re-read the pointer since the weak version's promotion.
  answeredBy.delete(original);
  assert.deepEqual([...answeredBy].sort(), [serving, worse].sort(), 'both versions answered while the canary ran');
  assert.equal((await store.latest())?.version, serving);

  const [set, dropped] = (await history()).slice(-2);
  assert.deepEqual(
    [set?.actor, set?.action, set?.reason],
    ['operator', 'set-candidate', 'try the new one on half the traffic'],
  );
  assert.deepEqual(
    [dropped?.actor, dropped?.action, dropped?.candidate?.from?.version],
    ['rollback', 'clear-candidate', worse],
  );
  assert.match(
    dropped?.reason ?? '',
    new RegExp(`^${worse} is \\d+\\.\\d% on \\d+ labelled inputs, more than 1\\.0% below ${serving}`),
  );
});

test('then a better version as shadow answers nobody, and is promoted automatically once the policy is met', async () => {
  const better = await storeTrainedModel(store);
  const shadow = await post('/promote', { version: better, mode: 'shadow' }, operator);
  assert.equal(shadow.status, 200, JSON.stringify(shadow));

  await sendLabelledTrafficWhile(candidateSet);
  assert.equal((await store.latest())?.version, better);
  // The captures carry the shadow's answer beside the serving one's, and it answered none of them.
  const live = await runScript('scripts/live.ts', ['--json', '--no-write'], { env });
  assert.equal(live.code, 0, live.stderr);
  const pair = (JSON.parse(live.stdout).comparisons as PairComparison[]).find((c) => c.versions.includes(better));
  assert.ok(pair && pair.compared >= 40, JSON.stringify(pair));
  assert.deepEqual(
    pair.scores.map((score) => [score.version, score.answered]),
    [
      [better, 0],
      [serving, pair.compared],
    ],
  );

  const promoted = (await history()).at(-1);
  assert.deepEqual(
    [promoted?.actor, promoted?.action, promoted?.from, promoted?.to, promoted?.candidate?.from?.version],
    ['schedule', 'promote', serving, better, better],
  );
  assert.match(promoted?.reason ?? '', new RegExp(`^${better} (is \\d+\\.\\d% on \\d+ labelled inputs|agrees with)`));

  const afterwards = await post('/predict', { pixels: Array.from({ length: MNIST_PIXELS }, () => 0) });
  assert.equal(afterwards.status, 200);
});
