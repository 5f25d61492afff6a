import assert from 'node:assert/strict';
import type { AuditRecord } from '#lib/storage/audit';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseTrainArgs, threadsFor, UsageError } from '../functions/train/job.ts';
import { BucketCaptureSink } from '#lib/live/capture-sink';
import { PROFILE_FILE, PROFILE_MAX_BYTES, parseProfile } from '#lib/live/profile';
import { feedbackKey, newPredictionId, type CaptureRecord } from '#lib/live/records';
import { logger } from '#lib/log';
import { MNIST_PIXELS } from '#lib/mnist-shape';
import { feedbackBudget, inHoldout } from '#lib/training/live-data';
import { ModelStore } from '#lib/storage/store';
import { runScript, type ScriptResult } from './support/cli.ts';
import { mnistDir, tempDir, testBucket, testMnist, type TestBucket } from './support/env.ts';

/** Metrics on and the stage set, as the stack sets them for the Batch job. */
function train(args: string[], dataDir: string, datasetDir = mnistDir): Promise<ScriptResult> {
  return runScript('functions/train/main.ts', args, {
    env: {
      ...process.env,
      MNIST_DIR: datasetDir,
      DATA_DIR: dataDir,
      BUCKET: '',
      S3_ENDPOINT: '',
      METRICS: 'emf',
      STAGE: 'dev',
    },
    maxBuffer: 16 * 1024 * 1024,
  });
}

/** A run against a bucket the test opened (and may have seeded) itself. */
async function trainIn(bucket: TestBucket, args: string[]): Promise<ScriptResult> {
  return runScript('functions/train/main.ts', args, {
    env: { ...process.env, MNIST_DIR: mnistDir, DATA_DIR: await tempDir(), ...bucket.env },
    maxBuffer: 16 * 1024 * 1024,
  });
}

/**
 * Users' drawings as the predict function would have captured them (the
 * first `count` MNIST test digits, every third answered wrongly), each with
 * feedback: a correction when the answer was wrong, a confirmation when
 * right; plus feedback for ids never captured, which must change nothing.
 */
async function seedLiveData(bucket: TestBucket, count: number): Promise<string[]> {
  const { test } = await testMnist();
  const sink = new BucketCaptureSink(bucket.objects, {
    maxRecords: 10_000,
    flushSeconds: 3600,
    writerId: 'test',
    logger,
  });
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const at = new Date(Date.UTC(2026, 11, 1, 12) + i * 1000);
    const id = newPredictionId(at);
    const label = test.labels[i]!;
    const digit = i % 3 === 0 ? (label + 1) % 10 : label;
    const record: CaptureRecord = {
      type: 'capture',
      schema: 1,
      predictionId: id,
      time: at.toISOString(),
      modelVersion: '20261130T000000Z-mlp',
      digit,
      confidence: 0.9,
      probabilities: Array.from({ length: 10 }, (_, d) => (d === digit ? 0.9 : 0.1 / 9)),
      input: Buffer.from(test.images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS)).toString('base64'),
      format: 'png',
      latencyMs: 3,
    };
    sink.write(record);
    const answer = digit === label ? { correct: true } : { label };
    const feedback = { type: 'feedback', schema: 1, predictionId: id, time: at.toISOString(), ...answer };
    await bucket.objects.put(feedbackKey(id), JSON.stringify(feedback), 'application/json');
    ids.push(id);
  }
  await sink.flush();
  for (let i = 0; i < 5; i++) {
    const stranger = newPredictionId(new Date(Date.UTC(2026, 11, 2, 12) + i * 1000));
    const feedback = { type: 'feedback', schema: 1, predictionId: stranger, time: new Date().toISOString(), label: 1 };
    await bucket.objects.put(feedbackKey(stranger), JSON.stringify(feedback), 'application/json');
  }
  return ids;
}

/** The bucket a finished training run left under its data dir, read through a fresh embedded S3. */
async function storeIn(dataDir: string): Promise<ModelStore> {
  const bucket = await testBucket(path.join(dataDir, 's3'));
  return new ModelStore(bucket.objects);
}

const lastLine = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!);

