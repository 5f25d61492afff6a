import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type * as tfl from '@tensorflow/tfjs-layers';
import { classify } from '#lib/classify';
import { MNIST_PIXELS } from '#lib/mnist-shape';
import { seededRandom } from '#lib/training/batches';
import type { Mnist } from '#lib/training/mnist';
import { digitVerdict, NO_INK, type NonDigitFamily, VERDICT_REASONS, VERDICT_WEIGHTS } from '#lib/verdict';
import { decodeNet, encodeNet } from '#lib/verdict-net';
import { NON_DIGIT_KINDS, type NonDigitKind } from '../scripts/bench/non-digits.ts';
import { EVAL_SEEDS, flagShares, judgedDigits, judgedNonDigits } from '../scripts/bench/verdict.ts';
import { fitNet, type NetExample } from '../scripts/bench/verdict-net-fit.ts';
import { testMnist } from './support/env.ts';
import { cachedModel } from './support/test-model.ts';

let model: tfl.LayersModel;
let mnist: Mnist;
before(async () => {
  mnist = await testMnist();
  ({ model } = await cachedModel(testMnist));
});

/** The first test digit (a 7) as the model sees it. */
const cleanDigit = () => Float32Array.from(mnist.test.images.subarray(0, MNIST_PIXELS), (v) => v / 255);
const probabilitiesOf = (input: Float32Array) => classify(model, [input])[0]!.probabilities;

describe('digitVerdict on single inputs', () => {
  test('names the four reasons in a stable order', () => {
    assert.deepEqual(VERDICT_REASONS, ['no_ink', 'several_marks', 'not_handwriting', 'undecided']);
  });

  test('an input without ink is no_ink, with the message the app gives when preprocessing finds none', () => {
    for (const input of [new Float32Array(MNIST_PIXELS), new Float32Array(MNIST_PIXELS).fill(0.04)]) {
      assert.deepEqual(digitVerdict({ input, probabilities: probabilitiesOf(input), marks: 1 }), NO_INK);
    }
    assert.deepEqual(NO_INK, {
      isDigit: false,
      reason: 'no_ink',
      message: 'the image has no ink that stands out from its background',
    });
  });

  test('a clean MNIST digit is a digit', () => {
    const input = cleanDigit();
    assert.deepEqual(digitVerdict({ input, probabilities: probabilitiesOf(input), marks: 1 }), { isDigit: true });
  });

  test('uniform noise over the frame is not_handwriting', () => {
    const random = seededRandom(16);
    const input = Float32Array.from({ length: MNIST_PIXELS }, () => random());
    assert.deepEqual(digitVerdict({ input, probabilities: probabilitiesOf(input), marks: 1 }), {
      isDigit: false,
      reason: 'not_handwriting',
      message: 'the ink does not look like one handwritten digit (noise, a photo, a filled shape or a scribble?)',
    });
  });

  test('a clean digit the model splits 50/50 between 3 and 5 is undecided, naming both', () => {
    const probabilities = [0, 0, 0, 0.5, 0, 0.5, 0, 0, 0, 0];
    assert.deepEqual(digitVerdict({ input: cleanDigit(), probabilities, marks: 1 }), {
      isDigit: false,
      reason: 'undecided',
      message: 'the model cannot decide between 3 and 5',
    });
  });

  test('how sure the model is matters only for undecided: one-hot or label-smoothed, the verdict is the same', () => {
    const random = seededRandom(16);
    const noise = Float32Array.from({ length: MNIST_PIXELS }, () => random());
    // A label-smoothed CNN is never above 0.91 sure; the MLP often is 1.
    const naming = (digit: number, sure: number) =>
      Array.from({ length: 10 }, (_, c) => (c === digit ? sure : (1 - sure) / 9));
    for (const input of [cleanDigit(), noise]) {
      for (const digit of [3, 7]) {
        assert.deepEqual(
          digitVerdict({ input, probabilities: naming(digit, 0.91), marks: 1 }),
          digitVerdict({ input, probabilities: naming(digit, 1), marks: 1 }),
        );
      }
    }
    assert.deepEqual(digitVerdict({ input: cleanDigit(), probabilities: naming(7, 0.91), marks: 1 }), {
      isDigit: true,
    });
  });

  test('two or more marks are several_marks, suggesting number mode', () => {
    const input = cleanDigit();
    assert.deepEqual(digitVerdict({ input, probabilities: probabilitiesOf(input), marks: 2 }), {
      isDigit: false,
      reason: 'several_marks',
      message:
        'the image holds 2 separate marks, not one digit; to read them as a number, send it with "mode": "number"',
    });
  });
});

