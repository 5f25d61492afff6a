/**
 * The automatic rollout end to end on the local stack, as an operator sees
 * it: a deliberately worse version (untrained) goes out as a 50% canary,
 * users send labelled drawings and correct the wrong answers, and `npm
 * start`'s rollout timer drops the canary by itself, with the reason in the
 * audit history, while every request is answered 200.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { initBackend } from '#lib/backend';
import { encodeGreyPng } from '#lib/image/png-encode';
import { MNIST_PIXELS } from '#lib/mnist-shape';
import type { AuditRecord } from '#lib/storage/audit';
import { createS3Client, IN_PROCESS_S3_TIMEOUTS, S3ObjectStore } from '#lib/storage/objects';
import { ModelStore, versionName } from '#lib/storage/store';
import { summarise } from '#lib/training/evaluate';
import { createModel } from '#lib/training/model';
import { runScript } from './support/cli.ts';
import { mnistDir, tempDir, testMnist } from './support/env.ts';
import { type RunningStack, startLocalStack } from './support/local-stack.ts';
import { untrainedTraining } from './support/metrics.ts';

const PORT = 42_000 + Math.floor(Math.random() * 1000);
const url = `http://127.0.0.1:${PORT}`;
/** Far more than the policy needs (40 shared, 20 labelled); the loop ends as soon as the canary is gone. */
const MAX_UPLOADS = 2000;
let env: NodeJS.ProcessEnv;
let stack: RunningStack;
let ready: { s3: string; bucket: string };

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
  stack = await startLocalStack(env, ['--epochs', '1', '--workers', '2']);
  ready = stack.ready;
});
after(() => stack.stop());

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

/** An untrained MLP stored as a complete version: about one answer in ten is right. */
async function storeWorseVersion(store: ModelStore): Promise<string> {
  await initBackend();
  const version = versionName('mlp', new Date());
  const model = createModel({ arch: 'mlp', seed: 7 });
  const confusion = Array.from({ length: 10 }, (_, i) => Array.from({ length: 10 }, (_, j) => (i === j ? 1 : 0)));
  await store.save(model, {
    version,
    arch: 'mlp',
    createdAt: new Date().toISOString(),
    backend: 'cpu',
    params: model.countParams(),
    training: untrainedTraining(128),
    test: { ...summarise(confusion, 0.1), accuracy: 0.1 },
  });
  model.dispose();
  return version;
}

test('a worse canary is dropped automatically, with its reason in the history, and every request is answered', async () => {
  const credentials = JSON.parse(await readFile(path.join(env.DATA_DIR!, 's3', 'credentials.json'), 'utf8'));
  // The stack's S3 shares two cores with its servers, its training of the first model and this test: no 2.5 s limit.
  const s3 = createS3Client({
    bucket: ready.bucket,
    endpoint: ready.s3,
    region: 'us-east-1',
    credentials,
    timeouts: IN_PROCESS_S3_TIMEOUTS,
  });
  const store = new ModelStore(new S3ObjectStore(s3, ready.bucket));
  const serving = (await store.latest())!.version;
  const worse = await storeWorseVersion(store);
  const token = (await readFile(path.join(env.DATA_DIR!, 'local-token'), 'utf8')).trim();
  const canary = await post(
    '/promote',
    { version: worse, mode: 'canary', percent: 50, reason: 'try the new one on half the traffic' },
    { authorization: `Bearer ${token}` },
  );
  assert.equal(canary.status, 200, JSON.stringify(canary));

  const { test: split } = await testMnist();
  const answeredBy = new Set<string>();
  let uploads = 0;
  // Each round is a request and its feedback; the loop ends when the rollout timer has dropped the canary.
  // The pointer is read every 10 rounds: the embedded S3 is busy enough with the stack's own reads.
  while (uploads % 10 !== 0 || (await store.latest())?.candidate) {
    assert.ok(uploads < MAX_UPLOADS, `the canary was still there after ${uploads} labelled uploads`);
    const i = uploads++;
    const pixels = split.images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS).map((v) => 255 - v);
    const answer = await post('/predict', { image: encodeGreyPng(pixels, 28, 28).toString('base64') });
    assert.equal(answer.status, 200, JSON.stringify(answer));
    answeredBy.add(answer.modelVersion as string);
    const label = split.labels[i]!;
    const feedback = answer.digit === label ? { correct: true } : { label };
    const sent = await post('/feedback', { predictionId: answer.predictionId, ...feedback });
    assert.equal(sent.status, 200, JSON.stringify(sent));
  }
  assert.deepEqual([...answeredBy].sort(), [serving, worse].sort(), 'both versions answered while the canary ran');
  assert.equal((await store.latest())?.version, serving);

  const history = await runScript('scripts/models.ts', ['--history', '--json'], { env });
  assert.equal(history.code, 0, history.stderr);
  const records = JSON.parse(history.stdout) as AuditRecord[];
  const [set, dropped] = records.slice(-2);
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

  // Answers keep coming from the serving version once the servers have re-read the pointer.
  const afterwards = await post('/predict', { pixels: Array.from({ length: MNIST_PIXELS }, () => 0) });
  assert.equal(afterwards.status, 200);
});
