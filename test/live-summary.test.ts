import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { readLiveData } from '#lib/live/read';
import { CAPTURES_PREFIX } from '#lib/live/records';
import {
  cachedLiveView,
  computeLiveSummaries,
  LIVE_CACHE_MS,
  LIVE_MAX_BYTES,
  parseStoredLive,
  readStoredLive,
  refreshLiveSummaries,
} from '#lib/live/stored';
import { MNIST_TRAIN_CLASS_COUNTS, summarizeLive, wilsonInterval } from '#lib/live/summary';
import { createLogger } from '#lib/log';
import { parseLabels } from '#lib/training/mnist';
import { ModelStore } from '#lib/storage/store';
import { mnistDir } from './support/env.ts';
import { type Answer, writeTraffic } from './support/live.ts';
import { MemoryObjects } from './support/memory-objects.ts';

const round4 = (x: number | undefined) => (x === undefined ? x : Math.round(x * 10_000) / 10_000);
const interval = (successes: number, n: number) => {
  const result = wilsonInterval(successes, n);
  return result && { low: round4(result.low), high: round4(result.high) };
};

describe('wilsonInterval', () => {
  test('8 of 10 is [0.4902, 0.9433]', () => {
    assert.deepEqual(interval(8, 10), { low: 0.4902, high: 0.9433 });
  });

  test('10 of 10 reaches 1 and no further; 0 of 10 starts at 0', () => {
    assert.deepEqual(interval(10, 10), { low: 0.7225, high: 1 });
    assert.deepEqual(interval(0, 10), { low: 0, high: 0.2775 });
  });

  test('0 of 0 is null: nothing to estimate from', () => {
    assert.equal(wilsonInterval(0, 0), null);
  });

  test('narrows as the count grows around the same share (12 corrections look like 12)', () => {
    const small = wilsonInterval(9, 12)!;
    const large = wilsonInterval(750, 1000)!;
    assert.ok(small.high - small.low > 0.4);
    assert.ok(large.high - large.low < 0.06);
  });
});

test('MNIST_TRAIN_CLASS_COUNTS are the label counts of the MNIST training split', () => {
  const file = 'train-labels-idx1-ubyte.gz';
  const labels = parseLabels(readFileSync(path.join(mnistDir, file)), file);
  const counts = Array.from({ length: 10 }, () => 0);
  for (const label of labels) counts[label]!++;
  assert.deepEqual(counts, MNIST_TRAIN_CLASS_COUNTS);
});

const V1 = '20261101T100000Z-mlp';
const V2 = '20261102T100000Z-cnn';
/** In the past, whenever the suite runs: the feedback route refuses ids from the future. */
const at = (minute: number) => new Date(Date.UTC(2026, 10, 20, 9, minute));

/** V1: 6 answers, 2 confirmed, 1 labelled with its own digit, 2 corrected, 1 without feedback. V2: 1, no feedback. */
const TRAFFIC: Answer[] = [
  { version: V1, digit: 7, confidence: 0.99, at: at(1), feedback: { correct: true } },
  { version: V1, digit: 3, confidence: 1, at: at(2), feedback: { correct: true } },
  { version: V1, digit: 2, confidence: 0.8, at: at(3), feedback: { label: 2 } },
  { version: V1, digit: 1, confidence: 0.55, at: at(4), feedback: { label: 7 } },
  { version: V1, digit: 1, confidence: 0.35, at: at(5), feedback: { label: 7 } },
  { version: V1, digit: 9, confidence: 0.6, at: at(6) },
  { version: V2, digit: 4, confidence: 0.9, at: at(7) },
];

async function bucketWith(answers: Answer[], versions: string[]): Promise<MemoryObjects> {
  const objects = new MemoryObjects();
  // Only the listing of metrics.json matters to the live summaries.
  for (const version of versions) await objects.put(`models/${version}/metrics.json`, '{}');
  await writeTraffic(objects, answers);
  return objects;
}

