/**
 * Live learning's first half: every answer carries a prediction id, each
 * prediction is recorded (the 28×28 input, never the upload), feedback is
 * stored one object per id, and reading back joins the two and drops what
 * does not belong.
 */
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '#lib/log';
import { BucketCaptureSink, type CaptureSink, logCaptureSink } from '#lib/live/capture-sink';
import { readLiveAnswers, readLiveData } from '#lib/live/read';
import {
  type CaptureRecord,
  decodeInput,
  encodeInput,
  feedbackKey,
  isPredictionId,
  newPredictionId,
  parseCapture,
  parseFeedback,
  predictionDate,
  predictionTime,
} from '#lib/live/records';
import { encodeGreyPng } from '#lib/image/png-encode';
import { tokenBucket } from '#lib/rate-limit';
import { MNIST_PIXELS } from '#lib/mnist-shape';
import { makeFeedbackHandler } from '../functions/feedback/app.ts';
import { testBucket, testMnist, type TestBucket } from './support/env.ts';
import { postJson } from './support/events.ts';
import { startService, type TestService } from './support/service.ts';
import { MemoryObjects } from './support/memory-objects.ts';

const silent = createLogger({ service: 'test' }, () => {});
const body = (result: { body?: string }) => JSON.parse(result.body!);

/** A sink that keeps what it is given, for asserting on. */
function memorySink(): CaptureSink & { records: CaptureRecord[] } {
  const records: CaptureRecord[] = [];
  return { records, write: (record) => records.push(record), flush: async () => {} };
}

function capture(overrides: Partial<CaptureRecord> = {}): CaptureRecord {
  return {
    type: 'capture',
    schema: 1,
    predictionId: newPredictionId(new Date('2026-12-03T08:15:00.123Z')),
    time: '2026-12-03T08:15:00.130Z',
    modelVersion: '20261203T081500Z-mlp',
    digit: 7,
    confidence: 0.9,
    probabilities: [0, 0, 0, 0, 0, 0, 0, 0.9, 0.1, 0],
    input: encodeInput(new Float32Array(MNIST_PIXELS).fill(0.5)),
    format: 'png',
    latencyMs: 1.5,
    ...overrides,
  };
}

describe('prediction ids and records', () => {
  test('an id carries its time to the millisecond, 96 random bits, and the date its feedback is filed under', () => {
    const id = newPredictionId(new Date('2026-12-03T08:15:00.123Z'), Buffer.alloc(12, 0xab));
    assert.equal(id, `20261203081500123-${'ab'.repeat(12)}`);
    assert.ok(isPredictionId(id));
    assert.equal(predictionDate(id), '2026-12-03');
    assert.equal(predictionTime(id), Date.parse('2026-12-03T08:15:00.123Z'));
    assert.equal(feedbackKey(id), `feedback/dt=2026-12-03/${id}.json`);
    assert.notEqual(newPredictionId(), newPredictionId());
  });

  test('anything else is not an id: other shapes, impossible dates, path tricks', () => {
    const random = 'ab'.repeat(12);
    for (const bad of [
      undefined,
      42,
      '',
      `20261332081500123-${random}`,
      `20260230081500123-${random}`,
      `20261203251500123-${random}`,
      `20261203081500123-${random.toUpperCase()}`,
      `20261203081500123-${random}0`,
      `../../models/latest-${random}`,
      `20261203081500123-${random}\n`,
    ]) {
      assert.equal(isPredictionId(bad), false, String(bad));
    }
  });

  test('a capture line round-trips; other log lines and damaged records are not captures', () => {
    const record = capture();
    assert.deepEqual(parseCapture(JSON.stringify(record)), record);
    const broken: Record<string, unknown>[] = [
      { ...record, type: 'request' },
      { ...record, schema: 2 },
      { ...record, predictionId: 'x' },
      { ...record, digit: 10 },
      { ...record, confidence: 1.5 },
      { ...record, probabilities: [1] },
      { ...record, probabilities: [...record.probabilities.slice(0, 9), Number.NaN] },
      { ...record, input: 'AAAA' },
      { ...record, format: 'tiff' },
      { ...record, latencyMs: -1 },
      { ...record, modelVersion: '../latest' },
      { ...record, time: 'yesterday' },
    ];
    for (const value of broken) assert.equal(parseCapture(JSON.stringify(value)), undefined, JSON.stringify(value));
    for (const line of ['', 'not json', 'null', '[]', '{"level":"info","message":"request"}']) {
      assert.equal(parseCapture(line), undefined, line);
    }
  });

  test('the stored input is the 28×28 model input as bytes', () => {
    const input = Float32Array.from({ length: MNIST_PIXELS }, (_, i) => (i % 256) / 255);
    const bytes = decodeInput(encodeInput(input));
    assert.equal(bytes.length, MNIST_PIXELS);
    assert.deepEqual(
      Array.from(bytes.subarray(0, 300)),
      Array.from({ length: 300 }, (_, i) => i % 256),
    );
  });

  test('feedback is either a label or a confirmation, never both', () => {
    const base = { type: 'feedback', schema: 1, predictionId: capture().predictionId, time: '2026-12-03T09:00:00Z' };
    assert.deepEqual(parseFeedback(JSON.stringify({ ...base, label: 3 })), { ...base, label: 3 });
    assert.deepEqual(parseFeedback(JSON.stringify({ ...base, correct: true })), { ...base, correct: true });
    for (const bad of [
      { ...base },
      { ...base, label: 3, correct: true },
      { ...base, correct: false },
      { ...base, label: 11 },
      { ...base, label: '3' },
      { ...base, predictionId: 'nope', label: 3 },
    ]) {
      assert.equal(parseFeedback(JSON.stringify(bad)), undefined, JSON.stringify(bad));
    }
  });
});

