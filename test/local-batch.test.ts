/**
 * Why a local training job failed: the local Batch keeps the last error the
 * job wrote to stderr — a JSON log line at level error, its "training failed"
 * line, or node's report of a crash — however the pipe cut that output into
 * chunks, and `npm run retrain -- --wait` prints it as the job's status reason.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, test } from 'node:test';
import type { JobDetail } from '@aws-sdk/client-batch';
import fc from 'fast-check';
import { createLogger } from '#lib/log';
import { ModelStore } from '#lib/storage/store';
import { makeHandler as makeOperatorHandler } from '../functions/retrain/app.ts';
import { LOCAL_JOB_DEFINITION, LOCAL_QUEUE, LocalBatch } from '../scripts/local/batch.ts';
import { serveHandler } from '../scripts/local/http-adapter.ts';
import { errorOf, lastErrorOf } from '../scripts/local/job-output.ts';
import { localHandler } from '../scripts/local/routes.ts';
import { runScript } from './support/cli.ts';
import { tempDir, testBucket } from './support/env.ts';

const silent = createLogger({ service: 'test' }, () => {});

/** What functions/train/main.ts writes to stderr when the dataset cannot be downloaded. */
const FAILED_DOWNLOAD = [
  JSON.stringify({
    level: 'warn',
    time: '2026-12-02T18:00:00.000Z',
    service: 'digitnet',
    message: 'MNIST download failed, retrying',
    attempt: 1,
  }),
  JSON.stringify({
    level: 'error',
    time: '2026-12-02T18:00:04.000Z',
    service: 'digitnet',
    message: 'training failed',
    error: {
      name: 'DatasetError',
      message: 'train-images-idx3-ubyte.gz: download failed after 4 attempts: HTTP 500',
      stack: 'DatasetError: …\n    at …',
    },
  }),
  'training failed: train-images-idx3-ubyte.gz: download failed after 4 attempts: HTTP 500',
].join('\n');

describe('errorOf', () => {
  const lines: [string, string | undefined][] = [
    [
      FAILED_DOWNLOAD.split('\n')[1]!,
      'training failed: train-images-idx3-ubyte.gz: download failed after 4 attempts: HTTP 500',
    ],
    ['{"level":"error","message":"storage failed"}', 'storage failed'],
    ['{"level":"warn","message":"MNIST download failed, retrying","error":{"message":"HTTP 500"}}', undefined],
    ['{"event":"epoch","epoch":1,"epochs":3}', undefined],
    ['training failed: out of memory', 'training failed: out of memory'],
    [
      'TypeError: Cannot read properties of undefined (reading "shape")',
      'TypeError: Cannot read properties of undefined (reading "shape")',
    ],
    [
      "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'tsx'",
      "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'tsx'",
    ],
    ['    at loadMnist (functions/lib/mnist.ts:12:3)', undefined],
    ['{"level":"error", truncated', undefined],
    ['', undefined],
  ];
  for (const [line, expected] of lines) {
    test(`${JSON.stringify(line.slice(0, 60))} states ${expected === undefined ? 'no error' : 'its error'}`, () => {
      assert.equal(errorOf(line), expected);
    });
  }
});

describe('lastErrorOf', () => {
  /** Feeds `text` to a stream cut at `cuts` (byte offsets) and resolves with the last error read once it ends. */
  async function lastErrorWhenCut(text: string, cuts: number[]): Promise<string | undefined> {
    const stream = new PassThrough();
    const errors = lastErrorOf(stream);
    const bytes = Buffer.from(text);
    const bounds = [0, ...[...new Set(cuts)].sort((a, b) => a - b), bytes.length];
    for (let i = 1; i < bounds.length; i++) stream.write(bytes.subarray(bounds[i - 1], bounds[i]));
    stream.end();
    await once(stream, 'end');
    return errors.last;
  }

  test('keeps the last error stated, whether a chunk holds several lines or a line spans chunks', async () => {
    const text = `${FAILED_DOWNLOAD}\n`;
    const expected = 'training failed: train-images-idx3-ubyte.gz: download failed after 4 attempts: HTTP 500';
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat({ max: Buffer.byteLength(text) }), { maxLength: 12 }), async (cuts) => {
        assert.equal(await lastErrorWhenCut(text, cuts), expected);
      }),
    );
  });

  test('reads a last line that no newline ends, and a character cut in half', async () => {
    const text = '{"level":"error","message":"training failed","error":{"message":"no space left for “weights.bin”"}}';
    const middleOfQuote = Buffer.from(text).indexOf(Buffer.from('“')) + 1;
    assert.equal(await lastErrorWhenCut(text, [middleOfQuote]), 'training failed: no space left for “weights.bin”');
  });

  test('is undefined when the output states no error', async () => {
    assert.equal(await lastErrorWhenCut('{"level":"info","message":"MNIST loaded"}\n', [10]), undefined);
  });
});

