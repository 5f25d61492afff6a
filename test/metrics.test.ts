/**
 * CloudWatch metrics as EMF log lines (functions/lib/metrics.ts): the exact
 * document the spec asks for, one line per request through the logger, and
 * what the HTTP edge, the feedback route and the operator routes record.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BadRequestError } from '#lib/errors';
import { json, router, serve } from '#lib/http';
import { newPredictionId } from '#lib/live/records';
import { createLogger } from '#lib/log';
import { createMetrics, emfDocument, noMetrics } from '#lib/metrics';
import type { LatestPointer, ModelMetrics } from '#lib/storage/store';
import { makeFeedbackHandler } from '../functions/feedback/app.ts';
import { makeHandler as makeOperatorHandler, type RetrainDeps } from '../functions/retrain/app.ts';
import { apiEvent, postJson } from './support/events.ts';
import { MemoryObjects } from './support/memory-objects.ts';

const T = Date.UTC(2026, 11, 3, 12);

/** A logger whose lines are kept, parsed; LOG_LEVEL error, so only what ignores the level gets through. */
function capture() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ service: 'digitnet' }, (line) => lines.push(JSON.parse(line)), 'error');
  const metricLines = () => lines.filter((line) => line.message === 'metrics');
  return { lines, logger, metricLines };
}

/** The EMF part of a metrics line: the logger's own fields taken off. */
function emfOf(line: Record<string, unknown> | undefined): Record<string, unknown> {
  assert.ok(line, 'a metrics line');
  const { level: _l, time: _t, service: _s, message: _m, requestId: _r, ...emf } = line;
  return emf;
}

describe('emfDocument', () => {
  test('builds one directive per set of dimensions, with every value and dimension value at the root', () => {
    const document = emfDocument(
      { stage: 'dev', component: 'predict' },
      [
        { name: 'Latency', value: 4.5, unit: 'Milliseconds' },
        { name: 'Predictions', value: 3, unit: 'Count', by: { modelVersion: '20261201T000000Z-cnn' } },
        { name: 'LowConfidence', value: 1, unit: 'Count', by: { modelVersion: '20261201T000000Z-cnn' } },
        { name: 'Errors', value: 1, unit: 'Count', by: { code: 'invalid_image' } },
      ],
      T,
    );
    assert.deepEqual(document, {
      _aws: {
        Timestamp: T,
        CloudWatchMetrics: [
          {
            Namespace: 'digitnet',
            Dimensions: [['stage', 'component']],
            Metrics: [{ Name: 'Latency', Unit: 'Milliseconds' }],
          },
          {
            Namespace: 'digitnet',
            Dimensions: [
              ['stage', 'component'],
              ['stage', 'component', 'modelVersion'],
            ],
            Metrics: [
              { Name: 'Predictions', Unit: 'Count' },
              { Name: 'LowConfidence', Unit: 'Count' },
            ],
          },
          {
            Namespace: 'digitnet',
            Dimensions: [
              ['stage', 'component'],
              ['stage', 'component', 'code'],
            ],
            Metrics: [{ Name: 'Errors', Unit: 'Count' }],
          },
        ],
      },
      stage: 'dev',
      component: 'predict',
      modelVersion: '20261201T000000Z-cnn',
      code: 'invalid_image',
      Latency: 4.5,
      Predictions: 3,
      LowConfidence: 1,
      Errors: 1,
    });
  });

  test('leaves out values that are not finite numbers, keeps the last of a name added twice, and is undefined when empty', () => {
    const base = { stage: 'local', component: 'train' } as const;
    assert.equal(emfDocument(base, [], T), undefined);
    assert.equal(emfDocument(base, [{ name: 'TestAccuracy', value: Number.NaN, unit: 'None' }], T), undefined);
    assert.deepEqual(
      emfDocument(
        base,
        [
          { name: 'GatePassed', value: 0, unit: 'Count' },
          { name: 'GatePassed', value: 1, unit: 'Count' },
          { name: 'EpochSeconds', value: Number.POSITIVE_INFINITY, unit: 'Seconds' },
        ],
        T,
      ),
      {
        _aws: {
          Timestamp: T,
          CloudWatchMetrics: [
            {
              Namespace: 'digitnet',
              Dimensions: [['stage', 'component']],
              Metrics: [{ Name: 'GatePassed', Unit: 'Count' }],
            },
          ],
        },
        stage: 'local',
        component: 'train',
        GatePassed: 1,
      },
    );
  });
});