describe('the learned score as the bundle carries it', () => {
  test('decoding its encoding gives the same net, its large layer rounded to float16', () => {
    const net = VERDICT_WEIGHTS.net;
    const again = decodeNet(encodeNet(net));
    const { w1, ...small } = again;
    const { w1: original, ...smallOriginal } = net;
    assert.deepEqual(small, smallOriginal);
    assert.deepEqual(w1, original);
    const bumped = Float32Array.from(original, (w) => w * (1 + 2 ** -13));
    const rounded = decodeNet(encodeNet({ ...net, w1: bumped })).w1;
    assert.ok(rounded.every((w, i) => Math.abs(w - bumped[i]!) <= Math.abs(bumped[i]!) * 2 ** -11 + 2 ** -25));
  });
});

describe("the learned score's fit", () => {
  test('is repeatable: the same examples and seed write the same net, another seed another', async () => {
    const random = seededRandom(3);
    const examples: NetExample[] = Array.from({ length: 240 }, (_, n) => ({
      input: Float32Array.from({ length: MNIST_PIXELS }, () => random()),
      features: [random(), random() + (n % 2)],
      nonDigit: n % 2 === 1,
      form: n % 4 < 2 ? 'canvas' : 'pixels',
    }));
    const fit = async (seed: number) => encodeNet(await fitNet(examples, { hidden: 4, epochs: 3, seed }));
    const first = await fit(7);
    assert.equal(await fit(7), first);
    assert.notEqual(await fit(8), first);
  });
});

describe('digitVerdict on uploads through the real preprocessing and the test model', () => {
  // Fresh seeds and MNIST test digits: the constants were fitted on another seed range and on training digits.
  let nonDigits: ReturnType<typeof flagShares>;
  let digits: ReturnType<typeof flagShares>;
  before(async () => {
    nonDigits = flagShares(await judgedNonDigits(model, mnist.test, EVAL_SEEDS, 15));
    digits = flagShares(await judgedDigits(model, mnist.test, 400, 150));
  });
  const share = (rows: ReturnType<typeof flagShares>) =>
    rows.reduce((s, r) => s + r.flagged, 0) / rows.reduce((s, r) => s + r.count, 0);
  const ofFamilies = (...families: (NonDigitFamily | undefined)[]) =>
    nonDigits.filter((r) => families.includes(NON_DIGIT_KINDS[r.kind as NonDigitKind].family));

  // The bench holds each form to 1% on 1,000 digits; 150 allow one flag at that rate, so each form is held to 2% here.
  test('flags at most 1% of real digits, and 2% of each form: raw pixels, 28×28 PNGs, canvas drawings, paper photos', (t) => {
    for (const row of digits) {
      t.diagnostic(`real digits flagged, ${row.form}: ${row.flagged} of ${row.count}`);
      assert.ok(row.share <= 0.02, JSON.stringify(row));
    }
    assert.deepEqual(digits.map((row) => row.form).sort(), ['canvas', 'photo', 'pixels', 'png']);
    assert.ok(share(digits) <= 0.01, JSON.stringify(digits));
  });

  test('flags at least 90% of noise, speckle, photo-like textures and filled shapes', (t) => {
    t.diagnostic(`flagged: ${share(ofFamilies('noise', 'blob'))}`);
    assert.ok(share(ofFamilies('noise', 'blob')) >= 0.9, JSON.stringify(ofFamilies('noise', 'blob')));
  });

  // The bench holds counted non-digits to 90% on 2,700; here they are 405, whose share has a standard error of 1.5
  // points at that rate, so the sample is held to 90% less two of them: a drop to the 80s still fails.
  test('flags at least 90% of all counted non-digits (less sampling error), stray strokes (letters, scribbles, outlines, two digits) among them', (t) => {
    const counted = nonDigits.filter((r) => NON_DIGIT_KINDS[r.kind as NonDigitKind].counted);
    const n = counted.reduce((s, r) => s + r.count, 0);
    t.diagnostic(
      `counted non-digits flagged: ${share(counted)} of ${n}, stray strokes: ${share(ofFamilies('strokes'))}`,
    );
    assert.ok(share(counted) >= 0.9 - 2 * Math.sqrt((0.9 * 0.1) / n), JSON.stringify(counted));
  });
});