describe('LocalBatch', () => {
  /** Runs one job of `command` and resolves with its description once Batch says it is done. */
  async function finishedJob(command: [string, ...string[]]): Promise<JobDetail> {
    const batch = new LocalBatch({ env: {}, logger: silent, command });
    const jobId = await batch.submit({
      jobName: 'fails',
      jobQueue: LOCAL_QUEUE,
      jobDefinition: LOCAL_JOB_DEFINITION,
      containerOverrides: { environment: [] },
    });
    for (;;) {
      const job = await batch.describe(jobId);
      if (job!.status === 'SUCCEEDED' || job!.status === 'FAILED') return job!;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  test('gives a failed job the last error it wrote, when one write holds its log line and its last word', async () => {
    const job = await finishedJob([
      process.execPath,
      '-e',
      `process.stderr.write(${JSON.stringify(`${FAILED_DOWNLOAD}\n`)}); process.exitCode = 1`,
    ]);
    assert.equal(job.status, 'FAILED');
    assert.equal(
      job.statusReason,
      'training failed: train-images-idx3-ubyte.gz: download failed after 4 attempts: HTTP 500',
    );
  });

  test('gives a crashed job node’s own report of the error', async () => {
    const job = await finishedJob([process.execPath, '-e', 'null.shape']);
    assert.equal(job.container?.exitCode, 1);
    assert.match(job.statusReason!, /^TypeError: Cannot read properties of null \(reading 'shape'\)$/);
  });

  test('says how the job ended when it stated no error', async () => {
    const job = await finishedJob([process.execPath, '-e', 'process.exitCode = 3']);
    assert.equal(job.statusReason, 'training exited with code 3');
  });
});

describe('npm run retrain --wait on the local stack, when the job cannot get the dataset', () => {
  let mirror: Server;
  let requests = 0;
  let served: Awaited<ReturnType<typeof serveHandler>>;
  let cwd: string;

  after(async () => {
    mirror?.closeAllConnections();
    mirror?.close();
    await served?.close();
  });

  test('prints the job’s own error, not only its exit code', async () => {
    // A dataset mirror that always answers 500, and a bucket without the dataset: the job's only source fails.
    mirror = createServer((_request, response) => {
      requests++;
      response.writeHead(500).end('unavailable');
    }).listen(0, '127.0.0.1');
    await once(mirror, 'listening');
    const bucket = await testBucket();
    const batch = new LocalBatch({
      env: {
        ...bucket.env,
        MNIST_DIR: undefined,
        MNIST_BASE_URL: `http://127.0.0.1:${(mirror.address() as AddressInfo).port}/`,
        DATA_DIR: await tempDir('digitnet-job-data-'),
      },
      logger: silent,
    });
    const operator = makeOperatorHandler({
      batch,
      store: new ModelStore(bucket.objects),
      target: { jobQueue: LOCAL_QUEUE, jobDefinition: LOCAL_JOB_DEFINITION },
      logger: silent,
    });
    const token = 'local-batch-test-token';
    const predict = async () => ({ statusCode: 404, body: '' });
    served = await serveHandler(localHandler({ predict, feedback: predict, operator, token }), {
      host: '127.0.0.1',
      port: 0,
      onError: () => {},
    });
    cwd = await tempDir('digitnet-retrain-cli-');
    await mkdir(path.join(cwd, '.data'));
    await writeFile(path.join(cwd, '.data', 'local-token'), `${token}\n`);

    const result = await runScript('scripts/retrain.ts', ['--epochs', '1', '--wait', '--url', served.url], {
      cwd,
      env: { PATH: process.env.PATH, HOME: cwd },
    });

    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stderr,
      /^FAILED — training failed: train-images-idx3-ubyte\.gz: download failed after 4 attempts: .*500/m,
    );
    assert.equal(JSON.parse(result.stdout).status, 'FAILED');
    assert.equal(requests, 4);
  });
});
