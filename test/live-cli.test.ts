import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { createHash } from 'node:crypto';
import { profileOf } from '#lib/live/profile';
import { CAPTURES_PREFIX } from '#lib/live/records';
import { readStoredLive } from '#lib/live/stored';
import { COMPARISON_CAVEAT } from '#lib/live/comparison';
import { LIVE_CAVEAT, wilsonInterval } from '#lib/live/summary';
import { MNIST_PIXELS } from '#lib/mnist-shape';
import { LATEST_KEY, ModelStore } from '#lib/storage/store';
import { runScript, type ScriptResult } from './support/cli.ts';
import { tempDir, testBucket, type TestBucket } from './support/env.ts';
import { type Answer, writeTraffic } from './support/live.ts';

const SERVING = '20261101T100000Z-mlp';
const BLANK = new Uint8Array(MNIST_PIXELS);
const OLDER = '20261020T100000Z-mlp';
/** In the past whenever the suite runs: the feedback route refuses ids from the future. */
const at = (day: number, minute: number) => new Date(Date.UTC(2026, 10, day, 9, minute));

/** SERVING: 10 answers, 8 confirmed, 2 corrected (7 answered as 1 twice); OLDER: 2 answers, no feedback. */
const TRAFFIC: Answer[] = [
  ...Array.from(
    { length: 8 },
    (_, i): Answer => ({
      version: SERVING,
      digit: i,
      confidence: 0.95,
      at: at(20, i),
      feedback: { correct: true },
    }),
  ),
  { version: SERVING, digit: 1, confidence: 0.55, at: at(21, 0), feedback: { label: 7 } },
  { version: SERVING, digit: 1, confidence: 0.45, at: at(21, 1), feedback: { label: 7 } },
  { version: OLDER, digit: 5, confidence: 0.9, at: at(2, 0) },
  { version: OLDER, digit: 6, confidence: 0.8, at: at(2, 1) },
];

