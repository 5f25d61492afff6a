import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { PNG } from 'pngjs';
import type { StoredLive } from '#lib/live/stored';
import { LIVE_CAVEAT } from '#lib/live/summary';
import { summarise } from '#lib/training/evaluate';
import { renderReport } from '#lib/report';
import { ModelStore, type ModelMetrics } from '#lib/storage/store';
import { runScript, type ScriptResult } from './support/cli.ts';
import { mnistDir, tempDir, testBucket, type TestBucket } from './support/env.ts';
import { storeTrainedModel } from './support/service.ts';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const IMAGES = 20;

/** Every fake test image has its own pixel pattern, so a thumbnail shows which image it was cut from. */
function fakeTestImages(): Uint8Array {
  const images = new Uint8Array(IMAGES * 784);
  for (let i = 0; i < images.length; i++) images[i] = (Math.floor(i / 784) * 37 + (i % 784) * 3) % 256;
  return images;
}

function confusion(): number[][] {
  const rows = Array.from({ length: 10 }, (_, t) => Array.from({ length: 10 }, (_, p) => (t === p ? 95 + t : 0)));
  rows[4]![9] = 30; // 4 is read as 9 often: its recall is weak
  rows[7]![1] = 2;
  return rows;
}

function syntheticMetrics(
  overrides: { version?: string; backend?: string; history?: ModelMetrics['training']['history'] } = {},
): ModelMetrics {
  const history = overrides.history ?? [
    { epoch: 1, epochs: 3, loss: 0.4, accuracy: 0.88, valLoss: 0.2, valAccuracy: 0.94, seconds: 30 },
    { epoch: 2, epochs: 3, loss: 0.15, accuracy: 0.95, valLoss: 0.12, valAccuracy: 0.96, seconds: 31 },
    { epoch: 3, epochs: 3, loss: 0.09, accuracy: 0.97, valLoss: 0.1, valAccuracy: 0.97, seconds: 29 },
  ];
  const worst = [
    { index: 3, label: 4, predicted: 9, confidence: 0.97 },
    { index: 0, label: 4, predicted: 9, confidence: 0.9 },
    { index: 17, label: 7, predicted: 1, confidence: 0.8 },
    { index: 8, label: 4, predicted: 9, confidence: 0.7 },
    { index: 12, label: 7, predicted: 1, confidence: 0.6 },
  ];
  return {
    version: overrides.version ?? '20260601T120000Z-mlp',
    arch: 'mlp',
    createdAt: '2026-06-01T12:00:00.000Z',
    backend: overrides.backend ?? 'wasm',
    params: 269_322,
    training: {
      epochs: history.length,
      batchSize: 128,
      learningRate: 0.001,
      schedule: 'cosine',
      seed: 42,
      history,
      secondsPerEpoch: 30,
      trainCount: 54_000,
      validationCount: 6_000,
    },
    test: summarise(confusion(), 0.1234, worst),
    artifacts: { weightsBytes: 1, weightsSha256: 'x', modelJsonSha256: 'y' },
  };
}

function between(html: string, start: string, end: string): string {
  const from = html.indexOf(start);
  assert.ok(from >= 0, `no ${start} in the report`);
  const to = html.indexOf(end, from);
  assert.ok(to >= 0, `no ${end} after ${start}`);
  return html.slice(from, to + end.length);
}

const countOf = (text: string, pattern: RegExp): number => text.match(pattern)?.length ?? 0;

