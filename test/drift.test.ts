import assert from 'node:assert/strict';
import { before, describe, type TestContext, test } from 'node:test';
import { initBackend, tf } from '#lib/backend';
import { DRIFT_DEFAULTS, driftOf, driftScore, PSI_EPSILON, psi, psiLevel } from '#lib/live/drift';
import {
  binCount,
  binOf,
  FEATURES,
  INK_BINS,
  INK_FEATURES,
  inkStats,
  PROFILE_SCHEMA,
  parseProfile,
  type Profile,
  type ProfileSample,
  profileOf,
} from '#lib/live/profile';
import { MNIST_CLASSES, MNIST_PIXELS, MNIST_SIDE, argmax } from '#lib/mnist-shape';
import type { LabelledImages } from '#lib/training/batches';
import { createModel } from '#lib/training/model';
import { trainModel } from '#lib/training/train-loop';
import { testMnist } from './support/env.ts';

const SINCE = new Date('2026-11-26T00:00:00Z');
const OPTIONS = { threshold: DRIFT_DEFAULTS.threshold, minSamples: DRIFT_DEFAULTS.minSamples };
const close = (actual: number, expected: number, digits = 4) =>
  assert.equal(Math.round(actual * 10 ** digits) / 10 ** digits, expected);

/** A 28×28 input with the given pixels set to `value`. */
function image(pixels: [x: number, y: number][], value = 255): Uint8Array {
  const input = new Uint8Array(MNIST_PIXELS);
  for (const [x, y] of pixels) input[y * MNIST_SIDE + x] = value;
  return input;
}

/** A solid bar `w` wide and `h` tall with its top-left corner at (x0, y0). */
function bar(x0: number, y0: number, w: number, h: number, value = 255): Uint8Array {
  const pixels: [number, number][] = [];
  for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) pixels.push([x, y]);
  return image(pixels, value);
}

describe('psi', () => {
  test('identical histograms are 0, whatever their sizes', () => {
    assert.equal(psi([10, 20, 30], [10, 20, 30]), 0);
    close(psi([10, 20, 30], [100, 200, 300]), 0);
  });

  test('50/50 against 25/75 is 0.2747 (known value)', () => {
    // (0.25 − 0.5)·ln(0.25/0.5) + (0.75 − 0.5)·ln(0.75/0.5)
    close(psi([50, 50], [25, 75]), 0.2747);
  });

  test('a bin empty in the reference counts as PSI_EPSILON: large but finite', () => {
    const expected = (0.9 - 1) * Math.log(0.9) + (0.1 - PSI_EPSILON) * Math.log(0.1 / PSI_EPSILON);
    close(psi([100, 0], [90, 10]), Math.round(expected * 10_000) / 10_000);
    assert.ok(Number.isFinite(psi([100, 0], [0, 100])));
  });

  test('histograms of different bins, or empty ones, are refused', () => {
    assert.throws(() => psi([1, 2], [1, 2, 3]), RangeError);
    assert.throws(() => psi([], []), RangeError);
    assert.throws(() => psi([0, 0], [1, 1]), RangeError);
    assert.throws(() => psi([1, 1], [0, 0]), RangeError);
  });

  test('reads as usual: under 0.1 none, 0.1 to 0.25 moderate, over 0.25 significant', () => {
    assert.deepEqual([0, 0.099, 0.1, 0.25, 0.2501].map(psiLevel), [
      'none',
      'none',
      'moderate',
      'moderate',
      'significant',
    ]);
  });
});

describe('profile bins', () => {
  test('a value at an edge falls in the bin above it; both ends are open', () => {
    const edges = [1, 2, 3];
    assert.deepEqual(
      [-5, 0.99, 1, 1.5, 2, 3, 1e9].map((v) => binOf(v, edges)),
      [0, 0, 1, 1, 2, 3, 3],
    );
  });

  test('every ink feature has increasing edges, and one more bin than edges', () => {
    for (const feature of INK_FEATURES) {
      const edges = INK_BINS[feature];
      assert.ok(
        edges.every((e, i) => i === 0 || e > edges[i - 1]!),
        feature,
      );
      assert.equal(binCount(feature), edges.length + 1);
    }
    assert.equal(binCount('classMix'), MNIST_CLASSES);
    assert.equal(binCount('confidence'), 10);
  });
});

