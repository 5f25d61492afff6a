import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { before, beforeEach, describe, test } from 'node:test';
import {
  DescribeJobsCommand,
  SubmitJobCommand,
  type BatchClient,
  type JobDetail,
  type JobStatus,
} from '@aws-sdk/client-batch';
import { initBackend } from '#lib/backend';
import type { BatchTarget } from '#lib/config';
import { PointerChangedError } from '#lib/errors';
import type { AuditRecord } from '#lib/storage/audit';
import { createLogger } from '#lib/log';
import { summarise } from '#lib/training/evaluate';
import { createModel } from '#lib/training/model';
import { ModelStore, versionName, type VersionSummary } from '#lib/storage/store';
import { makeHandler, MAX_BODY_BYTES, type RetrainDeps } from '../functions/retrain/app.ts';
import { batchJobs, type BatchJobs, type JobSubmission } from '../functions/retrain/batch-jobs.ts';
import { repoRoot, testBucket, type TestBucket } from './support/env.ts';
import { apiEvent, postJson } from './support/events.ts';
import { untrainedTraining } from './support/metrics.ts';

const target: BatchTarget = {
  jobQueue: 'arn:aws:batch:eu-west-1:123456789012:job-queue/TrainingQueue-abc',
  jobDefinition: 'arn:aws:batch:eu-west-1:123456789012:job-definition/TrainingJobDefinition-abc:3',
};
const NOW = new Date('2026-11-25T22:00:00.000Z');
const JOB_ID = '8c3c6f1e-2b7d-4d1a-9a55-1f2e3d4c5b6a';
const silent = createLogger({ service: 'test' }, () => {});

/** AWS Batch as these tests need it: records every call; knows `jobs`; fails with `failure` when one is set. */
interface FakeBatch extends BatchJobs {
  jobs: JobDetail[];
  failure?: Error;
  submitted: JobSubmission[];
  described: string[];
}

function fakeBatch(): FakeBatch {
  const fake: FakeBatch = {
    jobs: [],
    submitted: [],
    described: [],
    async submit(job) {
      fake.submitted.push(job);
      if (fake.failure) throw fake.failure;
      return JOB_ID;
    },
    async describe(jobId) {
      fake.described.push(jobId);
      if (fake.failure) throw fake.failure;
      return fake.jobs.find((job) => job.jobId === jobId);
    },
  };
  return fake;
}

let batch = fakeBatch();
beforeEach(() => {
  batch = fakeBatch();
});

const notExpected = async () => {
  throw new Error('not expected');
};
const noStore: RetrainDeps['store'] = {
  list: async () => [],
  metrics: async () => undefined,
  promote: notExpected,
  setCandidate: notExpected,
  clearCandidate: notExpected,
  setPinned: notExpected,
};

function handlerWith(store: RetrainDeps['store'] = noStore) {
  return makeHandler({ batch, store, target, logger: silent, now: () => NOW });
}

const parse = (body: unknown) => JSON.parse(String(body));