describe('renderReport', () => {
  let html: string;
  const testImages = fakeTestImages();
  before(async () => {
    html = await renderReport(syntheticMetrics(), testImages);
  });

  test('is one complete HTML document that loads nothing: no script, no URL, a CSP that forbids requests', () => {
    assert.match(html, /^<!doctype html>\n<html lang="en">/);
    assert.match(html, /<\/html>\n$/);
    assert.equal(countOf(html, /<html/g), 1);
    assert.doesNotMatch(html, /<script/i);
    assert.doesNotMatch(html, /https?:\/\//);
    const sources = [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
    assert.ok(sources.length > 0);
    for (const source of sources) assert.match(source, /^data:/);
    assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none';/);
  });

  test('shows the version, architecture, parameters, backend, test accuracy and training settings', () => {
    assert.match(html, /<title>digitnet report — 20260601T120000Z-mlp<\/title>/);
    for (const text of [
      'MLP · 269,322 parameters',
      'wasm',
      '2026-06-01 12:00:00 UTC',
      '3 epochs · batch 128 · learning rate 0.001 (cosine) · seed 42',
      '54,000 training / 6,000 validation images',
      'loss 0.1234',
    ]) {
      assert.ok(html.includes(text), `missing "${text}"`);
    }
    assert.match(html, /<strong>\d+\.\d\d%<\/strong>/);
  });

  test("shows live-holdout accuracy beside test accuracy, with the serving model's, and the feedback trained on", async () => {
    const withLive = await renderReport(
      {
        ...syntheticMetrics(),
        liveHoldout: { count: 120, accuracy: 0.925, servingAccuracy: 0.9, servingVersion: '20260501T120000Z-mlp' },
        feedback: { used: 400, available: 480, weight: 3, maxShare: 0.1 },
      },
      testImages,
    );
    const headline = between(withLive, '<div class="headline">', '</div>');
    assert.ok(
      headline.includes("92.50% on the live holdout of 120 users' drawings · serving 20260501T120000Z-mlp 90.00%"),
      headline,
    );
    assert.ok(withLive.includes("400 of 480 users' corrections, each 3× per epoch (share capped at 10%)"));
  });

  test('without labelled captures says nothing of a live holdout or feedback', () => {
    assert.doesNotMatch(html, /live holdout|Feedback/);
  });

  test('escapes markup in interpolated strings such as the version name', async () => {
    const hostile = await renderReport(
      syntheticMetrics({ version: '20260601T120000Z-<img src=x onerror=alert(1)>', backend: '"wasm" & <b>' }),
      testImages,
    );
    assert.ok(hostile.includes('20260601T120000Z-&lt;img src=x onerror=alert(1)&gt;'));
    assert.ok(hostile.includes('&quot;wasm&quot; &amp; &lt;b&gt;'));
    assert.doesNotMatch(hostile, /<img src=x/);
    assert.doesNotMatch(hostile, /<b>/);
  });

  test('draws loss and accuracy as SVG line charts with one path per series, a point per epoch, ticks and a legend', () => {
    const charts = [...html.matchAll(/<svg[\s\S]*?<\/svg>/g)].map((m) => m[0]);
    assert.equal(charts.length, 2);
    const [loss, accuracy] = charts as [string, string];
    assert.match(loss, /training loss/);
    assert.match(loss, /validation loss/);
    assert.match(accuracy, /training accuracy/);
    assert.match(accuracy, /validation accuracy/);
    for (const chart of charts) {
      const paths = [...chart.matchAll(/<path class="series [^"]*" d="([^"]*)"/g)].map((m) => m[1]!);
      assert.equal(paths.length, 2);
      for (const d of paths) assert.match(d, /^M[\d.]+ [\d.]+L[\d.]+ [\d.]+L[\d.]+ [\d.]+$/);
      assert.equal(countOf(chart, /<circle /g), 6);
      for (const epoch of [1, 2, 3]) assert.match(chart, new RegExp(`text-anchor="middle">${epoch}</text>`));
      assert.match(chart, />epoch<\/text>/);
    }
    assert.match(accuracy, />\d+%<\/text>/);
  });

  test('a one-epoch run without validation values draws one marked point per chart, no tick above 100%, and says validation was not recorded', async () => {
    const single = await renderReport(
      syntheticMetrics({ history: [{ epoch: 1, epochs: 1, loss: 0.3, accuracy: 0.999, seconds: 40 }] }),
      testImages,
    );
    const charts = [...single.matchAll(/<svg[\s\S]*?<\/svg>/g)].map((m) => m[0]);
    assert.equal(charts.length, 2);
    for (const chart of charts) {
      assert.equal(countOf(chart, /<path class="series/g), 1);
      assert.equal(countOf(chart, /<circle /g), 1);
      assert.doesNotMatch(chart, /validation/);
    }
    const percentTicks = [...charts[1]!.matchAll(/>([\d.]+)%<\/text>/g)].map((m) => Number(m[1]));
    assert.ok(percentTicks.length >= 3);
    assert.ok(Math.max(...percentTicks) <= 100, `ticks ${percentTicks}`);
    assert.doesNotMatch(single, /NaN|undefined|Infinity/);
    assert.match(single, /No validation loss was recorded/);
  });

  test('breaks a series where an epoch has no value instead of bridging the gap', async () => {
    const history = syntheticMetrics().training.history.map((e) => (e.epoch === 2 ? { ...e, valLoss: undefined } : e));
    const gappy = await renderReport(syntheticMetrics({ history }), testImages);
    const loss = gappy.match(/<svg[\s\S]*?<\/svg>/)![0];
    const validation = [...loss.matchAll(/<path class="series val" d="([^"]*)"/g)].map((m) => m[1]!);
    assert.equal(validation.length, 1);
    assert.equal(countOf(validation[0]!, /M/g), 2);
    assert.match(gappy, /No validation loss for epoch 2/);
  });

  test('shows the confusion matrix as a 10×10 table of counts, shaded by share of the row', () => {
    const table = between(html, '<table id="confusion">', '</table>');
    const cells = [...table.matchAll(/<td([^>]*)>(\d+)<\/td>/g)];
    assert.equal(countOf(table, /<td/g), 100);
    assert.deepEqual(
      cells.map((m) => Number(m[2])),
      confusion().flat(),
    );
    assert.match(cells[0]![1]!, /style="background: rgb\(79 70 229 \/ 1\.000\)"/);
    assert.match(cells[4 * 10 + 9]![1]!, /style="background: rgb\(220 38 38 \/ 0\.\d+\)"/);
    assert.doesNotMatch(cells[1]![1]!, /style=/);
  });

  test('lists precision, recall, F1 and support per digit and highlights the weak ones', () => {
    const table = between(html, '<table id="per-class">', '</table>');
    const rows = [...table.matchAll(/<tr><th scope="row">(\d)<\/th>([\s\S]*?)<\/tr>/g)];
    assert.equal(rows.length, 10);
    const row = (digit: number) => rows[digit]![2]!;
    // 4 is read as 9 in 30 of 129 cases: weak recall; 9 gets those 30 wrong answers: weak precision.
    assert.match(row(4), /<td class="weak">76\.74%<\/td>/);
    assert.match(row(9), /<td class="weak">\d+\.\d\d%<\/td>/);
    assert.match(row(4), /<td class="confused">9 \(30\)<\/td>/);
    assert.doesNotMatch(row(0), /weak/);
    assert.match(row(0), /<td>95<\/td>/);
  });

  test('shows each worst mistake as a PNG of its test image, captioned with true and predicted digit and confidence', async () => {
    const images = [...html.matchAll(/<img src="data:image\/png;base64,([^"]+)"/g)].map((m) =>
      Buffer.from(m[1]!, 'base64'),
    );
    assert.equal(images.length, 5);
    const worst = syntheticMetrics().test.worst;
    for (const [i, png] of images.entries()) {
      assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
      // Decoded by pngjs, an independent decoder: every pixel is the test image's.
      const decoded = PNG.sync.read(png);
      assert.equal(decoded.width, 28);
      assert.equal(decoded.height, 28);
      const start = worst[i]!.index * 784;
      const grey = Uint8Array.from({ length: 784 }, (_, pixel) => decoded.data[pixel * 4]!);
      assert.deepEqual(grey, testImages.subarray(start, start + 784));
    }
    assert.match(
      html,
      /true 4 → <span class="guess">predicted 9<\/span><\/span> <span class="conf">\(97\.0%\)<\/span>/,
    );
    assert.match(html, /image-rendering: pixelated/);
  });

  test('refuses a worst-mistake index outside the test images it is given', async () => {
    await assert.rejects(
      renderReport(syntheticMetrics(), testImages.subarray(0, 10 * 784)),
      /index 17 is outside the 10 test images/,
    );
  });
});

/** What `npm run live` stores: 12 answers with feedback, 3 of them corrected (7 answered as 1 twice, 4 as 9 once). */
function storedLive(version = '20260601T120000Z-mlp'): StoredLive {
  const confusion = Array.from({ length: 10 }, () => Array.from({ length: 10 }, () => 0));
  confusion[7]![1] = 2;
  confusion[4]![9] = 1;
  return {
    version,
    predictions: 340,
    feedback: 12,
    correct: 9,
    corrected: 3,
    accuracy: 0.75,
    low: 0.4677,
    high: 0.9111,
    confusion,
    confidence: { all: [0, 0, 0, 4, 6, 10, 20, 30, 70, 200], corrected: [0, 0, 0, 1, 1, 0, 1, 0, 0, 0] },
    classMix: { answers: Array(10).fill(0.1), training: Array(10).fill(0.1) },
    from: '2026-06-02T08:00:00.000Z',
    to: '2026-06-09T17:30:00.000Z',
    updatedAt: '2026-06-10T00:00:00.000Z',
  };
}

describe('renderReport with live traffic', () => {
  const testImages = fakeTestImages();

  test('adds a "Live traffic" section: accuracy with its interval and count, the caveat, the corrected answers', async () => {
    const html = await renderReport(syntheticMetrics(), testImages, storedLive());
    const section = between(html, '<section class="card wide" id="live">', '</section>');
    assert.match(section, /<h2>Live traffic<\/h2>/);
    assert.match(section, /<strong>75\.0%<\/strong><span>users’ accuracy, 95% interval 46\.8% to 91\.1%<\/span>/);
    assert.match(section, /from 12 answers with feedback/);
    assert.match(section, /340 captured, 2026-06-02 08:00:00 UTC to 2026-06-09 17:30:00 UTC/);
    assert.match(section, /12: 9 confirmed, 3 corrected/);
    assert.ok(section.includes(LIVE_CAVEAT));
    const table = between(section, '<table id="live-confusion">', '</table>');
    assert.match(table, /Rows: the digit the user says it was; columns: the model’s answer/);
    assert.match(table, /title="2 of 2 7s read as 1 \(100\.00%\)">2<\/td>/);
    assert.match(table, /title="1 of 1 4s read as 9 \(100\.00%\)">1<\/td>/);
    // The test-set matrix is still there, unchanged.
    assert.ok(html.includes('<table id="confusion">'));
  });

  test('without feedback it says so and draws no matrix', async () => {
    const quiet = { ...storedLive(), feedback: 0, correct: 0, corrected: 0, accuracy: null, low: null, high: null };
    const section = between(
      await renderReport(syntheticMetrics(), testImages, quiet),
      '<section class="card wide" id="live">',
      '</section>',
    );
    assert.match(section, /<strong>–<\/strong><span>no feedback yet<\/span>/);
    assert.match(section, /No answer has been corrected\./);
    assert.doesNotMatch(section, /live-confusion/);
  });

  test('without live data there is no such section', async () => {
    const html = await renderReport(syntheticMetrics(), testImages);
    assert.doesNotMatch(html, /Live traffic|id="live"/);
  });
});

describe('npm run report', () => {
  let bucket: TestBucket;
  let store: ModelStore;
  let cwd: string;

  before(async () => {
    bucket = await testBucket();
    store = new ModelStore(bucket.objects);
    cwd = await tempDir();
  });

  function report(args: string[]): Promise<ScriptResult> {
    const env = { ...process.env, ...bucket.env, MNIST_DIR: mnistDir, DATA_DIR: path.join(cwd, '.data') };
    return runScript('scripts/report.ts', args, { cwd, env });
  }

  test('writes reports/<version>.html and stores it as the version’s report.html', async () => {
    const version = await storeTrainedModel(store);
    const result = await report([version]);
    assert.equal(result.code, 0, result.stderr);
    const html = await readFile(path.join(cwd, 'reports', `${version}.html`), 'utf8');
    assert.ok(html.includes(version));
    const worst = (await store.metrics(version))!.test.worst.length;
    assert.ok(worst > 0);
    assert.equal(countOf(html, /<img src="data:image\/png;base64,/g), worst);
    assert.equal((await store.attachment(version, 'report.html'))?.toString('utf8'), html);
    assert.match(result.stdout, new RegExp(`stored models/${version}/report\\.html`));
  });

  test('`latest` --out FILE reports the serving version and leaves a report it already has unchanged', async () => {
    const version = await storeTrainedModel(store);
    await store.attach(version, 'report.html', 'the report its training run stored', 'text/html; charset=utf-8');
    await store.promote(version);
    const file = path.join(cwd, 'elsewhere', 'serving.html');
    const result = await report(['latest', '--out', file]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok((await readFile(file, 'utf8')).includes(version));
    assert.equal(
      (await store.attachment(version, 'report.html'))?.toString('utf8'),
      'the report its training run stored',
    );
    assert.match(result.stdout, /already stored; left unchanged/);
  });

  test('with a live.json the written report has a Live traffic section; the stored one describes training only', async () => {
    const version = await storeTrainedModel(store);
    await store.attach(version, 'live.json', JSON.stringify(storedLive(version)), 'application/json');
    const result = await report([version]);
    assert.equal(result.code, 0, result.stderr);
    const html = await readFile(path.join(cwd, 'reports', `${version}.html`), 'utf8');
    assert.match(html, /<h2>Live traffic<\/h2>/);
    const stored = (await store.attachment(version, 'report.html'))!.toString('utf8');
    assert.ok(stored.includes(version));
    assert.doesNotMatch(stored, /Live traffic/);
  });

  test('a malformed live.json is left out with a warning; the report is still written', async () => {
    const version = await storeTrainedModel(store);
    await store.attach(version, 'live.json', '{"predictions": -1}', 'application/json');
    const result = await report([version]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(`models/${version}/live\\.json left out \\(.*\\); \`npm run live\` rewrites it`),
    );
    assert.doesNotMatch(await readFile(path.join(cwd, 'reports', `${version}.html`), 'utf8'), /Live traffic/);
  });

  test('an unknown version exits 1 and names the newest stored versions', async () => {
    const result = await report(['20200101T000000Z-mlp']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /no model version "20200101T000000Z-mlp"\. Newest versions:/);
    const serving = (await store.latest())!.version;
    assert.match(result.stderr, new RegExp(`${serving}  \\(serving\\)`));
  });

  test('a name that is not a version at all is reported the same way, not as a crash', async () => {
    const result = await report(['../../etc/passwd']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /no model version "\.\.\/\.\.\/etc\/passwd"/);
  });

  test('no arguments prints the usage and exits 2; --help prints it and exits 0', async () => {
    const missing = await report([]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no version given[\s\S]*Usage: npm run report -- <version \| latest>/);
    const help = await report(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: npm run report/);
  });
});
