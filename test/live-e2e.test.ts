/**
 * Live learning end to end on the local stack, as a user runs it: uploads
 * with known labels, corrections for the wrong answers and confirmations for
 * some right ones, `npm run live --json` with the exact counts and interval,
 * and a retrain with `--with-feedback` whose metrics carry the live-holdout
 * accuracy.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { encodeGreyPng } from '#lib/image/png-encode';
import { newPredictionId } from '#lib/live/records';
import { MNIST_PIXELS } from '#lib/mnist-shape';
import { createS3Client, S3ObjectStore } from '#lib/storage/objects';
import { ModelStore } from '#lib/storage/store';
import { inHoldout } from '#lib/training/live-data';
import { runScript } from './support/cli.ts';
import { mnistDir, tempDir, testMnist } from './support/env.ts';
import { startLocalStack } from './support/local-stack.ts';

const PORT = 41_000 + Math.floor(Math.random() * 1000);
const url = `http://127.0.0.1:${PORT}`;
const UPLOADS = 320;
const CONFIRMED = 100;
let env: NodeJS.ProcessEnv;
let ready: { s3: string; bucket: string };

before(async () => {
  env = {
    ...process.env,
    MNIST_DIR: mnistDir,
    DATA_DIR: await tempDir('digitnet-live-'),
    PORT: String(PORT),
    MIN_ACCURACY: '0.5',
    // Captures reach the bucket a moment after each answer, not five seconds later.
    CAPTURE_FLUSH_SECONDS: '0.1',
    // One user sends a few answers a minute; this test sends a few hundred at once.
    FEEDBACK_RATE_PER_SECOND: '1000',
    FEEDBACK_BURST: '1000',
    BUCKET: '',
    S3_ENDPOINT: '',
  };
  ({ ready } = await startLocalStack(env, ['--epochs', '1', '--workers', '2']));
});

const cli = (script: string, args: string[]) => runScript(`scripts/${script}.ts`, args, { env });

async function post(path: string, body: unknown): Promise<Record<string, unknown> & { status: number }> {
  const response = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, ...((await response.json()) as Record<string, unknown>) };
}

/** The 95% Wilson score interval, written out here rather than imported, so the test checks the CLI's arithmetic. */
function wilson(correct: number, n: number): [number, number] {
  const z = 1.959963984540054;
  const p = correct / n;
  const centre = p + (z * z) / (2 * n);
  const spread = z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  const scale = 1 + (z * z) / n;
  return [(centre - spread) / scale, (centre + spread) / scale];
}

interface LiveVersion {
  version: string;
  predictions: number;
  feedback: number;
  correct: number;
  accuracy: number;
  low: number;
  high: number;
}

describe('live learning on npm start', () => {
  const answers: { predictionId: string; digit: number; label: number }[] = [];
  let version: string;

  test('every upload is answered with a prediction id; corrections and confirmations are accepted', async () => {
    const { test: split } = await testMnist();
    for (let start = 0; start < UPLOADS; start += 32) {
      const indices = Array.from({ length: Math.min(32, UPLOADS - start) }, (_, k) => start + k);
      const images = indices.map((i) =>
        encodeGreyPng(
          split.images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS).map((v) => 255 - v),
          28,
          28,
        ).toString('base64'),
      );
      const result = await post('/predict', { images });
      assert.equal(result.status, 200);
      version = result.modelVersion as string;
      (result.predictions as { predictionId: string; digit: number }[]).forEach((p, k) =>
        answers.push({ predictionId: p.predictionId, digit: p.digit, label: split.labels[indices[k]!]! }),
      );
    }
    const wrong = answers.filter((a) => a.digit !== a.label);
    const right = answers.filter((a) => a.digit === a.label).slice(0, CONFIRMED);
    assert.ok(wrong.length > 0, 'a one-epoch MLP gets some of 320 digits wrong');
    for (const a of wrong) {
      // A first, mistaken correction; the second one replaces it.
      assert.equal((await post('/feedback', { predictionId: a.predictionId, label: (a.label + 1) % 10 })).status, 200);
      assert.equal((await post('/feedback', { predictionId: a.predictionId, label: a.label })).status, 200);
    }
    for (const a of right)
      assert.equal((await post('/feedback', { predictionId: a.predictionId, correct: true })).status, 200);
    // An id the service never issued: accepted by the route, kept out of every count.
    assert.equal((await post('/feedback', { predictionId: newPredictionId(), label: 1 })).status, 200);
  });

  test('npm run live --json reports the exact counts and the Wilson interval', async () => {
    const wrong = answers.filter((a) => a.digit !== a.label).length;
    const feedback = wrong + CONFIRMED;
    let served: LiveVersion | undefined;
    // Each server process writes its captures a moment after answering: ask until all of them are in.
    for (let attempt = 0; attempt < 100 && served?.predictions !== UPLOADS; attempt++) {
      const run = await cli('live', ['--json']);
      assert.equal(run.code, 0, run.stderr);
      served = (JSON.parse(run.stdout) as { versions: LiveVersion[] }).versions.find((v) => v.version === version);
    }
    assert.ok(served);
    const [low, high] = wilson(CONFIRMED, feedback);
    assert.deepEqual(
      { predictions: served.predictions, feedback: served.feedback, correct: served.correct },
      { predictions: UPLOADS, feedback, correct: CONFIRMED },
    );
    assert.ok(Math.abs(served.accuracy - CONFIRMED / feedback) < 1e-9);
    assert.ok(Math.abs(served.low - low) < 1e-4, `${served.low} vs ${low}`);
    assert.ok(Math.abs(served.high - high) < 1e-4, `${served.high} vs ${high}`);

    const model = (await (await fetch(`${url}/model`)).json()) as { live: LiveVersion | null };
    assert.equal(model.live?.feedback, feedback);
  });

  test('a retrain with --with-feedback records the live-holdout accuracy beside the MNIST test accuracy', async () => {
    const run = await cli('retrain', ['--arch', 'mlp', '--epochs', '1', '--with-feedback', '--wait']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout + run.stderr, /live-holdout accuracy \d+\.\d+%/);
    const models = await cli('models', ['--json']);
    const versions = JSON.parse(models.stdout) as { version: string; liveAccuracy?: number }[];
    const trained = versions.find((v) => v.version !== version && v.liveAccuracy !== undefined);
    assert.ok(trained, models.stdout);

    // The job's own record: the holdout is exactly the labelled predictions the id hash sets aside.
    const credentials = JSON.parse(await readFile(path.join(env.DATA_DIR!, 's3', 'credentials.json'), 'utf8'));
    const s3 = createS3Client({ bucket: ready.bucket, endpoint: ready.s3, region: 'us-east-1', credentials });
    try {
      const store = new ModelStore(new S3ObjectStore(s3, ready.bucket));
      const { liveHoldout, feedback } = (await store.metrics(trained.version))!;
      const labelled = [
        ...answers.filter((a) => a.digit !== a.label),
        ...answers.filter((a) => a.digit === a.label).slice(0, CONFIRMED),
      ];
      assert.equal(liveHoldout?.count, labelled.filter((a) => inHoldout(a.predictionId)).length);
      assert.equal(liveHoldout?.accuracy, trained.liveAccuracy);
      assert.equal(liveHoldout?.servingVersion, version);
      assert.equal(feedback?.available, labelled.filter((a) => !inHoldout(a.predictionId)).length);
    } finally {
      s3.destroy();
    }
  });
});