describe('POST /train', () => {
  test('submits the Batch job with arch, epochs and batch size as container environment', async () => {
    const result = await handlerWith()(postJson('/train', { arch: 'cnn', epochs: 12, batchSize: 256 }));
    assert.equal(result.statusCode, 202);
    assert.deepEqual(batch.submitted[0], {
      jobName: 'digitnet-train-cnn-20261125T220000Z',
      jobQueue: target.jobQueue,
      jobDefinition: target.jobDefinition,
      containerOverrides: {
        environment: [
          { name: 'ARCH', value: 'cnn' },
          { name: 'EPOCHS', value: '12' },
          { name: 'BATCH_SIZE', value: '256' },
        ],
      },
    });
    assert.deepEqual(parse(result.body), {
      jobId: JOB_ID,
      jobName: 'digitnet-train-cnn-20261125T220000Z',
      status: 'SUBMITTED',
      arch: 'cnn',
      epochs: 12,
      batchSize: 256,
    });
    assert.equal(result.headers.location, `/train/${JOB_ID}`);
  });

  test('leaves the batch size to the job when batchSize is omitted', async () => {
    await handlerWith()(postJson('/train', { arch: 'mlp', epochs: 1 }));
    assert.deepEqual(batch.submitted[0].containerOverrides, {
      environment: [
        { name: 'ARCH', value: 'mlp' },
        { name: 'EPOCHS', value: '1' },
      ],
    });
  });

  test('passes withFeedback to the job as WITH_FEEDBACK, and echoes it', async () => {
    for (const withFeedback of [true, false]) {
      batch = fakeBatch();
      const result = await handlerWith()(postJson('/train', { arch: 'mlp', epochs: 1, withFeedback }));
      assert.equal(result.statusCode, 202);
      assert.deepEqual(batch.submitted[0]!.containerOverrides, {
        environment: [
          { name: 'ARCH', value: 'mlp' },
          { name: 'EPOCHS', value: '1' },
          { name: 'WITH_FEEDBACK', value: String(withFeedback) },
        ],
      });
      assert.equal(parse(result.body).withFeedback, withFeedback);
    }
  });

  test('accepts a base64-encoded body', async () => {
    const event = apiEvent('POST', '/train', { body: Buffer.from('{"arch":"mlp","epochs":2}') });
    assert.equal(event.isBase64Encoded, true);
    assert.equal((await handlerWith()(event)).statusCode, 202);
  });

  const rejected: [string, unknown, string][] = [
    ['no body', undefined, 'empty_body'],
    ['a body that is not JSON', '{"arch": "mlp", ', 'invalid_json'],
    ['a JSON array', '[]', 'invalid_body'],
    ['JSON null', 'null', 'invalid_body'],
    ['an unknown architecture', { arch: 'resnet', epochs: 3 }, 'invalid_arch'],
    ['a missing architecture', { epochs: 3 }, 'missing_field'],
    ['an architecture that is not a string', { arch: 1, epochs: 3 }, 'invalid_arch'],
    ['zero epochs', { arch: 'mlp', epochs: 0 }, 'invalid_epochs'],
    ['51 epochs', { arch: 'mlp', epochs: 51 }, 'invalid_epochs'],
    ['fractional epochs', { arch: 'mlp', epochs: 2.5 }, 'invalid_epochs'],
    ['epochs as a string', { arch: 'mlp', epochs: '10' }, 'invalid_epochs'],
    ['missing epochs', { arch: 'mlp' }, 'missing_field'],
    ['a batch size of 8', { arch: 'mlp', epochs: 1, batchSize: 8 }, 'invalid_batch_size'],
    ['a batch size of 2048', { arch: 'mlp', epochs: 1, batchSize: 2048 }, 'invalid_batch_size'],
    ['a batch size as a string', { arch: 'mlp', epochs: 1, batchSize: '128' }, 'invalid_batch_size'],
    ['a null batch size', { arch: 'mlp', epochs: 1, batchSize: null }, 'invalid_batch_size'],
    ['withFeedback as a string', { arch: 'mlp', epochs: 1, withFeedback: 'yes' }, 'invalid_with_feedback'],
    ['withFeedback as a number', { arch: 'mlp', epochs: 1, withFeedback: 1 }, 'invalid_with_feedback'],
    ['a null withFeedback', { arch: 'mlp', epochs: 1, withFeedback: null }, 'invalid_with_feedback'],
    ['an unknown field', { arch: 'mlp', epochs: 1, learningRate: 0.1 }, 'unknown_field'],
  ];
  for (const [what, body, code] of rejected) {
    test(`returns 400 ${code} for ${what}, without calling Batch`, async () => {
      const result = await handlerWith()(postJson('/train', body));
      assert.equal(result.statusCode, 400);
      const { error } = parse(result.body);
      assert.equal(error.code, code);
      assert.equal(typeof error.message, 'string');
      assert.equal(batch.submitted.length, 0);
    });
  }

  test(`returns 413 when the body is over ${MAX_BODY_BYTES} bytes`, async () => {
    const result = await handlerWith()(postJson('/train', { arch: 'mlp', epochs: 1, pad: 'x'.repeat(MAX_BODY_BYTES) }));
    assert.equal(result.statusCode, 413);
  });

  test('returns 502 without the upstream message when Batch refuses the job', async () => {
    const refusal = Object.assign(new Error('User arn:aws:iam::123456789012:role/x is not authorized'), {
      name: 'ClientException',
    });
    batch.failure = refusal;
    const result = await handlerWith()(postJson('/train', { arch: 'mlp', epochs: 1 }));
    assert.equal(result.statusCode, 502);
    const { error } = parse(result.body);
    assert.equal(error.code, 'batch_error');
    assert.match(error.message, /ClientException/);
    assert.doesNotMatch(String(result.body), /123456789012/);
  });
});