describe('createMetrics', () => {
  test('emf: flush writes one metrics line through the logger, whatever LOG_LEVEL, then starts empty', () => {
    const { lines, logger } = capture();
    const set = createMetrics('emf', { stage: 'prod', component: 'feedback' }, () => T).begin();
    set.add('FeedbackLabels', 1, 'Count').flush(logger.child({ requestId: 'r1' }));
    set.flush(logger);
    assert.equal(lines.length, 1);
    const { time, ...line } = lines[0]!;
    assert.equal(typeof time, 'string');
    assert.deepEqual(line, {
      level: 'info',
      service: 'digitnet',
      requestId: 'r1',
      message: 'metrics',
      _aws: {
        Timestamp: T,
        CloudWatchMetrics: [
          {
            Namespace: 'digitnet',
            Dimensions: [['stage', 'component']],
            Metrics: [{ Name: 'FeedbackLabels', Unit: 'Count' }],
          },
        ],
      },
      stage: 'prod',
      component: 'feedback',
      FeedbackLabels: 1,
    });
  });

  test('off: records and writes nothing', () => {
    const { lines, logger } = capture();
    createMetrics('off', { stage: 'local', component: 'predict' })
      .begin()
      .add('Latency', 1, 'Milliseconds')
      .flush(logger);
    noMetrics.begin().add('Latency', 1, 'Milliseconds').flush(logger);
    assert.deepEqual(lines, []);
  });
});

describe('serve: one metrics line per request at most', () => {
  const metrics = createMetrics('emf', { stage: 'dev', component: 'predict' }, () => T);

  function servedWith(logger: ReturnType<typeof capture>['logger']) {
    return serve(
      logger,
      router({
        '/ok': {
          GET: async (_e, _l, _p, recorded) => {
            recorded.add('Latency', 2, 'Milliseconds');
            return json(200, {});
          },
        },
        '/quiet': { GET: async () => json(200, {}) },
        '/bad': {
          GET: async (_e, _l, _p, recorded) => {
            recorded.add('Latency', 3, 'Milliseconds');
            throw new BadRequestError('no', 'invalid_thing');
          },
        },
        '/boom': {
          GET: async () => {
            throw new Error('unexpected');
          },
        },
      }),
      { metrics },
    );
  }

  test('ColdStart on the first request only, with what the route recorded, in the same line', async () => {
    const { logger, metricLines } = capture();
    const handler = servedWith(logger);
    await handler(apiEvent('GET', '/ok'));
    await handler(apiEvent('GET', '/ok'));
    await handler(apiEvent('GET', '/quiet'));
    const [first, second, ...rest] = metricLines().map(emfOf);
    assert.deepEqual(rest, [], 'a warm request that records nothing writes no line');
    assert.deepEqual(
      { ...first, _aws: undefined },
      {
        _aws: undefined,
        stage: 'dev',
        component: 'predict',
        ColdStart: 1,
        Latency: 2,
      },
    );
    assert.deepEqual(
      { ...second, _aws: undefined },
      { _aws: undefined, stage: 'dev', component: 'predict', Latency: 2 },
    );
  });

  test('Errors by the error’s code for a typed error, internal_error for anything else', async () => {
    const { logger, metricLines } = capture();
    const handler = servedWith(logger);
    await handler(apiEvent('GET', '/quiet'));
    assert.equal((await handler(apiEvent('GET', '/bad'))).statusCode, 400);
    assert.equal((await handler(apiEvent('GET', '/boom'))).statusCode, 500);
    assert.equal((await handler(apiEvent('GET', '/nowhere'))).statusCode, 404);
    const errors = metricLines()
      .slice(1)
      .map(emfOf)
      .map(({ _aws, ...rest }) => rest);
    assert.deepEqual(errors, [
      { stage: 'dev', component: 'predict', code: 'invalid_thing', Latency: 3, Errors: 1 },
      { stage: 'dev', component: 'predict', code: 'internal_error', Errors: 1 },
      { stage: 'dev', component: 'predict', code: 'route_not_found', Errors: 1 },
    ]);
    assert.deepEqual(emfOf(metricLines()[1])._aws, {
      Timestamp: T,
      CloudWatchMetrics: [
        {
          Namespace: 'digitnet',
          Dimensions: [['stage', 'component']],
          Metrics: [{ Name: 'Latency', Unit: 'Milliseconds' }],
        },
        {
          Namespace: 'digitnet',
          Dimensions: [
            ['stage', 'component'],
            ['stage', 'component', 'code'],
          ],
          Metrics: [{ Name: 'Errors', Unit: 'Count' }],
        },
      ],
    });
  });
});