describe('summarizeLive', () => {
  test('counts predictions, feedback, confirmed and corrected per version, with accuracy and its interval', async () => {
    const objects = await bucketWith(TRAFFIC, [V1, V2]);
    const { versions } = summarizeLive(await readLiveData(objects), [V1, V2]);
    assert.deepEqual(
      versions.map(({ version, predictions, feedback, correct, corrected, accuracy }) => ({
        version,
        predictions,
        feedback,
        correct,
        corrected,
        accuracy,
      })),
      [
        { version: V1, predictions: 6, feedback: 5, correct: 3, corrected: 2, accuracy: 0.6 },
        { version: V2, predictions: 1, feedback: 0, correct: 0, corrected: 0, accuracy: null },
      ],
    );
    const [v1, v2] = versions;
    assert.deepEqual({ low: v1!.low, high: v1!.high }, wilsonInterval(3, 5));
    assert.deepEqual({ low: v2!.low, high: v2!.high }, { low: null, high: null });
  });

  test('the confusion matrix holds corrected answers only: row the user’s label, column the answer', async () => {
    const { versions } = summarizeLive(await readLiveData(await bucketWith(TRAFFIC, [V1])), [V1]);
    const confusion = versions[0]!.confusion;
    assert.equal(confusion.length, 10);
    assert.ok(confusion.every((row) => row.length === 10));
    assert.equal(confusion[7]![1], 2);
    assert.equal(
      confusion.flat().reduce((a, b) => a + b, 0),
      2,
    );
  });

  test('confidence histograms bin every answer and the corrected ones; 1.0 falls in the last bin', async () => {
    const { versions } = summarizeLive(await readLiveData(await bucketWith(TRAFFIC, [V1])), [V1]);
    assert.deepEqual(versions[0]!.confidence, {
      all: [0, 0, 0, 1, 0, 1, 1, 0, 1, 2],
      corrected: [0, 0, 0, 1, 0, 1, 0, 0, 0, 0],
    });
  });

  test('the class mix gives each digit’s share of the answers beside its share of MNIST training', async () => {
    const { versions } = summarizeLive(await readLiveData(await bucketWith(TRAFFIC, [V1])), [V1]);
    const { answers, training } = versions[0]!.classMix;
    assert.deepEqual(answers, [0, 2 / 6, 1 / 6, 1 / 6, 0, 0, 0, 1 / 6, 0, 1 / 6]);
    assert.equal(round4(training[1]), round4(6742 / 60_000));
    assert.equal(round4(training.reduce((a, b) => a + b, 0)), 1);
  });

  test('latency p50 and p99 are nearest-rank over the captured answers; low confidence is the share below the threshold', async () => {
    const answers = Array.from({ length: 100 }, (_, i) => ({
      version: V1,
      digit: 1,
      confidence: i < 7 ? 0.5 : 0.9,
      at: at(i % 60),
      latencyMs: 100 - i,
    }));
    const data = await readLiveData(await bucketWith(answers, [V1]));
    const [v1] = summarizeLive(data, [V1]).versions;
    assert.deepEqual(v1!.latencyMs, { p50: 50, p99: 99 });
    assert.deepEqual(v1!.lowConfidence, { threshold: 0.6, share: 0.07 });
    assert.deepEqual(summarizeLive(data, [V1], undefined, 0.95).versions[0]!.lowConfidence, {
      threshold: 0.95,
      share: 1,
    });
  });

  test('the time range runs from the first capture to the last', async () => {
    const { versions } = summarizeLive(await readLiveData(await bucketWith(TRAFFIC, [V1])), [V1]);
    assert.equal(versions[0]!.from, at(1).toISOString());
    assert.equal(versions[0]!.to, at(6).toISOString());
  });

  test('captures of a version the bucket does not hold are counted as skipped, not summarised', async () => {
    const summary = summarizeLive(await readLiveData(await bucketWith(TRAFFIC, [V1])), [V1]);
    assert.deepEqual(
      summary.versions.map((v) => v.version),
      [V1],
    );
    assert.equal(summary.skipped.unknownVersionCaptures, 1);
  });

  test('malformed lines, foreign records, damaged or oversized objects and feedback for unknown ids are skipped and counted', async () => {
    const objects = await bucketWith(TRAFFIC, [V1, V2]);
    await objects.put(
      `${CAPTURES_PREFIX}dt=2026-11-20/foreign.jsonl`,
      ['{"level":"info","message":"a log line"}', '{not json', JSON.stringify({ type: 'capture', schema: 1 })].join(
        '\n',
      ),
    );
    await objects.put(`${CAPTURES_PREFIX}dt=2026-11-20/damaged.jsonl.gz`, Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3]));
    await objects.put(`${CAPTURES_PREFIX}dt=2026-11-20/huge.jsonl`, Buffer.alloc(64 * 1024 * 1024 + 1, 0x20));
    await writeTraffic(new MemoryObjectsFeedbackOnly(objects), [
      { version: V1, digit: 5, confidence: 0.7, at: at(8), feedback: { label: 6 } },
    ]);
    await objects.put('feedback/dt=2026-11-20/not-an-id.json', '{"type":"feedback"}');
    const summary = summarizeLive(await readLiveData(objects), [V1, V2]);
    assert.deepEqual(summary.skipped, {
      captureLines: 3,
      captureObjects: 2,
      feedbackObjects: 1,
      unknownPredictionIds: 1,
      unknownVersionCaptures: 0,
    });
    assert.equal(summary.versions[0]!.feedback, 5);
  });

  test('no captures at all is no versions', () => {
    const empty = {
      captures: [],
      labelled: [],
      skipped: { captureLines: 0, captureObjects: 0, feedbackObjects: 0, unknownPredictionIds: 0 },
    };
    assert.deepEqual(summarizeLive(empty, [V1]).versions, []);
  });
});