function job(status: JobStatus, extra: Partial<JobDetail> = {}): JobDetail {
  return {
    jobId: JOB_ID,
    jobName: 'digitnet-train-mlp-20261125T220000Z',
    jobQueue: target.jobQueue,
    jobDefinition: target.jobDefinition,
    status,
    createdAt: Date.parse('2026-11-25T22:00:00Z'),
    startedAt: Date.parse('2026-11-25T22:02:00Z'),
    container: {
      environment: [
        { name: 'BUCKET', value: 'b' },
        { name: 'ARCH', value: 'mlp' },
        { name: 'EPOCHS', value: '3' },
      ],
    },
    ...extra,
  } as JobDetail;
}

const summary = (
  version: string,
  createdAt: string,
  accuracy: number,
  serving = false,
  jobId?: string,
): VersionSummary => ({
  version,
  arch: version.endsWith('-cnn') ? 'cnn' : 'mlp',
  ...(jobId ? { jobId } : {}),
  accuracy,
  createdAt,
  serving,
});

describe('GET /train/{jobId}', () => {
  const statuses: [JobStatus, boolean][] = [
    ['SUBMITTED', false],
    ['PENDING', false],
    ['RUNNABLE', false],
    ['STARTING', false],
    ['RUNNING', false],
    ['SUCCEEDED', true],
    ['FAILED', true],
  ];
  for (const [status, done] of statuses) {
    test(`reports a ${status} job as ${status} with done=${done}`, async () => {
      batch.jobs = [job(status)];
      const result = await handlerWith()(apiEvent('GET', `/train/${JOB_ID}`));
      assert.equal(result.statusCode, 200);
      const body = parse(result.body);
      assert.equal(body.jobId, JOB_ID);
      assert.equal(body.status, status);
      assert.equal(body.done, done);
      assert.equal(body.arch, 'mlp');
      assert.equal(body.epochs, 3);
    });
  }

  test('names the version recorded with the job id, even when another job overlapped', async () => {
    batch.jobs = [job('SUCCEEDED', { stoppedAt: Date.parse('2026-11-25T22:10:00Z') })];
    const store = {
      ...noStore,
      list: async () => [
        summary('20261125T220500Z-mlp', '2026-11-25T22:05:00Z', 0.976, false, '0f0f0f0f-0000-4000-8000-000000000000'),
        summary('20261125T220900Z-mlp', '2026-11-25T22:09:00Z', 0.978, true, JOB_ID),
      ],
    };
    const body = parse((await handlerWith(store)(apiEvent('GET', `/train/${JOB_ID}`))).body);
    assert.deepEqual(body.model, { version: '20261125T220900Z-mlp', accuracy: 0.978, serving: true });
  });

  test('passes on why the quality gate refused the version', async () => {
    batch.jobs = [job('SUCCEEDED', { stoppedAt: Date.parse('2026-11-25T22:10:00Z') })];
    const gate = { passed: false, reasons: ['test accuracy 96.21% is below the minimum 97.50% for mlp'] };
    const store = {
      ...noStore,
      list: async () => [{ ...summary('20261125T220900Z-mlp', '2026-11-25T22:09:00Z', 0.9621, false, JOB_ID), gate }],
    };
    const body = parse((await handlerWith(store)(apiEvent('GET', `/train/${JOB_ID}`))).body);
    assert.deepEqual(body.model, { version: '20261125T220900Z-mlp', accuracy: 0.9621, serving: false, gate });
  });

  test("passes on the live-holdout accuracy, the live rule's refusal, and whether the job trained on feedback", async () => {
    const withFeedback = job('SUCCEEDED', { stoppedAt: Date.parse('2026-11-25T22:10:00Z') });
    withFeedback.container!.environment!.push({ name: 'WITH_FEEDBACK', value: 'true' });
    batch.jobs = [withFeedback];
    const gate = {
      passed: false,
      reasons: [
        'live-holdout accuracy 88.50% is more than 1 point below the serving model 20261120T100000Z-mlp (90.00%) on the same 200 images',
      ],
    };
    const store = {
      ...noStore,
      list: async () => [
        { ...summary('20261125T220900Z-mlp', '2026-11-25T22:09:00Z', 0.978, false, JOB_ID), liveAccuracy: 0.885, gate },
      ],
    };
    const body = parse((await handlerWith(store)(apiEvent('GET', `/train/${JOB_ID}`))).body);
    assert.equal(body.withFeedback, true);
    assert.deepEqual(body.model, {
      version: '20261125T220900Z-mlp',
      accuracy: 0.978,
      liveAccuracy: 0.885,
      serving: false,
      gate,
    });
  });

  test('finds a version written without a job id by the time the job ran', async () => {
    batch.jobs = [job('SUCCEEDED', { stoppedAt: Date.parse('2026-11-25T22:10:00Z') })];
    const store = {
      ...noStore,
      list: async () => [
        summary('20261120T100000Z-mlp', '2026-11-20T10:00:00Z', 0.981, true),
        summary('20261125T220800Z-cnn', '2026-11-25T22:08:00Z', 0.991),
        summary('20261125T220900Z-mlp', '2026-11-25T22:09:00Z', 0.978),
      ],
    };
    const body = parse((await handlerWith(store)(apiEvent('GET', `/train/${JOB_ID}`))).body);
    assert.deepEqual(body.model, { version: '20261125T220900Z-mlp', accuracy: 0.978, serving: false });
  });

  test('lists every candidate instead of guessing when overlapping jobs wrote versions without job ids', async () => {
    batch.jobs = [job('SUCCEEDED', { stoppedAt: Date.parse('2026-11-25T22:10:00Z') })];
    const store = {
      ...noStore,
      list: async () => [
        summary('20261125T220500Z-mlp', '2026-11-25T22:05:00Z', 0.976),
        summary('20261125T220900Z-mlp', '2026-11-25T22:09:00Z', 0.978, true),
      ],
    };
    const body = parse((await handlerWith(store)(apiEvent('GET', `/train/${JOB_ID}`))).body);
    assert.equal(body.model, undefined);
    assert.deepEqual(
      body.candidates.map((c: { version: string }) => c.version),
      ['20261125T220500Z-mlp', '20261125T220900Z-mlp'],
    );
  });

  test('reports why a failed job failed', async () => {
    const failed = job('FAILED', {
      statusReason: 'Essential container in task exited',
      stoppedAt: Date.parse('2026-11-25T22:03:00Z'),
      container: { exitCode: 1, logStreamName: 'train/default/abc' },
    });
    batch.jobs = [failed];
    const body = parse((await handlerWith()(apiEvent('GET', `/train/${JOB_ID}`))).body);
    assert.equal(body.statusReason, 'Essential container in task exited');
    assert.equal(body.exitCode, 1);
    assert.equal(body.logStreamName, 'train/default/abc');
  });

  test('names the log group of a job that has a log stream: the job definition’s, else Batch’s default', async () => {
    const logged = (options?: Record<string, string>) =>
      job('FAILED', {
        container: {
          exitCode: 1,
          logStreamName: 'train/default/0a1b2c',
          ...(options ? { logConfiguration: { logDriver: 'awslogs', options } } : {}),
        },
      });
    const logGroupOf = async (detail: JobDetail) => {
      batch.jobs = [detail];
      const body = parse((await handlerWith()(apiEvent('GET', `/train/${JOB_ID}`))).body);
      return [body.logGroupName, body.logStreamName];
    };
    const stackGroup = { 'awslogs-group': 'Digitnet-dev-TrainingLogs1A2B3C-xyz', 'awslogs-stream-prefix': 'train' };
    assert.deepEqual(await logGroupOf(logged(stackGroup)), [
      'Digitnet-dev-TrainingLogs1A2B3C-xyz',
      'train/default/0a1b2c',
    ]);
    assert.deepEqual(await logGroupOf(logged()), ['/aws/batch/job', 'train/default/0a1b2c']);
    assert.deepEqual(await logGroupOf(job('RUNNABLE')), [undefined, undefined]);
  });

  test('returns 404 for a job Batch does not know', async () => {
    batch.jobs = [];
    const result = await handlerWith()(apiEvent('GET', `/train/${JOB_ID}`));
    assert.equal(result.statusCode, 404);
    assert.equal(parse(result.body).error.code, 'job_not_found');
  });

  test('returns 404 for a job of another queue in the account', async () => {
    batch.jobs = [job('RUNNING', { jobQueue: 'arn:aws:batch:eu-west-1:123456789012:job-queue/other' })];
    assert.equal((await handlerWith()(apiEvent('GET', `/train/${JOB_ID}`))).statusCode, 404);
  });

  test('returns 400 for something that is not a job id, without calling Batch', async () => {
    const result = await handlerWith()(apiEvent('GET', '/train/..%2Fpromote'));
    assert.equal(result.statusCode, 400);
    assert.equal(parse(result.body).error.code, 'invalid_job_id');
    assert.equal(batch.described.length, 0);
  });

  test('returns 502 when the model versions cannot be listed', async () => {
    batch.jobs = [job('SUCCEEDED', { stoppedAt: Date.parse('2026-11-25T22:10:00Z') })];
    const broken = { ...noStore, list: () => Promise.reject(new Error('socket hang up')) };
    const result = await handlerWith(broken)(apiEvent('GET', `/train/${JOB_ID}`));
    assert.equal(result.statusCode, 502);
    assert.equal(parse(result.body).error.code, 'storage_error');
  });

  test('returns 502 when Batch cannot describe the job', async () => {
    batch.failure = Object.assign(new Error('throttled'), { name: 'TooManyRequestsException' });
    const result = await handlerWith()(apiEvent('GET', `/train/${JOB_ID}`));
    assert.equal(result.statusCode, 502);
    assert.equal(parse(result.body).error.code, 'batch_error');
  });
});