describe('npm run train', () => {
  test('trains on the embedded S3, ends with the JSON result, and the gate refuses a weak model', async () => {
    const dataDir = await tempDir();
    const result = await train(['--epochs', '1', '--train-limit', '2000', '--batch-size', '32'], dataDir);
    assert.equal(result.code, 0, result.stderr);
    const outcome = lastLine(result.stdout);
    for (const key of [
      'version',
      'arch',
      'epochs',
      'backend',
      'testAccuracy',
      'testLoss',
      'secondsPerEpoch',
      'threads',
      'promoted',
    ]) {
      assert.ok(key in outcome, `result has ${key}`);
    }
    assert.equal(outcome.arch, 'mlp');
    assert.ok(outcome.testAccuracy > 0.8 && outcome.testAccuracy < 0.975, `accuracy ${outcome.testAccuracy}`);
    assert.equal(outcome.promoted, false);
    assert.match(outcome.gate.reasons[0], /below the minimum/);
    const progressLines = result.stdout
      .trim()
      .split('\n')
      .slice(0, -1)
      .map((line) => JSON.parse(line));
    assert.ok(
      progressLines.some((line) => line.event === 'epoch'),
      'JSON progress lines when stdout is not a terminal',
    );
    const metrics = result.stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line))
      .filter((line) => line.message === 'metrics');
    assert.equal(metrics.length, 1, 'one metrics line per run');
    const { _aws, stage, component, arch, EpochSeconds, TestAccuracy, GatePassed, Promoted } = metrics[0];
    assert.deepEqual(
      { stage, component, arch, TestAccuracy, GatePassed, Promoted },
      { stage: 'dev', component: 'train', arch: 'mlp', TestAccuracy: outcome.testAccuracy, GatePassed: 0, Promoted: 0 },
    );
    assert.equal(EpochSeconds, outcome.secondsPerEpoch);
    assert.deepEqual(
      _aws.CloudWatchMetrics.map((d: { Metrics: { Name: string }[] }) => d.Metrics.map((m) => m.Name)),
      [
        ['EpochSeconds', 'TestAccuracy'],
        ['GatePassed', 'Promoted'],
      ],
      'no LiveHoldoutAccuracy without labelled captures',
    );
    const store = await storeIn(dataDir);
    const [stored] = await store.list();
    assert.equal(stored?.version, outcome.version, 'version stored under the data dir');
    assert.deepEqual(
      stored?.gate,
      { passed: false, reasons: outcome.gate.reasons },
      'the version records why it was refused',
    );
    assert.equal(await store.latest(), undefined, 'nothing promoted');
    const profile = parseProfile((await store.verifiedFile(outcome.version, PROFILE_FILE, PROFILE_MAX_BYTES))!);
    assert.ok(!('problem' in profile), 'the version stores its reference profile, covered by its checksums');
    assert.equal(profile.count, 10_000, 'profiled on the test set');
    assert.ok(
      profile.features.classMix.every((n) => n > 500),
      `with the new version’s answers, about 1,000 per digit: ${profile.features.classMix}`,
    );
    const report = (await store.attachment(outcome.version, 'report.html'))?.toString('utf8');
    assert.match(
      report ?? '',
      /<svg[\s\S]*data:image\/png;base64,/,
      'the version stores its HTML report with charts and mistake thumbnails',
    );
  });

  test('--force promotes past the gate and records the reason', async () => {
    const dataDir = await tempDir();
    const result = await train(
      ['--epochs', '1', '--train-limit', '1000', '--force', '--reason', 'smoke test'],
      dataDir,
    );
    assert.equal(result.code, 0, result.stderr);
    const outcome = lastLine(result.stdout);
    assert.equal(outcome.promoted, true);
    assert.equal(outcome.gate.forced, true);
    const latest = await (await storeIn(dataDir)).latest();
    assert.equal(latest?.version, outcome.version);
    assert.deepEqual(latest?.forced, { reason: 'smoke test' });
    assert.match(result.stderr, /quality gate overridden.*smoke test/);
    const record = (await (await storeIn(dataDir)).history()).at(-1) as AuditRecord;
    assert.deepEqual(
      [record.actor, record.action, record.from, record.to],
      ['training', 'promote', null, outcome.version],
    );
    assert.match(record.reason ?? '', /^forced past the quality gate \(.*\): smoke test$/);
  });

  test('never promotes over a pinned pointer, even with --force, and says why', async () => {
    const dataDir = await tempDir();
    const first = lastLine((await train(['--epochs', '1', '--train-limit', '1000', '--force'], dataDir)).stdout);
    await (await storeIn(dataDir)).setPinned(true);
    const result = await train(['--epochs', '1', '--train-limit', '1000', '--force'], dataDir);
    assert.equal(result.code, 0, result.stderr);
    const outcome = lastLine(result.stdout);
    assert.equal(outcome.promoted, false);
    assert.match(outcome.notPromoted, new RegExp(`^${outcome.version} was not promoted: ${first.version} is pinned`));
    const latest = await (await storeIn(dataDir)).latest();
    assert.deepEqual([latest?.version, latest?.pinned], [first.version, true]);
  });

  test('--with-feedback adds the newest corrections up to the share cap and scores new and serving models on the live holdout', async () => {
    const bucket = await testBucket();
    const ids = await seedLiveData(bucket, 300);
    const holdout = ids.filter(inHoldout).length;
    const common = ['--epochs', '1', '--train-limit', '2000', '--batch-size', '32'];

    const first = await trainIn(bucket, [...common, '--force', '--reason', 'a model to serve']);
    assert.equal(first.code, 0, first.stderr);
    const serving = lastLine(first.stdout);
    assert.equal(serving.promoted, true);
    assert.equal(serving.feedback, undefined, 'no --with-feedback, no feedback trained on');
    assert.equal(serving.liveHoldout.count, holdout, 'scored on the live holdout even without --with-feedback');
    assert.equal(serving.liveHoldout.servingAccuracy, undefined, 'nothing served before it');

    const second = await trainIn(bucket, [...common, '--with-feedback']);
    assert.equal(second.code, 0, second.stderr);
    const outcome = lastLine(second.stdout);
    const metrics = await new ModelStore(bucket.objects).metrics(outcome.version);
    assert.ok(metrics);
    // 2,000 MNIST images less the 10% validation: 1,800 train; 66 corrections × 3 = 198 ≤ 10% of 1,998, 67 × 3 is not.
    assert.equal(feedbackBudget(1800, 3, 0.1), 66);
    assert.deepEqual(metrics.feedback, { used: 66, available: ids.length - holdout, weight: 3, maxShare: 0.1 });
    assert.equal(metrics.training.trainCount, 1800 + 66 * 3, 'each correction repeated weight times per epoch');
    assert.equal(metrics.training.validationCount, 200, 'validation stays MNIST only');
    assert.match(second.stderr, /feedback added to the training set.*"used":66/);

    const live = metrics.liveHoldout;
    assert.ok(live);
    assert.equal(live.count, holdout, 'the holdout is exactly the ids the hash puts there, and no stranger');
    assert.equal(live.servingVersion, serving.version);
    assert.ok(live.accuracy >= 0 && live.accuracy <= 1);
    assert.ok(typeof live.servingAccuracy === 'number' && live.servingAccuracy >= 0.5, `${live.servingAccuracy}`);
    const liveRefusal = metrics.gate?.reasons.some((r) => /^live-holdout accuracy/.test(r));
    assert.equal(liveRefusal, live.accuracy < live.servingAccuracy - 0.01, 'the gate applied the live rule');
    assert.deepEqual(outcome.liveHoldout, live);
    const report = (await new ModelStore(bucket.objects).attachment(outcome.version, 'report.html'))!.toString();
    assert.match(report, /live holdout/);
  });

  test('exits 2 with the usage on a bad flag', async () => {
    const result = await train(['--arch', 'resnet'], await tempDir());
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--arch must be one of mlp, cnn; got "resnet"/);
    assert.match(result.stderr, /Usage: npm run train/);
  });

  test('--help prints the usage and trains nothing', async () => {
    const result = await train(['--help'], await tempDir());
    assert.equal(result.code, 0);
    assert.match(result.stdout, /--batch-size N/);
  });
});

