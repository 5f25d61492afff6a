import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseTrainArgs, UsageError } from '../functions/train/job.ts';
import { ModelStore } from '#lib/storage/store';
import { runScript, type ScriptResult } from './support/cli.ts';
import { mnistDir, tempDir, testBucket } from './support/env.ts';

function train(args: string[], dataDir: string, datasetDir = mnistDir): Promise<ScriptResult> {
  return runScript('functions/train/main.ts', args, {
    env: { ...process.env, MNIST_DIR: datasetDir, DATA_DIR: dataDir, BUCKET: '', S3_ENDPOINT: '' },
    maxBuffer: 16 * 1024 * 1024,
  });
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
    const store = await storeIn(dataDir);
    const [stored] = await store.list();
    assert.equal(stored?.version, outcome.version, 'version stored under the data dir');
    assert.deepEqual(
      stored?.gate,
      { passed: false, reasons: outcome.gate.reasons },
      'the version records why it was refused',
    );
    assert.equal(await store.latest(), undefined, 'nothing promoted');
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
      validationSplit: 0.1,
      seed: 42,
      trainLimit: undefined,
      force: false,
      reason: undefined,
    });
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
    [['--lr-schedule', 'step'], /--lr-schedule must be one of cosine, constant/],
  ] as const) {
    test(`rejects ${argv.join(' ')}`, () => {
      assert.throws(
        () => parseTrainArgs([...argv], {}),
        (error: Error) => error instanceof UsageError && pattern.test(error.message),
      );
    });
  }

  test('rejects unknown flags', () => {
    assert.throws(() => parseTrainArgs(['--epoch', '3'], {}), /Unknown option/);
  });
});

test('exits 1 naming the file when the dataset is missing', async () => {
  const { code, stderr } = await train(['--epochs', '1'], await tempDir(), await tempDir());
  assert.equal(code, 1);
  assert.match(stderr, /training failed: .*train-images-idx3-ubyte\.gz/);
});