describe('npm run live', () => {
  let bucket: TestBucket;
  let cwd: string;

  before(async () => {
    bucket = await testBucket();
    cwd = await tempDir();
    // Only the listing of metrics.json decides which versions exist for the summaries.
    for (const version of [OLDER, SERVING]) await bucket.objects.put(`models/${version}/metrics.json`, '{}');
    const pointer = { version: SERVING, promotedAt: at(1, 0).toISOString(), accuracy: 0.98, arch: 'mlp' };
    await bucket.objects.put(LATEST_KEY, JSON.stringify(pointer), 'application/json');
    await writeTraffic(bucket.objects, TRAFFIC);
    await bucket.objects.put(`${CAPTURES_PREFIX}dt=2026-11-20/foreign.jsonl`, '{"level":"info"}\n{broken\n');
  });

  const live = (args: string[], env: Record<string, string> = bucket.env): Promise<ScriptResult> =>
    runScript('scripts/live.ts', args, {
      cwd,
      env: { PATH: process.env.PATH ?? '', ...env, DATA_DIR: path.join(cwd, '.data') },
    });
  const storedLive = (version: string) => readStoredLive(new ModelStore(bucket.objects), version);

  test('--no-write prints per version and stores nothing', async () => {
    const result = await live(['--no-write']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await storedLive(SERVING), undefined);
    assert.match(result.stdout, /Not stored \(--no-write\)\./);
  });

  test('prints counts, accuracy with its interval, the caveat, confusion pairs, latency, low confidence, histogram and class mix; stores live.json', async () => {
    const result = await live([]);
    assert.equal(result.code, 0, result.stderr);
    const out = result.stdout;
    assert.ok(out.includes(LIVE_CAVEAT));
    assert.match(out, new RegExp(`${SERVING}  \\(serving\\)`));
    assert.match(out, /predictions {2}10, 2026-11-20 09:00 to 2026-11-21 09:01 UTC/);
    assert.match(out, /feedback {5}10 \(100\.0% of predictions\)/);
    assert.match(out, /confirmed {4}8\n {2}corrected {4}2/);
    assert.match(out, /accuracy {5}80\.0% {2}95% interval 49\.0% to 94\.3% \(from 10 answers\)/);
    assert.match(out, /corrections {2}7 answered as 1 ×2\n {2}latency {6}p50 3\.50 ms · p99 3\.50 ms /);
    assert.match(out, /low conf\. {4}20\.0% of answers below 0\.6\n/);
    assert.match(out, /0\.9–1\.0 {2}█{24} {6}8\n/);
    assert.match(out, /0\.4–0\.5 {2}█+ +1 {3}corrected █+ 1/);
    assert.match(out, /training {4}9\.9% {2}11\.2%/);
    assert.match(
      out,
      new RegExp(
        `${OLDER}\\n {2}predictions {2}2,[^\\n]*\\n {2}feedback {5}0[\\s\\S]*accuracy {5}– {2}\\(no feedback yet\\)`,
      ),
    );
    assert.match(out, /training {4}9\.9%[^\n]*\n {2}drift {8}no reference profile: metrics of /);
    assert.match(out, /Left out: 2 capture lines that were not valid records\./);
    assert.match(out, /Stored models\/<version>\/live\.json for 2 versions/);
    const stored = (await storedLive(SERVING))!;
    assert.deepEqual(
      { feedback: stored.feedback, correct: stored.correct, low: stored.low, high: stored.high },
      { feedback: 10, correct: 8, ...wilsonInterval(8, 10) },
    );
  });

  test('shows drift per feature against the version’s reference profile, and in --json', async () => {
    // The serving version's captures are blank frames; its reference is a profile of blank frames too, but all
    // answered 3 with full confidence, so the class mix and confidence moved and the ink did not.
    const profile = JSON.stringify(
      profileOf(Array.from({ length: 10 }, () => ({ input: BLANK, digit: 3, confidence: 1 }))),
    );
    const files = { 'profile.json': createHash('sha256').update(profile).digest('hex') };
    const artifacts = { weightsBytes: 0, weightsSha256: '', modelJsonSha256: '', files };
    await bucket.objects.put(`models/${SERVING}/profile.json`, profile);
    await bucket.objects.put(
      `models/${SERVING}/metrics.json`,
      JSON.stringify({ version: SERVING, params: 0, artifacts }),
    );
    const env = { ...bucket.env, DRIFT_MIN_SAMPLES: '5', DRIFT_WINDOW_DAYS: '90' };
    const result = await live(['--no-write'], env);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /drift {8}significant: score \d+\.\d{3} \(ALARM: over 0\.25\), 10 captures since /);
    assert.match(result.stdout, /classMix +\d+\.\d{3} {2}significant\n/);
    assert.match(result.stdout, /thickness +0\.000\n/);
    const json = await live(['--json', '--no-write'], env);
    const drift = JSON.parse(json.stdout).versions[1].drift;
    assert.deepEqual(
      { level: drift.level, alarm: drift.alarm, samples: drift.samples, thickness: drift.features.thickness },
      { level: 'significant', alarm: true, samples: 10, thickness: 0 },
    );
    assert.equal(JSON.parse(json.stdout).versions[0].drift.level, 'no reference profile');
  });

  test('--json prints exactly one JSON object with versions, skipped and comparisons (none here)', async () => {
    const result = await live(['--json', '--no-write']);
    assert.equal(result.code, 0, result.stderr);
    const parsed = JSON.parse(result.stdout);
    assert.deepEqual(Object.keys(parsed).sort(), ['comparisons', 'skipped', 'versions']);
    assert.deepEqual(parsed.comparisons, []);
    assert.deepEqual(
      parsed.versions.map(
        ({ version, predictions, feedback, correct, corrected, accuracy }: Record<string, unknown>) => ({
          version,
          predictions,
          feedback,
          correct,
          corrected,
          accuracy,
        }),
      ),
      [
        { version: OLDER, predictions: 2, feedback: 0, correct: 0, corrected: 0, accuracy: null },
        { version: SERVING, predictions: 10, feedback: 10, correct: 8, corrected: 2, accuracy: 0.8 },
      ],
    );
    const serving = parsed.versions[1];
    assert.deepEqual({ low: serving.low, high: serving.high }, wilsonInterval(8, 10));
    assert.equal(serving.confusion[7][1], 2);
    assert.equal(serving.confidence.all.length, 10);
    assert.equal(serving.classMix.answers.length, 10);
    assert.deepEqual(parsed.skipped, {
      captureLines: 2,
      captureObjects: 0,
      feedbackObjects: 0,
      unknownPredictionIds: 0,
      unknownVersionCaptures: 0,
    });
  });

  test('--since reads only partitions from that day on and does not store the partial summary', async () => {
    const before = await bucket.objects.get(`models/${SERVING}/live.json`);
    const result = await live(['--json', '--since', '2026-11-21']);
    assert.equal(result.code, 0, result.stderr);
    const parsed = JSON.parse(result.stdout);
    assert.deepEqual(
      parsed.versions.map((v: { version: string; predictions: number }) => [v.version, v.predictions]),
      [[SERVING, 2]],
    );
    assert.deepEqual((await bucket.objects.get(`models/${SERVING}/live.json`))?.etag, before?.etag);
  });

  test('a --since that is not a calendar day, an unknown flag or an argument is a usage error (exit 2)', async () => {
    for (const args of [
      ['--since', 'yesterday'],
      ['--since', '2026-02-30'],
      ['--since', '2026-1-5'],
      ['--since'],
      ['--all'],
      ['extra'],
    ]) {
      const result = await live(args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, /^live: [\s\S]*Usage: npm run live/, args.join(' '));
      assert.equal(result.stdout, '');
    }
  });

  test('--deployed without cdk.outputs.json says to deploy first (exit 1)', async () => {
    const result = await live(['--deployed']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /--deployed needs cdk\.outputs\.json: run `npm run deploy` first/);
  });

  test('an empty bucket says there is nothing yet, and --json gives no versions', async () => {
    const empty = await testBucket();
    const text = await live([], empty.env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /No captured predictions yet/);
    const json = await live(['--json'], empty.env);
    assert.deepEqual(JSON.parse(json.stdout).versions, []);
  });

  test('--help prints the usage with the caveat and exits 0', async () => {
    const result = await live(['--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^Usage: npm run live/);
    assert.ok(result.stdout.includes(LIVE_CAVEAT));
  });
});

describe('npm run live with a candidate beside the serving version', () => {
  const CANDIDATE = '20261102T100000Z-cnn';
  const beside = (digit: number) => ({ modelVersion: CANDIDATE, digit, confidence: 0.7 });
  /** Shadow traffic: SERVING answered 4, the candidate agreed on 3; two labelled, the candidate right on both. */
  const SHADOW: Answer[] = [
    { version: SERVING, digit: 1, confidence: 0.9, at: at(22, 0), alternative: beside(1), feedback: { correct: true } },
    { version: SERVING, digit: 2, confidence: 0.9, at: at(22, 1), alternative: beside(2) },
    { version: SERVING, digit: 3, confidence: 0.9, at: at(22, 2), alternative: beside(3) },
    { version: SERVING, digit: 4, confidence: 0.6, at: at(22, 3), alternative: beside(9), feedback: { label: 9 } },
  ];
  let bucket: TestBucket;
  let cwd: string;

  before(async () => {
    bucket = await testBucket();
    cwd = await tempDir();
    for (const version of [SERVING, CANDIDATE]) await bucket.objects.put(`models/${version}/metrics.json`, '{}');
    const pointer = { version: SERVING, promotedAt: at(1, 0).toISOString(), accuracy: 0.98, arch: 'mlp' };
    await bucket.objects.put(LATEST_KEY, JSON.stringify(pointer), 'application/json');
    await writeTraffic(bucket.objects, SHADOW);
  });
  const live = (args: string[]) =>
    runScript('scripts/live.ts', args, {
      cwd,
      env: { PATH: process.env.PATH ?? '', ...bucket.env, DATA_DIR: path.join(cwd, '.data') },
    });

  test('--json compares the two on the same inputs: agreement, and each scored on the labelled ones', async () => {
    const result = await live(['--json', '--no-write']);
    assert.equal(result.code, 0, result.stderr);
    const [comparison, ...others] = JSON.parse(result.stdout).comparisons;
    assert.deepEqual(others, []);
    const score = (version: string, answered: number, correct: number) => {
      const interval = wilsonInterval(correct, 2)!;
      return { version, answered, correct, accuracy: correct / 2, low: interval.low, high: interval.high };
    };
    assert.deepEqual(comparison, {
      versions: [SERVING, CANDIDATE],
      compared: 4,
      agreed: 3,
      agreement: 0.75,
      feedback: 2,
      scores: [score(SERVING, 4, 1), score(CANDIDATE, 0, 2)],
    });
  });

  test('the text report shows the pair with its caveat', async () => {
    const result = await live(['--no-write']);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(result.stdout.includes(COMPARISON_CAVEAT));
    assert.match(result.stdout, new RegExp(`${SERVING} \\(serving\\) {2}vs {2}${CANDIDATE}`));
    assert.match(result.stdout, /compared {5}4 inputs answered by both; agreed on 3 \(75\.0%\)/);
    assert.match(
      result.stdout,
      new RegExp(`${CANDIDATE} {2}100\\.0% {2}95% interval 34\\.2% to 100\\.0% \\(2 of 2\\)`),
    );
  });
});