/** Drops capture writes: feedback then arrives for ids that were never captured. */
class MemoryObjectsFeedbackOnly extends MemoryObjects {
  constructor(private readonly target: MemoryObjects) {
    super();
  }
  override async put(key: string, body: Buffer | string, contentType?: string): Promise<void> {
    if (!key.startsWith(CAPTURES_PREFIX)) await this.target.put(key, body, contentType);
  }
}

describe('live.json', () => {
  test('refreshLiveSummaries writes models/<version>/live.json for each version with captures, stamped alike', async () => {
    const objects = await bucketWith(TRAFFIC, [V1, V2, '20261030T100000Z-mlp']);
    const now = new Date('2026-12-03T12:00:00.000Z');
    const summary = await refreshLiveSummaries(objects, now);
    const store = new ModelStore(objects);
    for (const version of summary.versions) {
      assert.deepEqual(await readStoredLive(store, version.version), { ...version, updatedAt: now.toISOString() });
    }
    assert.equal(await objects.exists('models/20261130T100000Z-mlp/live.json'), false);
  });

  test('refreshing again replaces the summary: the file is mutable, unlike the version', async () => {
    const objects = await bucketWith(TRAFFIC, [V1]);
    await refreshLiveSummaries(objects, new Date('2026-12-03T12:00:00Z'));
    await writeTraffic(objects, [{ version: V1, digit: 0, confidence: 0.9, at: at(9), feedback: { label: 6 } }]);
    await refreshLiveSummaries(objects, new Date('2026-12-03T13:00:00Z'));
    const stored = await readStoredLive(new ModelStore(objects), V1);
    assert.equal(stored?.feedback, 6);
    assert.equal(stored?.updatedAt, '2026-12-03T13:00:00.000Z');
  });

  test('computeLiveSummaries with since reads only partitions from that day on', async () => {
    const objects = await bucketWith(
      [...TRAFFIC, { version: V1, digit: 0, confidence: 0.9, at: new Date('2026-11-01T10:00:00Z') }],
      [V1, V2],
    );
    const all = await computeLiveSummaries(objects);
    const recent = await computeLiveSummaries(objects, { since: '2026-11-10' });
    assert.equal(all.versions[0]!.predictions, 7);
    assert.equal(recent.versions[0]!.predictions, 6);
  });

  test('parseStoredLive refuses what is not a summary of that version', async () => {
    const objects = await bucketWith(TRAFFIC, [V1]);
    await refreshLiveSummaries(objects, new Date('2026-12-03T12:00:00Z'));
    const good = JSON.parse(String((await objects.get(`models/${V1}/live.json`))!.body));
    const bad: [string, unknown][] = [
      ['another version', { ...good, version: V2 }],
      ['counts that do not add up', { ...good, correct: good.correct + 1 }],
      ['an accuracy without feedback', { ...good, feedback: 0, correct: 0, corrected: 0 }],
      ['an accuracy over 1', { ...good, accuracy: 1.5 }],
      ['a 9-row confusion matrix', { ...good, confusion: good.confusion.slice(1) }],
      [
        'a negative histogram count',
        { ...good, confidence: { ...good.confidence, all: good.confidence.all.map(() => -1) } },
      ],
      ['no updatedAt', { ...good, updatedAt: undefined }],
      ['a negative latency', { ...good, latencyMs: { p50: -1, p99: 3 } }],
      ['a low-confidence share over 1', { ...good, lowConfidence: { threshold: 0.6, share: 2 } }],
      ['an array', [good]],
    ];
    assert.ok(parseStoredLive(Buffer.from(JSON.stringify(good)), V1));
    const { latencyMs: _, lowConfidence: __, ...older } = good;
    assert.ok(parseStoredLive(Buffer.from(JSON.stringify(older)), V1), 'a summary stored before latency was computed');
    for (const [what, value] of bad) {
      assert.equal(parseStoredLive(Buffer.from(JSON.stringify(value)), V1), undefined, what);
    }
    assert.equal(parseStoredLive(Buffer.from('{"version":'), V1), undefined, 'truncated JSON');
  });
});