describe('parseTrainArgs', () => {
  test('defaults to the classic recipe', () => {
    assert.deepEqual(parseTrainArgs([], {}), {
      arch: 'mlp',
      epochs: 10,
      batchSize: 128,
      learningRate: 0.001,
      schedule: 'cosine',
      labelSmoothing: 0,
      validationSplit: 0.1,
      seed: 42,
      trainLimit: undefined,
      augment: false,
      force: false,
      reason: undefined,
    });
  });

  test("the CNN's recipe by default: augmented, warm-up then cosine, label smoothing 0.1; each can be changed", () => {
    const cnn = parseTrainArgs(['--arch', 'cnn'], {});
    assert.ok(cnn !== 'help');
    assert.deepEqual(
      [cnn.augment, cnn.schedule, cnn.labelSmoothing, cnn.learningRate],
      [true, 'warmup-cosine', 0.1, 5e-3],
    );
    const plain = parseTrainArgs(
      ['--arch', 'cnn', '--no-augment', '--lr-schedule', 'cosine', '--label-smoothing', '0'],
      {},
    );
    assert.ok(plain !== 'help');
    assert.deepEqual([plain.augment, plain.schedule, plain.labelSmoothing], [false, 'cosine', 0]);
    const mlp = parseTrainArgs(['--augment', '--label-smoothing', '0.05'], {});
    assert.ok(mlp !== 'help');
    assert.deepEqual([mlp.augment, mlp.labelSmoothing], [true, 0.05]);
  });

  test('reads ARCH, EPOCHS and BATCH_SIZE from the environment; flags win', () => {
    const args = parseTrainArgs(['--epochs', '3'], { ARCH: 'cnn', EPOCHS: '12', BATCH_SIZE: '64' });
    assert.ok(args !== 'help');
    assert.equal(args.arch, 'cnn');
    assert.equal(args.epochs, 3);
    assert.equal(args.batchSize, 64);
  });

  for (const [argv, pattern] of [
    [['--epochs', '0'], /--epochs must be a whole number from 1/],
    [['--epochs', '2.5'], /--epochs/],
    [['--batch-size', 'lots'], /--batch-size/],
    [['--learning-rate', '0'], /--learning-rate/],
    [['--validation-split', '0.9'], /--validation-split/],
    [['--train-limit', '10'], /--train-limit/],
    [['--lr-schedule', 'step'], /--lr-schedule must be one of cosine, warmup-cosine, constant/],
    [['--label-smoothing', '0.6'], /--label-smoothing must be a number from 0 to 0.5/],
    [['--augment', '--no-augment'], /--augment and --no-augment contradict each other/],
    [['--threads', '0'], /--threads must be a whole number from 1 to 64; got "0"/],
    [['--threads', '65'], /--threads must be a whole number from 1 to 64/],
    [['--threads', '1.5'], /--threads/],
  ] as const) {
    test(`rejects ${argv.join(' ')}`, () => {
      assert.throws(
        () => parseTrainArgs([...argv], {}),
        (error: Error) => error instanceof UsageError && pattern.test(error.message),
      );
    });
  }

  test("--with-feedback sets the corrections' default weight and share; flags or WITH_FEEDBACK turn it on", () => {
    const on = parseTrainArgs(['--with-feedback'], {});
    assert.ok(on !== 'help');
    assert.deepEqual(on.feedback, { weight: 3, maxShare: 0.1 });
    const tuned = parseTrainArgs(['--with-feedback', '--feedback-weight', '10', '--feedback-max-share', '0.5'], {});
    assert.ok(tuned !== 'help');
    assert.deepEqual(tuned.feedback, { weight: 10, maxShare: 0.5 });
    const fromEnv = parseTrainArgs([], { WITH_FEEDBACK: 'true' });
    assert.ok(fromEnv !== 'help');
    assert.deepEqual(fromEnv.feedback, { weight: 3, maxShare: 0.1 });
    const off = parseTrainArgs([], { WITH_FEEDBACK: 'false' });
    assert.ok(off !== 'help');
    assert.equal(off.feedback, undefined);
  });

  for (const [argv, env, pattern] of [
    [
      ['--with-feedback', '--feedback-weight', '0'],
      {},
      /--feedback-weight must be a whole number from 1 to 10; got "0"/,
    ],
    [['--with-feedback', '--feedback-weight', '11'], {}, /--feedback-weight must be a whole number from 1 to 10/],
    [['--with-feedback', '--feedback-weight', '2.5'], {}, /--feedback-weight/],
    [['--with-feedback', '--feedback-max-share', '0'], {}, /--feedback-max-share must be a number from 0.01 to 0.5/],
    [['--with-feedback', '--feedback-max-share', '0.6'], {}, /--feedback-max-share/],
    [['--with-feedback', '--feedback-max-share', 'lots'], {}, /--feedback-max-share/],
    [['--feedback-weight', '2'], {}, /apply only with --with-feedback/],
    [['--feedback-max-share', '0.2'], {}, /apply only with --with-feedback/],
    [[], { WITH_FEEDBACK: 'yes' }, /WITH_FEEDBACK must be true or false; got "yes"/],
  ] as const) {
    test(`rejects ${[...argv, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].join(' ')}`, () => {
      assert.throws(
        () => parseTrainArgs([...argv], env),
        (error: Error) => error instanceof UsageError && pattern.test(error.message),
      );
    });
  }

  test('--threads wins over TRAIN_THREADS, which wins over one thread per core (1 on native TensorFlow)', () => {
    const flag = parseTrainArgs(['--threads', '3'], {});
    assert.ok(flag !== 'help');
    assert.equal(flag.threads, 3);
    assert.equal(threadsFor(flag, { trainThreads: 1 }, 'wasm'), 3);
    const none = parseTrainArgs([], {});
    assert.ok(none !== 'help');
    assert.equal(none.threads, undefined);
    assert.equal(threadsFor(none, { trainThreads: 1 }, 'wasm'), 1);
    assert.equal(threadsFor(none, {}, 'wasm'), os.availableParallelism());
    assert.equal(threadsFor(none, {}, 'cpu'), os.availableParallelism());
    assert.equal(threadsFor(none, {}, 'node'), 1);
  });

  test('rejects unknown flags', () => {
    assert.throws(() => parseTrainArgs(['--epoch', '3'], {}), /Unknown option/);
  });
});

test('exits 1 naming the file when the dataset is missing', async () => {
  const { code, stderr } = await train(['--epochs', '1'], await tempDir(), await tempDir());
  assert.equal(code, 1);
  assert.match(stderr, /training failed: .*train-images-idx3-ubyte\.gz/);
});