describe('inkStats', () => {
  test('a solid 4×10 bar: share, box, thickness 2·area/perimeter, full intensity, centred mass', () => {
    const stats = inkStats(bar(12, 9, 4, 10));
    assert.equal(stats.inkShare, 40 / MNIST_PIXELS);
    assert.equal(stats.width, 4);
    assert.equal(stats.height, 10);
    close(stats.thickness, Math.round(((2 * 40) / (2 * 4 + 2 * 10)) * 10_000) / 10_000);
    assert.equal(stats.inkIntensity, 1);
    assert.equal(stats.centreOffset, 0);
  });

  test('pixels at or below half white are not ink; mass still counts them', () => {
    const stats = inkStats(image([[0, 0]], 127));
    assert.deepEqual(stats, { inkShare: 0, width: 0, height: 0, centreOffset: 0, thickness: 0, inkIntensity: 0 });
  });

  test('the frame edge is perimeter: a full frame is thickness 2·784/112', () => {
    close(inkStats(new Uint8Array(MNIST_PIXELS).fill(255)).thickness, 14);
  });

  test('an empty frame is all zeros (each feature’s first bin)', () => {
    const stats = inkStats(new Uint8Array(MNIST_PIXELS));
    assert.deepEqual(stats, { inkShare: 0, width: 0, height: 0, centreOffset: 0, thickness: 0, inkIntensity: 0 });
  });

  test('an input that is not 784 bytes is refused', () => {
    assert.throws(() => inkStats(new Uint8Array(783)), /784 bytes; got 783/);
    assert.throws(() => inkStats(new Uint8Array(0)), /784 bytes; got 0/);
  });
});