describe('POST /promote on the embedded S3', () => {
  let bucket: TestBucket;
  let store: ModelStore;
  let clock = Date.UTC(2026, 10, 1);

  before(async () => {
    await initBackend();
    bucket = await testBucket();
    store = new ModelStore(bucket.objects);
  });

  async function saveVersion(accuracy: number): Promise<string> {
    clock += 60_000;
    const version = versionName('mlp', new Date(clock));
    const confusion = Array.from({ length: 10 }, (_, i) => Array.from({ length: 10 }, (_, j) => (i === j ? 1 : 0)));
    const model = createModel({ arch: 'mlp', seed: clock % 1000 });
    await store.save(model, {
      version,
      arch: 'mlp',
      createdAt: new Date(clock).toISOString(),
      backend: 'cpu',
      params: model.countParams(),
      training: untrainedTraining(128),
      test: { ...summarise(confusion, 0.1), accuracy },
    });
    model.dispose();
    return version;
  }

  test('points models/latest.json at the version and returns the pointer', async () => {
    const version = await saveVersion(0.98);
    const result = await handlerWith(store)(postJson('/promote', { version }));
    assert.equal(result.statusCode, 200);
    const pointer = parse(result.body);
    assert.equal(pointer.version, version);
    assert.equal(pointer.accuracy, 0.98);
    assert.equal(pointer.promotedAt, NOW.toISOString());
    assert.deepEqual(await store.latest(), pointer);
  });

  test('rolls back to an older version and names the one it replaced', async () => {
    const older = await saveVersion(0.979);
    const newer = await saveVersion(0.981);
    await store.promote(newer);
    const pointer = parse((await handlerWith(store)(postJson('/promote', { version: older }))).body);
    assert.equal(pointer.version, older);
    assert.equal(pointer.previous, newer);
  });

  for (const [what, body, code] of [
    ['a path', { version: '../datasets/mnist' }, 'invalid_version'],
    ['the pointer itself', { version: 'latest' }, 'invalid_version'],
    ['a number', { version: 20261125 }, 'invalid_version'],
    ['no version', {}, 'missing_field'],
  ] as const) {
    test(`returns 400 ${code} for ${what}`, async () => {
      const result = await handlerWith(store)(postJson('/promote', body));
      assert.equal(result.statusCode, 400);
      assert.equal(parse(result.body).error.code, code);
    });
  }

  test('records the operator and the reason given in the audit trail', async () => {
    const version = await saveVersion(0.98);
    const result = await handlerWith(store)(postJson('/promote', { version, reason: '  the fix for #12  ' }));
    assert.equal(result.statusCode, 200);
    // Every write here has the handler's fixed clock, so the record is found by what it says, not its place.
    const records = (await store.history()) as AuditRecord[];
    assert.deepEqual(
      records.filter((r) => r.to === version),
      [
        {
          time: NOW.toISOString(),
          actor: 'operator',
          action: 'promote',
          from: (await store.latest())?.previous ?? null,
          to: version,
          reason: 'the fix for #12',
        },
      ],
    );
  });

  test('pins with a version, then unpins with pin alone', async () => {
    const version = await saveVersion(0.98);
    const pinned = parse((await handlerWith(store)(postJson('/promote', { version, pin: true }))).body);
    assert.equal(pinned.pinned, true);
    const unpinned = await handlerWith(store)(postJson('/promote', { pin: false, reason: 'freeze over' }));
    assert.equal(unpinned.statusCode, 200);
    assert.equal(parse(unpinned.body).pinned, undefined);
    assert.equal(parse(unpinned.body).version, version);
    const records = (await store.history()) as AuditRecord[];
    assert.deepEqual(
      records.filter((r) => r.to === version).map((r) => [r.action, r.reason]),
      [
        ['promote', null],
        ['unpin', 'freeze over'],
      ],
    );
  });

  for (const [what, body, field] of [
    ['a pin that is not a boolean', { version: '20261125T220000Z-mlp', pin: 'yes' }, 'pin'],
    ['a pin on a shadow', { version: '20261125T220000Z-mlp', mode: 'shadow', pin: true }, 'pin'],
    ['a reason that is not text', { version: '20261125T220000Z-mlp', reason: 42 }, 'reason'],
    ['an empty reason', { version: '20261125T220000Z-mlp', reason: '   ' }, 'reason'],
    ['a reason of two lines', { version: '20261125T220000Z-mlp', reason: 'one\ntwo' }, 'reason'],
    ['a reason over 500 characters', { version: '20261125T220000Z-mlp', reason: 'x'.repeat(501) }, 'reason'],
  ] as const) {
    test(`returns 400 naming ${field} for ${what}`, async () => {
      const result = await handlerWith(store)(postJson('/promote', body));
      assert.equal(result.statusCode, 400);
      assert.match(parse(result.body).error.message, new RegExp(field));
    });
  }

  test('returns 400 for pin alone with another field', async () => {
    const result = await handlerWith(store)(postJson('/promote', { pin: true, percent: 5 }));
    assert.equal(result.statusCode, 400);
    assert.equal(parse(result.body).error.code, 'invalid_request');
  });

  test('returns 400 for unknown fields', async () => {
    const result = await handlerWith(store)(postJson('/promote', { version: '20261125T220000Z-mlp', force: true }));
    assert.equal(result.statusCode, 400);
    assert.equal(parse(result.body).error.code, 'unknown_field');
  });

  test('returns 404 for a version that does not exist, leaving the pointer alone', async () => {
    const before = await store.latest();
    const result = await handlerWith(store)(postJson('/promote', { version: '20200101T000000Z-mlp' }));
    assert.equal(result.statusCode, 404);
    assert.equal(parse(result.body).error.code, 'version_not_found');
    assert.deepEqual(await store.latest(), before);
  });

  test('returns 409 pointer_changed when the pointer keeps changing under the promotion', async () => {
    const version = await saveVersion(0.98);
    const racing: RetrainDeps['store'] = {
      ...noStore,
      list: () => store.list(),
      metrics: (v) => store.metrics(v),
      promote: async () => {
        throw new PointerChangedError(`the serving pointer changed after it was read; ${version} was not promoted`);
      },
    };
    const result = await handlerWith(racing)(postJson('/promote', { version }));
    assert.equal(result.statusCode, 409);
    const { error } = parse(result.body);
    assert.equal(error.code, 'pointer_changed');
    assert.match(error.message, /changed after it was read/);
  });

  test('returns 409 for a version whose weights no longer match, leaving the pointer alone', async () => {
    const version = await saveVersion(0.98);
    await bucket.objects.put(`models/${version}/weights.bin`, Buffer.from('truncated'));
    const before = await store.latest();
    const result = await handlerWith(store)(postJson('/promote', { version }));
    assert.equal(result.statusCode, 409);
    const { error } = parse(result.body);
    assert.equal(error.code, 'version_incomplete');
    assert.match(error.message, /weights\.bin/);
    assert.deepEqual(await store.latest(), before);
  });

  test('returns 502 when the bucket cannot be reached', async () => {
    const unreachable = {
      ...noStore,
      metrics: async () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:1')),
    };
    const result = await handlerWith(unreachable)(postJson('/promote', { version: '20261125T220000Z-mlp' }));
    assert.equal(result.statusCode, 502);
    assert.equal(parse(result.body).error.code, 'storage_error');
    assert.doesNotMatch(String(result.body), /ECONNREFUSED/);
  });
});

