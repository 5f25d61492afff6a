import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { type Profile, profileOf } from '#lib/live/profile';
import { CAPTURES_PREFIX } from '#lib/live/records';
import { computeLiveSummaries, parseStoredLive, refreshLiveSummaries } from '#lib/live/stored';
import { MNIST_PIXELS } from '#lib/mnist-shape';
import { testMnist } from './support/env.ts';
import { type Answer, captureRecord, writeTraffic } from './support/live.ts';
import { MemoryObjects } from './support/memory-objects.ts';

const V1 = '20261101T100000Z-mlp';
const NOW = new Date('2026-11-20T12:00:00Z');
const DAY = 86_400_000;
const DRIFT = { windowDays: 7, threshold: 0.25, minSamples: 200 };

/** What parseMetrics needs of a version, and the checksum of its profile.json when it has one. */
async function storeVersion(objects: MemoryObjects, version: string, profile?: string): Promise<void> {
  const files = profile === undefined ? {} : { files: { 'profile.json': sha256(profile) } };
  const artifacts = { weightsBytes: 0, weightsSha256: '', modelJsonSha256: '', ...files };
  await objects.put(`models/${version}/metrics.json`, JSON.stringify({ version, params: 0, artifacts }));
  if (profile !== undefined) await objects.put(`models/${version}/profile.json`, profile);
}
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('drift in the live summary', () => {
  let digits: Uint8Array[];
  let labels: Uint8Array;
  let reference: Profile;

  /** Captures of MNIST test digits `from`–`to` answered with their label, `daysAgo` before NOW. */
  const answers = (from: number, to: number, daysAgo: number, edit = (d: Uint8Array) => d): Answer[] =>
    Array.from({ length: to - from }, (_, i) => ({
      version: V1,
      digit: labels[from + i]!,
      confidence: 0.95,
      at: new Date(NOW.getTime() - daysAgo * DAY + i * 1000),
      input: Buffer.from(edit(digits[from + i]!)).toString('base64'),
    }));

  before(async () => {
    const { test } = await testMnist();
    labels = test.labels;
    digits = Array.from({ length: 3000 }, (_, i) => test.images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS));
    reference = profileOf(
      digits.slice(1000).map((input, i) => ({ input, digit: labels[1000 + i]!, confidence: 0.95 })),
    );
  });

  test('recent MNIST digits against the version’s profile: measured, no alarm, window and samples recorded', async () => {
    const objects = new MemoryObjects();
    await storeVersion(objects, V1, JSON.stringify(reference));
    await writeTraffic(objects, [...answers(0, 300, 1), ...answers(300, 400, 10)]);
    const [v1] = (await computeLiveSummaries(objects, { now: NOW, drift: DRIFT })).versions;
    assert.equal(v1!.predictions, 400);
    assert.equal(v1!.drift?.level, 'none');
    assert.equal(v1!.drift?.samples, 300, 'captures older than the window are left out');
    assert.equal(v1!.drift?.since, new Date(NOW.getTime() - 7 * DAY).toISOString());
    assert.equal(v1!.drift?.alarm, false);
    assert.ok(v1!.drift!.score! < 0.1, String(v1!.drift!.score));
  });

  test('inverted inputs go over the threshold, and live.json stores the drift', async () => {
    const objects = new MemoryObjects();
    await storeVersion(objects, V1, JSON.stringify(reference));
    await writeTraffic(
      objects,
      answers(0, 300, 1, (d) => d.map((v) => 255 - v)),
    );
    const summary = await refreshLiveSummaries(objects, NOW, { drift: DRIFT });
    const drift = summary.versions[0]!.drift!;
    assert.equal(drift.level, 'significant');
    assert.equal(drift.alarm, true);
    const stored = parseStoredLive((await objects.get(`models/${V1}/live.json`))!.body, V1);
    assert.deepEqual(stored?.drift, drift);
  });

  test('fewer recent captures than the minimum is not enough data', async () => {
    const objects = new MemoryObjects();
    await storeVersion(objects, V1, JSON.stringify(reference));
    await writeTraffic(objects, answers(0, 50, 1));
    const [v1] = (await computeLiveSummaries(objects, { now: NOW, drift: DRIFT })).versions;
    assert.deepEqual(
      { level: v1!.drift?.level, score: v1!.drift?.score, samples: v1!.drift?.samples },
      {
        level: 'not enough data',
        score: null,
        samples: 50,
      },
    );
  });

  test('a version saved without a profile has no reference profile', async () => {
    const objects = new MemoryObjects();
    await storeVersion(objects, V1);
    await writeTraffic(objects, answers(0, 250, 1));
    const [v1] = (await computeLiveSummaries(objects, { now: NOW, drift: DRIFT })).versions;
    assert.equal(v1!.drift?.level, 'no reference profile');
    assert.match(v1!.drift!.reference!, /none stored/);
  });

  test('a damaged, changed or oversized profile.json is no reference profile, saying why, never a failure', async () => {
    const cases: [string, (objects: MemoryObjects) => Promise<void>, RegExp][] = [
      ['not JSON', (o) => storeVersion(o, V1, '{"schema":'), /profile.json is not valid JSON/],
      [
        'wrong bins',
        (o) => storeVersion(o, V1, JSON.stringify({ ...reference, features: { ...reference.features, width: [1] } })),
        /counts for width/,
      ],
      [
        'changed after saving',
        async (o) => {
          await storeVersion(o, V1, JSON.stringify(reference));
          await o.put(`models/${V1}/profile.json`, JSON.stringify(profileOf([])));
        },
        /does not match its recorded checksum/,
      ],
      [
        'oversized',
        async (o) => storeVersion(o, V1, JSON.stringify({ ...reference, padding: 'x'.repeat(70_000) })),
        /over the 65536-byte limit/,
      ],
    ];
    for (const [what, seed, reason] of cases) {
      const objects = new MemoryObjects();
      await seed(objects);
      await writeTraffic(objects, answers(0, 250, 1));
      const [v1] = (await computeLiveSummaries(objects, { now: NOW, drift: DRIFT })).versions;
      assert.equal(v1!.drift?.level, 'no reference profile', what);
      assert.match(v1!.drift!.reference!, reason, what);
    }
  });

  test('a capture whose input does not decode to 784 bytes is left out of the drift samples', async () => {
    const objects = new MemoryObjects();
    await storeVersion(objects, V1, JSON.stringify(reference));
    const [good, damaged] = answers(0, 2, 1).map((answer) => captureRecord(answer));
    // Right length for parseCapture, but '!' is not base64: it decodes to fewer bytes.
    damaged!.input = '!'.repeat(good!.input.length);
    const lines = [good, damaged].map((record) => JSON.stringify(record)).join('\n');
    await objects.put(`${CAPTURES_PREFIX}dt=2026-11-19/test.jsonl`, lines);
    const [v1] = (await computeLiveSummaries(objects, { now: NOW, drift: { ...DRIFT, minSamples: 1 } })).versions;
    assert.equal(v1!.predictions, 2);
    assert.equal(v1!.drift?.samples, 1);
  });

  test('parseStoredLive refuses a malformed drift and accepts a live.json written before drift existed', async () => {
    const objects = new MemoryObjects();
    await storeVersion(objects, V1, JSON.stringify(reference));
    await writeTraffic(objects, answers(0, 250, 1));
    await refreshLiveSummaries(objects, NOW, { drift: DRIFT });
    const good = JSON.parse((await objects.get(`models/${V1}/live.json`))!.body.toString('utf8'));
    const { drift, ...withoutDrift } = good;
    assert.ok(parseStoredLive(Buffer.from(JSON.stringify(withoutDrift)), V1));
    const bad: [string, unknown][] = [
      ['a level not in the list', { ...drift, level: 'high' }],
      ['a negative score', { ...drift, score: -1 }],
      ['a score without features', { ...drift, features: null }],
      ['a feature missing', { ...drift, features: { ...drift.features, thickness: undefined } }],
      ['a measured level without a score', { ...drift, score: null, features: null }],
      ['an unmeasured level with a score', { ...drift, level: 'not enough data' }],
      ['no since', { ...drift, since: 'yesterday' }],
      ['alarm not a boolean', { ...drift, alarm: 'no' }],
      ['fractional samples', { ...drift, samples: 2.5 }],
      ['not an object', 'none'],
    ];
    for (const [what, value] of bad) {
      assert.equal(parseStoredLive(Buffer.from(JSON.stringify({ ...good, drift: value })), V1), undefined, what);
    }
  });
});