describe('profileOf and parseProfile', () => {
  const sample = (digit: number, confidence: number): ProfileSample => ({
    input: bar(12, 4, 3, 20),
    digit,
    confidence,
  });

  test('counts each sample once per feature', () => {
    const profile = profileOf([sample(1, 0.95), sample(7, 1), sample(1, 0.05)]);
    assert.equal(profile.count, 3);
    assert.deepEqual(profile.features.classMix, [0, 2, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert.deepEqual(profile.features.confidence, [1, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    for (const feature of FEATURES) {
      assert.equal(
        profile.features[feature].reduce((a, b) => a + b, 0),
        3,
        feature,
      );
    }
  });

  test('no samples is a profile of nothing: count 0, every bin empty', () => {
    const profile = profileOf([]);
    assert.equal(profile.count, 0);
    for (const feature of FEATURES) assert.deepEqual(profile.features[feature], new Array(binCount(feature)).fill(0));
  });

  test('a bad digit, confidence or input length is refused', () => {
    assert.throws(() => profileOf([sample(10, 0.5)]), RangeError);
    assert.throws(() => profileOf([sample(-1, 0.5)]), RangeError);
    assert.throws(() => profileOf([sample(1, 1.5)]), RangeError);
    assert.throws(() => profileOf([sample(1, Number.NaN)]), RangeError);
    assert.throws(() => profileOf([{ input: new Uint8Array(10), digit: 1, confidence: 0.5 }]), RangeError);
  });

  test('round-trips through JSON', () => {
    const profile = profileOf([sample(3, 0.7), sample(4, 0.8)]);
    assert.deepEqual(parseProfile(Buffer.from(JSON.stringify(profile))), profile);
  });

  test('a damaged profile.json is a problem, never a profile', () => {
    const good = profileOf([sample(3, 0.7), sample(4, 0.8)]);
    const damaged: [string, unknown][] = [
      ['an array', []],
      ['no features', { ...good, features: undefined }],
      ['another schema', { ...good, schema: PROFILE_SCHEMA + 1 }],
      ['no count', { ...good, count: -1 }],
      ['a fractional count', { ...good, count: 1.5 }],
      ['a feature missing', { ...good, features: { ...good.features, thickness: undefined } }],
      ['a bin too few', { ...good, features: { ...good.features, width: good.features.width.slice(1) } }],
      ['a bin too many', { ...good, features: { ...good.features, classMix: [...good.features.classMix, 0] } }],
      ['a negative count', { ...good, features: { ...good.features, confidence: [-1, 3, 0, 0, 0, 0, 0, 0, 0, 0] } }],
      ['counts that do not sum', { ...good, count: 3 }],
    ];
    for (const [what, value] of damaged) {
      assert.ok('problem' in parseProfile(Buffer.from(JSON.stringify(value))), what);
    }
    assert.deepEqual(parseProfile(Buffer.from('{"schema":')), { problem: 'is not valid JSON' });
    assert.deepEqual(parseProfile(Buffer.from([0xff, 0xfe])), { problem: 'is not valid JSON' });
  });
});

describe('driftOf', () => {
  const samples = (n: number): ProfileSample[] =>
    Array.from({ length: n }, (_, i) => ({ input: bar(10 + (i % 5), 4, 3, 20), digit: i % 10, confidence: 0.9 }));
  const reference = profileOf(samples(1000));

  test('the same population is level none, score ≈ 0, no alarm', () => {
    const drift = driftOf(reference, samples(500), SINCE, OPTIONS);
    assert.equal(drift.level, 'none');
    assert.ok(drift.score! < 0.01, String(drift.score));
    assert.equal(drift.alarm, false);
    assert.deepEqual(Object.keys(drift.features!), [...FEATURES]);
    assert.equal(drift.samples, 500);
    assert.equal(drift.since, SINCE.toISOString());
  });

  test('fewer than minSamples is not enough data: nothing scored', () => {
    assert.deepEqual(driftOf(reference, samples(199), SINCE, OPTIONS), {
      level: 'not enough data',
      score: null,
      features: null,
      samples: 199,
      since: SINCE.toISOString(),
      threshold: 0.25,
      alarm: false,
    });
    assert.equal(driftOf(reference, [], SINCE, OPTIONS).level, 'not enough data');
  });

  test('a missing, damaged or empty reference is no reference profile, with why', () => {
    const missing = driftOf({ problem: 'none stored' }, samples(500), SINCE, OPTIONS);
    assert.equal(missing.level, 'no reference profile');
    assert.equal(missing.reference, 'none stored');
    assert.equal(missing.score, null);
    const empty = driftOf(profileOf([]), samples(500), SINCE, OPTIONS);
    assert.equal(empty.level, 'no reference profile');
    assert.equal(empty.reference, 'the profile holds no inputs');
  });

  test('the alarm threshold is the caller’s: the same drift alarms at 0.05, not at 10', () => {
    // Half the answers now at 0.55 confidence: PSI (0.5 − ε)·ln(0.5/ε) + (0.5 − 1)·ln(0.5) ≈ 4.6.
    const shifted = samples(500).map((s, i) => (i % 2 === 0 ? { ...s, confidence: 0.55 } : s));
    const low = driftOf(reference, shifted, SINCE, { ...OPTIONS, threshold: 0.05 });
    close(low.features!.confidence, 4.6043);
    assert.equal(low.alarm, true);
    assert.equal(driftOf(reference, shifted, SINCE, { ...OPTIONS, threshold: 10 }).alarm, false);
  });

  test('driftScore gives score and features when measured, nothing otherwise', () => {
    const measured = driftOf(reference, samples(500), SINCE, OPTIONS);
    assert.deepEqual(driftScore(measured), { score: measured.score, features: measured.features });
    assert.equal(driftScore(driftOf(reference, samples(3), SINCE, OPTIONS)), undefined);
    assert.equal(driftScore(undefined), undefined);
  });
});

/** MNIST digits, as the model saw them, and ways real inputs can differ from them. */
const digitAt = (split: LabelledImages, i: number) => split.images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS);

/** Rotated by `degrees` about the frame's centre, bilinear, 0 outside. */
function rotate(input: Uint8Array, degrees: number): Uint8Array {
  const out = new Uint8Array(MNIST_PIXELS);
  const [cos, sin] = [Math.cos((degrees * Math.PI) / 180), Math.sin((degrees * Math.PI) / 180)];
  const c = (MNIST_SIDE - 1) / 2;
  const at = (x: number, y: number) =>
    x < 0 || y < 0 || x >= MNIST_SIDE || y >= MNIST_SIDE ? 0 : input[y * MNIST_SIDE + x]!;
  for (let y = 0; y < MNIST_SIDE; y++) {
    for (let x = 0; x < MNIST_SIDE; x++) {
      const sx = cos * (x - c) + sin * (y - c) + c;
      const sy = -sin * (x - c) + cos * (y - c) + c;
      const [x0, y0] = [Math.floor(sx), Math.floor(sy)];
      const [fx, fy] = [sx - x0, sy - y0];
      out[y * MNIST_SIDE + x] = Math.round(
        at(x0, y0) * (1 - fx) * (1 - fy) +
          at(x0 + 1, y0) * fx * (1 - fy) +
          at(x0, y0 + 1) * (1 - fx) * fy +
          at(x0 + 1, y0 + 1) * fx * fy,
      );
    }
  }
  return out;
}

/** A thicker pen: each pixel takes the brightest of its 3×3 neighbourhood (one dilation). */
function dilate(input: Uint8Array): Uint8Array {
  const out = new Uint8Array(MNIST_PIXELS);
  for (let y = 0; y < MNIST_SIDE; y++) {
    for (let x = 0; x < MNIST_SIDE; x++) {
      let max = 0;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const [xx, yy] = [x + dx, y + dy];
          if (xx >= 0 && yy >= 0 && xx < MNIST_SIDE && yy < MNIST_SIDE)
            max = Math.max(max, input[yy * MNIST_SIDE + xx]!);
        }
      }
      out[y * MNIST_SIDE + x] = max;
    }
  }
  return out;
}

/** Dark ink on white paper sent as is: the background becomes the ink. */
const invert = (input: Uint8Array) => input.map((v) => 255 - v);

describe('drift on MNIST (a quickly trained MLP answers)', () => {
  /** Enough for about 90% on the test set in a few seconds: the answers need to be a model's, not a good one's. */
  const TRAIN = 6000;
  /** The reference: the 8,000 test digits whose index is not a multiple of five. */
  let reference: Profile;
  let everyFifth: Uint8Array[];
  let answer: (inputs: Uint8Array[]) => ProfileSample[];
  let mnist: Awaited<ReturnType<typeof testMnist>>;

  /** The drift of `inputs`, with its scores reported as the test's diagnostic. */
  const drift = (t: TestContext, inputs: Uint8Array[]) => {
    const result = driftOf(reference, answer(inputs), SINCE, OPTIONS);
    const round = (v: number) => Math.round(v * 1000) / 1000;
    const features = Object.entries(result.features!).map(([f, v]) => `${f} ${round(v)}`);
    t.diagnostic(`score ${round(result.score!)}: ${features.join(', ')}`);
    return result;
  };
  const slice = (split: LabelledImages, from: number, to: number) =>
    Array.from({ length: to - from }, (_, i) => digitAt(split, from + i));

  before(async () => {
    await initBackend();
    mnist = await testMnist();
    const model = createModel({ arch: 'mlp', seed: 7 });
    const train = {
      images: mnist.train.images.subarray(0, TRAIN * MNIST_PIXELS),
      labels: mnist.train.labels.subarray(0, TRAIN),
      count: TRAIN,
    };
    await trainModel(model, train, { epochs: 2, batchSize: 64, validationSplit: 0 });
    answer = (inputs) => {
      const flat = new Float32Array(inputs.length * MNIST_PIXELS);
      inputs.forEach((input, i) => {
        for (let p = 0; p < MNIST_PIXELS; p++) flat[i * MNIST_PIXELS + p] = input[p]! / 255;
      });
      const probabilities = tf.tidy(() =>
        (model.predict(tf.tensor4d(flat, [inputs.length, MNIST_SIDE, MNIST_SIDE, 1])) as tf.Tensor).dataSync(),
      );
      return inputs.map((input, i) => {
        const digit = argmax(probabilities, i * MNIST_CLASSES);
        return { input, digit, confidence: probabilities[i * MNIST_CLASSES + digit]! };
      });
    };
    const all = slice(mnist.test, 0, mnist.test.count);
    everyFifth = all.filter((_, i) => i % 5 === 0);
    reference = profileOf(answer(all.filter((_, i) => i % 5 !== 0)));
  });

  test('every fifth test digit (2,000) against the other four fifths: no change, every feature below 0.1', (t) => {
    const result = drift(t, everyFifth);
    assert.equal(result.level, 'none');
    assert.equal(result.alarm, false);
    for (const feature of FEATURES) assert.ok(result.features![feature] < 0.1, feature);
  });

  test('the first 2,000 training digits stay under the threshold', (t) => {
    const result = drift(t, slice(mnist.train, 0, 2000));
    assert.equal(result.alarm, false);
  });

  for (const [name, transform, moved] of [
    ['rotated 40°', (d: Uint8Array, i: number) => rotate(d, i % 2 === 0 ? 40 : -40), 'height'],
    ['thick-stroked (dilated once)', (d: Uint8Array) => dilate(d), 'thickness'],
    ['inverted (255 − v)', (d: Uint8Array) => invert(d), 'inkShare'],
  ] as const) {
    test(`${name} digits go over the threshold, ${moved} among the features that moved`, (t) => {
      const result = drift(
        t,
        everyFifth.map((d, i) => transform(d, i)),
      );
      assert.equal(result.alarm, true);
      assert.equal(result.level, 'significant');
      assert.ok(result.features![moved] > DRIFT_DEFAULTS.threshold, moved);
    });
  }
});