describe('capture in POST /predict', () => {
  let service: TestService;
  const sink = memorySink();
  let draws: number[] = [];
  before(async () => {
    service = await startService({ capture: { sink, sampleRate: 0.5, random: () => draws.shift() ?? 0 } });
  });
  after(() => service.close());

  test('every answer in a batch has its own id, and each sampled one is recorded with what the model saw', async () => {
    const { test: split } = await testMnist();
    const pixels = (i: number) => Array.from(split.images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS));
    const png = encodeGreyPng(
      split.images.subarray(0, MNIST_PIXELS).map((v) => 255 - v),
      28,
      28,
    );
    sink.records.length = 0;
    draws = [0.1, 0.9, 0.2];
    const result = await service.handler(
      postJson('/predict', {
        images: [png.toString('base64'), png.toString('base64'), png.toString('base64')],
        includeInput: true,
      }),
    );
    assert.equal(result.statusCode, 200, result.body);
    const { predictions, modelVersion } = body(result);
    const ids = predictions.map((p: { predictionId: string }) => p.predictionId);
    assert.equal(new Set(ids).size, 3);
    assert.ok(ids.every(isPredictionId));
    // The draws 0.1 and 0.2 are under the rate 0.5; 0.9 is not.
    assert.deepEqual(
      sink.records.map((r) => r.predictionId),
      [ids[0], ids[2]],
    );
    for (const record of sink.records) {
      const answer = predictions[ids.indexOf(record.predictionId)];
      assert.equal(record.modelVersion, modelVersion);
      assert.equal(record.digit, answer.digit);
      assert.deepEqual(record.probabilities, answer.probabilities);
      assert.equal(record.format, 'png');
      assert.deepEqual(Array.from(decodeInput(record.input)), answer.input);
      assert.ok(record.latencyMs >= 0);
      assert.deepEqual(parseCapture(JSON.stringify(record)), record);
    }

    sink.records.length = 0;
    draws = [0];
    const single = body(await service.handler(postJson('/predict', { pixels: pixels(1) })));
    assert.ok(isPredictionId(single.predictionId));
    assert.equal(sink.records.length, 1);
    assert.equal(sink.records[0]!.predictionId, single.predictionId);
    assert.equal(sink.records[0]!.format, 'pixels');
  });

  test('a refused request records nothing', async () => {
    sink.records.length = 0;
    const result = await service.handler(postJson('/predict', { image: 'not base64 !' }));
    assert.equal(result.statusCode, 400);
    assert.equal(sink.records.length, 0);
  });

  test('the cloud sink prints one parseable line per record, and nothing else', () => {
    const lines: string[] = [];
    const logSink = logCaptureSink((line) => lines.push(line));
    const record = capture();
    logSink.write(record);
    assert.equal(lines.length, 1);
    assert.deepEqual(parseCapture(lines[0]!), record);
  });
});

