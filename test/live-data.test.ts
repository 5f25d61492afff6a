import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { newPredictionId } from '#lib/live/records';
import { MNIST_PIXELS } from '#lib/mnist-shape';
import {
  feedbackBudget,
  HOLDOUT_PERCENT,
  inHoldout,
  newest,
  splitLiveData,
  type LabelledInput,
} from '#lib/training/live-data';

/** A prediction id made i seconds after a fixed moment, with random bits derived from i. */
const idFor = (i: number) =>
  newPredictionId(
    new Date(Date.UTC(2026, 11, 1) + i * 1000),
    createHash('sha256').update(`id${i}`).digest().subarray(0, 12),
  );

/** A 28×28 input whose first two bytes carry `marker`, so a test can tell which capture an image came from. */
function inputFor(marker: number): string {
  const bytes = new Uint8Array(MNIST_PIXELS);
  bytes[0] = marker & 0xff;
  bytes[1] = marker >> 8;
  return Buffer.from(bytes).toString('base64');
}

const labelled = (i: number, label = i % 10, marker = i): LabelledInput => ({
  capture: { predictionId: idFor(i), input: inputFor(marker) },
  label,
});

const markers = (images: Uint8Array) =>
  Array.from(
    { length: images.length / MNIST_PIXELS },
    (_, i) => images[i * MNIST_PIXELS]! | (images[i * MNIST_PIXELS + 1]! << 8),
  );

describe('live holdout split', () => {
  test('is decided by the prediction id alone: the same id falls on the same side every time', () => {
    const ids = Array.from({ length: 200 }, (_, i) => idFor(i));
    assert.deepEqual(
      ids.map((id) => inHoldout(id)),
      ids.map((id) => inHoldout(id)),
    );
    const once = splitLiveData(ids.map((_, i) => labelled(i)));
    const reordered = splitLiveData(ids.map((_, i) => labelled(i)).reverse());
    assert.deepEqual(reordered, once, 'the order captures are read in changes nothing');
  });

  test(`puts about ${HOLDOUT_PERCENT}% of 1,000 ids in the holdout, and no id on both sides`, () => {
    const all = Array.from({ length: 1000 }, (_, i) => labelled(i));
    const split = splitLiveData(all);
    assert.equal(split.train.count + split.holdout.count, 1000);
    // Binomial(1000, 0.2) has a standard deviation of 12.6; 4 of them either side.
    assert.ok(split.holdout.count >= 150 && split.holdout.count <= 250, `holdout ${split.holdout.count}`);
    const train = new Set(markers(split.train.images));
    const holdout = markers(split.holdout.images);
    assert.equal(train.size + new Set(holdout).size, 1000, 'every capture used once');
    assert.ok(!holdout.some((m) => train.has(m)), 'no capture in both');
    assert.ok(
      holdout.every((m) => inHoldout(idFor(m))),
      'the holdout is exactly the ids inHoldout names',
    );
  });

  test('keeps one example per prediction id, the last given', () => {
    const split = splitLiveData([labelled(1, 3, 100), labelled(2), labelled(1, 7, 101), labelled(2)]);
    assert.equal(split.train.count + split.holdout.count, 2);
    const side = inHoldout(idFor(1)) ? split.holdout : split.train;
    const at = markers(side.images).indexOf(101);
    assert.ok(at >= 0, 'the later record of id 1 is kept');
    assert.equal(side.labels[at], 7);
    assert.ok(!markers(split.train.images).includes(100) && !markers(split.holdout.images).includes(100));
  });

  test('orders each side oldest first, images and labels together', () => {
    const split = splitLiveData(Array.from({ length: 50 }, (_, i) => labelled(49 - i)));
    const train = markers(split.train.images);
    assert.deepEqual(
      train,
      [...train].sort((a, b) => a - b),
    );
    assert.deepEqual(
      Array.from(split.train.labels),
      train.map((m) => m % 10),
    );
  });

  test('skips a capture whose input is not 784 bytes', () => {
    const short = { capture: { predictionId: idFor(5), input: Buffer.alloc(100).toString('base64') }, label: 1 };
    const split = splitLiveData([short, labelled(6)]);
    assert.equal(split.skipped, 1);
    assert.equal(split.train.count + split.holdout.count, 1);
  });

  test('an empty input gives two empty sets', () => {
    const split = splitLiveData([]);
    assert.equal(split.train.count, 0);
    assert.equal(split.holdout.count, 0);
    assert.equal(split.train.images.length, 0);
  });
});

describe('feedback budget', () => {
  test('caps the repetitions at the share of the final training set', () => {
    // 66 × 3 = 198 of 1,800 + 198 = 9.9%; 67 × 3 would be 10.04%.
    assert.equal(feedbackBudget(1800, 3, 0.1), 66);
    assert.equal(feedbackBudget(54_000, 3, 0.1), 2000);
    assert.equal(feedbackBudget(2000, 1, 0.2), 500, 'an exact quotient is not lost to rounding');
    assert.equal(feedbackBudget(10, 10, 0.1), 0);
  });

  test('newest takes the last n, or all there are', () => {
    const data = splitLiveData(Array.from({ length: 30 }, (_, i) => labelled(i))).train;
    const last = newest(data, 3);
    assert.equal(last.count, 3);
    assert.deepEqual(markers(last.images), markers(data.images).slice(-3));
    assert.deepEqual(Array.from(last.labels), Array.from(data.labels).slice(-3));
    assert.equal(newest(data, 10_000).count, data.count);
    assert.equal(newest(data, 0).count, 0);
  });
});