describe('cachedLiveView (GET /model)', () => {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({}, (line) => lines.push(JSON.parse(line)), 'debug');

  /** Counts reads of live.json, so the cache can be seen working. */
  class CountingObjects extends MemoryObjects {
    reads = 0;
    override async get(key: string, options?: Parameters<MemoryObjects['get']>[1]) {
      if (key.endsWith('/live.json')) this.reads++;
      return super.get(key, options);
    }
  }

  async function setup() {
    const objects = new CountingObjects();
    await objects.put(`models/${V1}/metrics.json`, '{}');
    await writeTraffic(objects, TRAFFIC);
    await refreshLiveSummaries(objects, new Date('2026-12-03T12:00:00Z'));
    let clock = 0;
    const view = cachedLiveView(new ModelStore(objects), logger, () => clock);
    return { objects, view, advance: (ms: number) => (clock += ms) };
  }

  test('gives the headline numbers and reads the file once per cache period', async () => {
    const { objects, view, advance } = await setup();
    const expected = {
      predictions: 6,
      feedback: 5,
      correct: 3,
      corrected: 2,
      accuracy: 0.6,
      low: wilsonInterval(3, 5)!.low,
      high: wilsonInterval(3, 5)!.high,
      updatedAt: '2026-12-03T12:00:00.000Z',
    };
    const [first, concurrent] = await Promise.all([view(V1), view(V1)]);
    assert.deepEqual(first, expected);
    assert.deepEqual(concurrent, expected);
    advance(LIVE_CACHE_MS - 1);
    await view(V1);
    assert.equal(objects.reads, 1);
    advance(1);
    await view(V1);
    assert.equal(objects.reads, 2);
  });

  test('is null for a version without live.json', async () => {
    const { view } = await setup();
    assert.equal(await view(V2), null);
  });

  test('a malformed or oversized file is null and logged, never an error', async () => {
    const { objects, view, advance } = await setup();
    await objects.put(`models/${V1}/live.json`, '{"version": "not this"}');
    assert.equal(await view(V1), null);
    advance(LIVE_CACHE_MS);
    await objects.put(`models/${V1}/live.json`, Buffer.alloc(LIVE_MAX_BYTES + 1, 0x20));
    assert.equal(await view(V1), null);
    const warnings = lines.filter((l) => l.message === 'live summary unreadable; GET /model shows none');
    assert.equal(warnings.length, 2);
    assert.equal(warnings[0]!.modelVersion, V1);
  });
});
