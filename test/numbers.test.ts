import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { classify } from '#lib/classify';
import type { InferenceModel } from '#lib/inference-model';
import { MNIST_PIXELS } from '#lib/mnist-shape';
import { ModelStore } from '#lib/storage/store';
import type { MnistSplit } from '#lib/training/mnist';
import { type Kind, LENGTHS, readNumber, type Spacing, writeNumber } from '../scripts/bench/numbers.ts';
import { testBucket, testMnist } from './support/env.ts';
import { storeTrainedModel } from './support/service.ts';

/** Numbers per kind: each length of LENGTHS (2–8 digits) this many times over. */
const PER_LENGTH = 25;

let model: InferenceModel;
let split: MnistSplit;
/** Test digits the model reads right on their own (first 3,000), so a wrong number is number mode's doing. */
let known: number[];

before(async () => {
  split = (await testMnist()).test;
  const store = new ModelStore((await testBucket()).objects);
  ({ model } = await store.load(await storeTrainedModel(store)));
  known = [];
  for (let start = 0; start < 3000; start += 500) {
    const inputs = Array.from({ length: 500 }, (_, k) =>
      Float32Array.from(
        split.images.subarray((start + k) * MNIST_PIXELS, (start + k + 1) * MNIST_PIXELS),
        (v) => v / 255,
      ),
    );
    classify(model, inputs).forEach((p, k) => p.digit === split.labels[start + k] && known.push(start + k));
  }
});

async function score(kind: Kind, spacing: Spacing, pool?: number[]) {
  let [right, counted, all] = [0, 0, 0];
  for (const length of LENGTHS) {
    for (let i = 0; i < PER_LENGTH; i++) {
      const written = await writeNumber(split, length, spacing, kind, 7 + i + 1000 * length, pool);
      const read = await readNumber(model, written.image);
      all++;
      if (read === written.text) right++;
      if (/^[0-9]+$/.test(read) && read.length === length) counted++;
    }
  }
  return { sequence: right / all, count: counted / all, all };
}

describe('number mode reads written numbers of 2-8 MNIST test digits through the served model', () => {
  for (const kind of ['canvas', 'photo'] as const) {
    test(`${kind}: numbers with gaps made of digits the model knows are read whole at least 95% of the time`, async (t) => {
      const { sequence, count, all } = await score(kind, 'gaps', known);
      t.diagnostic(`${kind}, gaps, known digits: sequence ${sequence}, digit count ${count} over ${all}`);
      assert.ok(sequence >= 0.95, `sequence accuracy ${sequence}`);
      assert.ok(count >= 0.97, `digit-count accuracy ${count}`);
    });

    test(`${kind}: numbers with gaps of any test digits get the right digit count at least 97% of the time`, async (t) => {
      const { sequence, count, all } = await score(kind, 'gaps');
      t.diagnostic(`${kind}, gaps, any digits: sequence ${sequence}, digit count ${count} over ${all}`);
      assert.ok(count >= 0.97, `digit-count accuracy ${count}`);
    });
  }
});