describe('captures and feedback in the bucket', () => {
  let bucket: TestBucket;
  before(async () => {
    bucket = await testBucket();
  });

  test('the bucket sink writes gzipped JSON lines per day, when full and on flush, and reading joins them with feedback', async () => {
    const sink = new BucketCaptureSink(bucket.objects, {
      maxRecords: 3,
      flushSeconds: 3600,
      writerId: 'test',
      logger: silent,
    });
    const day1 = [0, 1, 2].map((i) =>
      capture({
        predictionId: newPredictionId(new Date(`2026-12-01T10:00:0${i}.000Z`)),
        time: `2026-12-01T10:00:0${i}.000Z`,
        digit: i,
      }),
    );
    const day2 = capture({
      predictionId: newPredictionId(new Date('2026-12-02T10:00:00.000Z')),
      time: '2026-12-02T10:00:00.000Z',
    });
    for (const record of day1) sink.write(record);
    sink.write(day2);
    await sink.flush();
    const keys = await bucket.objects.list('captures/');
    assert.equal(keys.length, 2);
    assert.match(keys[0]!, /^captures\/dt=2026-12-01\/\d{8}T\d{9}Z-test-0-[0-9a-f]{8}\.jsonl\.gz$/);
    assert.match(keys[1]!, /^captures\/dt=2026-12-02\//);
    const lines = gunzipSync((await bucket.objects.get(keys[0]!))!.body)
      .toString()
      .trim()
      .split('\n');
    assert.deepEqual(lines.map(parseCapture), day1);

    const feedback = makeFeedbackHandler({ objects: bucket.objects, logger: silent, throttle: () => {} });
    const send = async (payload: unknown) => body(await feedback(postJson('/feedback', payload)));
    await send({ predictionId: day1[0]!.predictionId, correct: true });
    await send({ predictionId: day1[1]!.predictionId, label: 4 });
    await send({ predictionId: day1[1]!.predictionId, label: 5 });
    await send({ predictionId: newPredictionId(new Date('2026-12-01T11:00:00Z')), label: 1 });
    // A stray object in the feedback prefix is skipped, not trusted.
    await bucket.objects.put('feedback/dt=2026-12-01/junk.json', '{"type":"feedback"}');

    const live = await readLiveData(bucket.objects);
    assert.equal(live.captures.length, 4);
    assert.deepEqual(
      live.labelled.map(({ capture: c, label }) => [c.predictionId, label]),
      [
        [day1[0]!.predictionId, 0],
        [day1[1]!.predictionId, 5],
      ],
    );
    assert.deepEqual(live.skipped, { captureLines: 0, captureObjects: 0, feedbackObjects: 1, unknownPredictionIds: 1 });
    assert.equal((await readLiveData(bucket.objects, { since: '2026-12-02' })).captures.length, 1);

    // The answers-only read (what the rollout compares) joins the same way and holds no input.
    const answers = await readLiveAnswers(bucket.objects);
    assert.deepEqual(
      answers.captures.map((c) => c.predictionId),
      live.captures.map((c) => c.predictionId),
    );
    assert.deepEqual(
      answers.labelled.map(({ capture: c, label }) => [c.predictionId, label]),
      live.labelled.map(({ capture: c, label }) => [c.predictionId, label]),
    );
    assert.deepEqual(answers.skipped, live.skipped);
    for (const c of answers.captures) {
      assert.ok(!('input' in c) && !('probabilities' in c), 'an answer keeps neither input nor probabilities');
      assert.equal(c.digit, live.captures.find((l) => l.predictionId === c.predictionId)!.digit);
    }
  });

  test('writers that share an id and flush in the same millisecond keep every record (a pid reused after a restart)', async () => {
    const objects = new MemoryObjects();
    const records = Array.from({ length: 20 }, (_, i) =>
      capture({
        predictionId: newPredictionId(new Date(`2026-11-29T10:00:${String(i).padStart(2, '0')}.000Z`)),
        time: '2026-11-29T10:00:00.000Z',
      }),
    );
    for (const record of records) {
      const sink = new BucketCaptureSink(objects, {
        maxRecords: 100,
        flushSeconds: 3600,
        writerId: '1',
        logger: silent,
      });
      sink.write(record);
      await sink.flush();
    }
    assert.equal((await readLiveData(objects)).captures.length, records.length);
  });

  test('a write the bucket refuses is kept and written by the next flush', async () => {
    let fail = true;
    const puts: string[] = [];
    const sink = new BucketCaptureSink(
      {
        put: async (key, bytes, type) => {
          if (fail) throw new Error('injected: bucket unreachable');
          puts.push(key);
          await bucket.objects.put(key, bytes, type);
        },
      },
      { maxRecords: 100, flushSeconds: 3600, writerId: 'retry', logger: silent },
    );
    const record = capture({
      predictionId: newPredictionId(new Date('2026-11-30T10:00:00Z')),
      time: '2026-11-30T10:00:00.000Z',
    });
    sink.write(record);
    await sink.flush();
    assert.deepEqual(puts, []);
    fail = false;
    await sink.flush();
    assert.equal(puts.length, 1);
    const live = await readLiveData(bucket.objects, { since: '2026-11-30' });
    assert.ok(live.captures.some((c) => c.predictionId === record.predictionId));
  });
});

describe('POST /feedback', () => {
  const puts = new Map<string, string>();
  const objects = { put: async (key: string, bytes: Buffer | string) => void puts.set(key, String(bytes)) };
  const now = new Date('2026-12-03T09:00:00Z');
  const handler = makeFeedbackHandler({ objects, logger: silent, throttle: () => {}, now: () => now });
  const id = newPredictionId(new Date('2026-12-03T08:59:00Z'));

  test('a label or a confirmation is stored under the prediction, and the last answer wins', async () => {
    const first = await handler(postJson('/feedback', { predictionId: id, label: 3 }));
    assert.equal(first.statusCode, 200, first.body);
    assert.deepEqual(body(first), { predictionId: id, recorded: 'label' });
    assert.deepEqual(JSON.parse(puts.get(feedbackKey(id))!), {
      type: 'feedback',
      schema: 1,
      predictionId: id,
      time: now.toISOString(),
      label: 3,
    });
    assert.equal((await handler(postJson('/feedback', { predictionId: id, correct: true }))).statusCode, 200);
    assert.equal(puts.size, 1);
    assert.deepEqual(parseFeedback(puts.get(feedbackKey(id))!), {
      type: 'feedback',
      schema: 1,
      predictionId: id,
      time: now.toISOString(),
      correct: true,
    });
  });

  test('anything else is a 4xx JSON error and stores nothing', async () => {
    puts.clear();
    const future = newPredictionId(new Date('2026-12-03T09:10:00Z'));
    const cases: [unknown, string][] = [
      [{ predictionId: id }, 'missing_field'],
      [{ predictionId: id, label: 3, correct: true }, 'invalid_feedback'],
      [{ predictionId: id, correct: false }, 'invalid_correct'],
      [{ predictionId: id, label: 10 }, 'invalid_label'],
      [{ predictionId: id, label: 2.5 }, 'invalid_label'],
      [{ predictionId: id, label: '3' }, 'invalid_label'],
      [{ predictionId: 'abc', label: 3 }, 'invalid_prediction_id'],
      [{ predictionId: future, label: 3 }, 'invalid_prediction_id'],
      [{ label: 3 }, 'missing_field'],
      [{ predictionId: id, label: 3, note: 'hi' }, 'unknown_field'],
    ];
    for (const [payload, code] of cases) {
      const result = await handler(postJson('/feedback', payload));
      assert.equal(result.statusCode, 400, JSON.stringify(payload));
      assert.equal(body(result).error.code, code, JSON.stringify(payload));
    }
    assert.equal(puts.size, 0);
  });

  test('a caller over the rate gets 429 with Retry-After before the body is read', async () => {
    let t = 0;
    const throttled = makeFeedbackHandler({
      objects,
      logger: silent,
      throttle: tokenBucket({ ratePerSecond: 1, burst: 2 }, () => t),
      now: () => now,
    });
    const send = () => throttled(postJson('/feedback', { predictionId: id, label: 1 }));
    assert.equal((await send()).statusCode, 200);
    assert.equal((await send()).statusCode, 200);
    const refused = await send();
    assert.equal(refused.statusCode, 429);
    assert.equal(body(refused).error.code, 'too_many_requests');
    assert.equal(refused.headers['retry-after'], '1');
    t = 1000;
    assert.equal((await send()).statusCode, 200);
  });
});
