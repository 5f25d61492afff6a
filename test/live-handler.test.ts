import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { before, describe, test } from 'node:test';
import { CAPTURES_PREFIX } from '#lib/live/records';
import { readStoredLive } from '#lib/live/stored';
import { wilsonInterval } from '#lib/live/summary';
import { ModelStore } from '#lib/storage/store';
import { repoRoot, testBucket, type TestBucket } from './support/env.ts';
import { writeTraffic } from './support/live.ts';

const VERSION = '20261101T100000Z-mlp';
/** In the past whenever the suite runs: the feedback route refuses ids from the future. */
const at = (minute: number) => new Date(Date.UTC(2026, 10, 20, 9, minute));

describe('the scheduled live function (functions/live/handler.ts)', () => {
  let bucket: TestBucket;
  let handler: (event: unknown) => Promise<unknown>;
  const logged: Record<string, unknown>[] = [];

  before(async () => {
    bucket = await testBucket();
    // The handler reads its configuration at import, as at a cold start.
    Object.assign(process.env, bucket.env, { METRICS: 'emf', STAGE: 'dev' });
    ({ handler } = await import('../functions/live/handler.ts'));
    // Only the listing of metrics.json decides which versions exist for the summaries.
    await bucket.objects.put(`models/${VERSION}/metrics.json`, '{}');
    await writeTraffic(bucket.objects, [
      { version: VERSION, digit: 4, confidence: 0.93, at: at(1), feedback: { correct: true } },
      { version: VERSION, digit: 9, confidence: 0.62, at: at(2), feedback: { label: 4 } },
      { version: VERSION, digit: 2, confidence: 0.99, at: at(3) },
      { version: '20261102T100000Z-cnn', digit: 1, confidence: 0.9, at: at(4) },
    ]);
    await bucket.objects.put(`${CAPTURES_PREFIX}dt=2026-11-20/foreign.jsonl`, '{"type":"capture"}\nnot json\n');
  });

  test('writes live.json for each stored version with captures, logs one summary line and one metrics line per version', async () => {
    const write = process.stderr.write;
    process.stderr.write = ((line: string) => {
      logged.push(JSON.parse(line));
      return true;
    }) as typeof process.stderr.write;
    let result: unknown;
    try {
      result = await handler({ source: 'aws.events', 'detail-type': 'Scheduled Event' });
    } finally {
      process.stderr.write = write;
    }
    const { low, high } = wilsonInterval(1, 2)!;
    const expected = {
      versions: [
        {
          version: VERSION,
          predictions: 3,
          feedback: 2,
          correct: 1,
          accuracy: 0.5,
          low,
          high,
          // Its metrics.json is a stub, so no profile; and the captures are older than the 7-day window.
          drift: { level: 'no reference profile', score: null, samples: 0, alarm: false },
        },
      ],
      skipped: {
        captureLines: 2,
        captureObjects: 0,
        feedbackObjects: 0,
        unknownPredictionIds: 0,
        unknownVersionCaptures: 1,
      },
    };
    assert.deepEqual(result, expected);
    const stored = (await readStoredLive(new ModelStore(bucket.objects), VERSION))!;
    assert.equal(stored.corrected, 1);
    assert.equal(stored.confusion[4]![9], 1);
    assert.equal(await bucket.objects.exists('models/20261102T100000Z-cnn/live.json'), false);
    assert.equal(logged.length, 2);
    assert.deepEqual(
      { level: logged[0]!.level, message: logged[0]!.message, function: logged[0]!.function },
      { level: 'info', message: 'live summaries refreshed', function: 'live' },
    );
    assert.deepEqual({ versions: logged[0]!.versions, skipped: logged[0]!.skipped }, expected);
    const { level, time, service, function: fn, message, ...emf } = logged[1]!;
    assert.deepEqual(
      { level, service, function: fn, message },
      { level: 'info', service: 'digitnet', function: 'live', message: 'metrics' },
    );
    assert.equal(typeof time, 'string');
    assert.equal(typeof (emf._aws as { Timestamp: unknown }).Timestamp, 'number');
    assert.deepEqual(
      { ...emf, _aws: { ...(emf._aws as object), Timestamp: 0 } },
      {
        _aws: {
          Timestamp: 0,
          CloudWatchMetrics: [
            {
              Namespace: 'digitnet',
              Dimensions: [
                ['stage', 'component'],
                ['stage', 'component', 'modelVersion'],
              ],
              Metrics: [
                { Name: 'LiveFeedback', Unit: 'Count' },
                { Name: 'LiveAccuracy', Unit: 'None' },
              ],
            },
          ],
        },
        stage: 'dev',
        component: 'live',
        modelVersion: VERSION,
        LiveFeedback: 2,
        LiveAccuracy: 0.5,
      },
    );
  });

  test('without BUCKET it fails at start-up and says so', async () => {
    const env = { PATH: process.env.PATH ?? '' };
    const script = `await import(${JSON.stringify(`${repoRoot}functions/live/handler.ts`)});`;
    const failed = await promisify(execFile)(
      process.execPath,
      ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', script],
      { cwd: repoRoot, env },
    ).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    assert.notEqual(failed, undefined, 'the import must fail');
    assert.match(failed!.stderr, /BUCKET must be set for the live function/);
  });
});