describe('POST /feedback records what it stored', () => {
  test('FeedbackLabels for a label, FeedbackConfirmations for correct: true, nothing else for a refused body', async () => {
    const { logger, metricLines } = capture();
    const handler = makeFeedbackHandler({
      objects: new MemoryObjects(),
      logger,
      throttle: () => {},
      now: () => new Date(T),
      metrics: createMetrics('emf', { stage: 'dev', component: 'feedback' }, () => T),
    });
    const predictionId = newPredictionId(new Date(T - 60_000));
    assert.equal((await handler(postJson('/feedback', { predictionId, label: 3 }))).statusCode, 200);
    assert.equal((await handler(postJson('/feedback', { predictionId, correct: true }))).statusCode, 200);
    assert.equal((await handler(postJson('/feedback', { predictionId, label: 12 }))).statusCode, 400);
    const recorded = metricLines()
      .map(emfOf)
      .map(({ _aws, stage, component, ...values }) => values);
    assert.deepEqual(recorded, [
      { ColdStart: 1, FeedbackLabels: 1 },
      { FeedbackConfirmations: 1 },
      { code: 'invalid_label', Errors: 1 },
    ]);
  });
});

describe('the operator routes record submissions, promotions and rollbacks', () => {
  const OLD = '20261101T000000Z-mlp';
  const NEW = '20261201T000000Z-cnn';
  const pointers: Record<string, LatestPointer> = {
    [NEW]: { version: NEW, promotedAt: '2026-12-03T12:00:00.000Z', accuracy: 0.99, arch: 'cnn', previous: OLD },
    [OLD]: { version: OLD, promotedAt: '2026-12-03T12:00:00.000Z', accuracy: 0.98, arch: 'mlp', previous: NEW },
  };
  const store: RetrainDeps['store'] = {
    list: async () => [],
    metrics: async () => ({}) as ModelMetrics,
    promote: async (version) => pointers[version]!,
    setCandidate: async () => {
      throw new Error('not expected');
    },
    clearCandidate: async () => {
      throw new Error('not expected');
    },
    setPinned: async () => {
      throw new Error('not expected');
    },
  };

  test('Submissions for an accepted job, Promotions forward, Rollbacks to an older version', async () => {
    const { logger, metricLines } = capture();
    const handler = makeOperatorHandler({
      batch: { submit: async () => '8c3c6f1e-2b7d-4d1a-9a55-1f2e3d4c5b6a', describe: async () => undefined },
      store,
      target: {
        jobQueue: 'arn:aws:batch:eu-west-1:123456789012:job-queue/Q',
        jobDefinition: 'arn:aws:batch:eu-west-1:123456789012:job-definition/D:1',
      },
      logger,
      metrics: createMetrics('emf', { stage: 'dev', component: 'retrain' }, () => T),
    });
    assert.equal((await handler(postJson('/train', { arch: 'mlp', epochs: 1 }))).statusCode, 202);
    assert.equal((await handler(postJson('/promote', { version: NEW }))).statusCode, 200);
    assert.equal((await handler(postJson('/promote', { version: OLD }))).statusCode, 200);
    const recorded = metricLines()
      .map(emfOf)
      .map(({ _aws, stage, component, ...values }) => values);
    assert.deepEqual(recorded, [{ ColdStart: 1, Submissions: 1 }, { Promotions: 1 }, { Rollbacks: 1 }]);
  });
});