describe('routing', () => {
  test('returns 404 for a path it does not serve', async () => {
    const result = await handlerWith()(postJson('/predict', {}));
    assert.equal(result.statusCode, 404);
    assert.equal(parse(result.body).error.code, 'route_not_found');
  });

  test('returns 405 with Allow for the wrong method', async () => {
    const result = await handlerWith()(apiEvent('GET', '/train'));
    assert.equal(result.statusCode, 405);
    assert.equal(result.headers.allow, 'POST');
  });

  test('puts the request id on every response', async () => {
    const result = await handlerWith()(apiEvent('DELETE', '/promote'));
    assert.equal(result.headers['x-request-id'], 'req-test');
  });
});

describe('the Lambda entry', () => {
  const load = (extra: Record<string, string>) =>
    spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        "const m = await import('./functions/retrain/handler.ts'); console.log(typeof m.handler);",
      ],
      {
        cwd: repoRoot,
        env: { PATH: process.env.PATH, AWS_REGION: 'eu-west-1', BUCKET: 'digitnet-test', ...extra },
        encoding: 'utf8',
      },
    );

  test('fails at cold start when JOB_QUEUE is missing', () => {
    const run = load({ JOB_DEFINITION: target.jobDefinition });
    assert.notEqual(run.status, 0);
    assert.match(run.stderr, /JOB_QUEUE must be the ARN of a Batch job-queue/);
  });

  test('fails at cold start when neither Batch ARN is set', () => {
    const run = load({});
    assert.notEqual(run.status, 0);
    assert.match(run.stderr, /JOB_QUEUE and JOB_DEFINITION \(Batch ARNs\) must be set for the retrain function/);
  });

  test('exports a handler when its settings are present', () => {
    const run = load({ JOB_QUEUE: target.jobQueue, JOB_DEFINITION: target.jobDefinition });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), 'function');
  });
});

describe('batchJobs: the SDK client behind the port', () => {
  test('sends SubmitJob with the submission as its input, and DescribeJobs for the one job', async () => {
    const sent: object[] = [];
    const client = {
      send: async (command: SubmitJobCommand | DescribeJobsCommand) => {
        sent.push(command);
        return command instanceof SubmitJobCommand ? { jobId: JOB_ID } : { jobs: [job('RUNNING')] };
      },
    } as unknown as Pick<BatchClient, 'send'>;
    const jobs = batchJobs(client);
    const submission: JobSubmission = {
      jobName: 'digitnet-train-mlp-20261125T220000Z',
      ...target,
      containerOverrides: { environment: [{ name: 'ARCH', value: 'mlp' }] },
    };
    assert.equal(await jobs.submit(submission), JOB_ID);
    assert.deepEqual(await jobs.describe(JOB_ID), job('RUNNING'));
    const [submit, describe] = sent as [SubmitJobCommand, DescribeJobsCommand];
    assert.ok(submit instanceof SubmitJobCommand);
    assert.deepEqual(submit.input, submission);
    assert.ok(describe instanceof DescribeJobsCommand);
    assert.deepEqual(describe.input, { jobs: [JOB_ID] });
  });
});
