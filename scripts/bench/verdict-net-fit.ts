/**
 * Fits the verdict's learned score (functions/lib/verdict-net.ts) with tfjs
 * and writes it as the generated module the Lambda bundle carries
 * (functions/lib/verdict-weights.ts). Part of `npm run bench -- verdict --fit`.
 *
 * Digits and non-digits weigh a set share of the loss each, whatever their
 * numbers. The threshold comes from digits the fit never saw (every
 * CALIBRATION_EVERY-th of each form): set on the fitted ones it would sit
 * where an overfitted net puts them, and flag more of the digits to come.
 * Everything is seeded, the order of each epoch too: tfjs's own shuffle
 * draws from Math.random, and two fits that differed only in it flagged
 * 97.1% and 90.9% of the same non-digits.
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as tfl from '@tensorflow/tfjs-layers';
import { tf } from '#lib/backend';
import { range, seededRandom, shuffled } from '#lib/training/batches';
import { MNIST_PIXELS } from '#lib/mnist-shape';
import { decodeNet, encodeNet, netLogit, type VerdictNet } from '#lib/verdict-net';

/** One fitting example: what the model saw, the verdict's features, and whether it is a non-digit. */
export interface NetExample {
  input: Float32Array;
  features: number[];
  nonDigit: boolean;
  form: string;
}

export interface NetOptions {
  hidden: number;
  epochs: number;
  /**
   * The share of the loss the non-digits weigh, whatever their number: under
   * half, since what matters is the digits' tail, which the threshold cuts.
   */
  nonDigitShare: number;
  /**
   * The share of each form of held-back digit the threshold may flag: under
   * a third of the 1% a form may lose, since several marks and `undecided`
   * flag some of the same forms' digits before this score is read.
   */
  digitFlagShare: number;
  seed: number;
}

export const NET_DEFAULTS: NetOptions = { hidden: 32, epochs: 80, nonDigitShare: 0.15, digitFlagShare: 0.003, seed: 7 };

/**
 * Every this-many-th digit of each form calibrates the threshold instead of
 * being fitted on: with 1,000 held back per form the threshold's share is a
 * few digits' tail, not the single highest of a few hundred.
 */
export const CALIBRATION_EVERY = 3;
const L2 = 1e-4;

const WEIGHTS_FILE = fileURLToPath(new URL('../../functions/lib/verdict-weights.ts', import.meta.url));

function rows(examples: NetExample[], mean: Float32Array, scale: Float32Array): Float32Array {
  const width = MNIST_PIXELS + mean.length;
  const x = new Float32Array(examples.length * width);
  examples.forEach((e, n) => {
    x.set(e.input, n * width);
    e.features.forEach((v, f) => (x[n * width + MNIST_PIXELS + f] = (v - mean[f]!) / scale[f]!));
  });
  return x;
}

export async function fitNet(examples: NetExample[], options: Partial<NetOptions> = {}): Promise<VerdictNet> {
  const { hidden, epochs, nonDigitShare, digitFlagShare, seed } = { ...NET_DEFAULTS, ...options };
  const seenOfForm = new Map<string, number>();
  const calibration: NetExample[] = [];
  const fitted: NetExample[] = [];
  for (const e of examples) {
    if (e.nonDigit) {
      fitted.push(e);
      continue;
    }
    const k = seenOfForm.get(e.form) ?? 0;
    seenOfForm.set(e.form, k + 1);
    (k % CALIBRATION_EVERY === CALIBRATION_EVERY - 1 ? calibration : fitted).push(e);
  }
  const featureCount = examples[0]!.features.length;
  const featureMean = new Float32Array(featureCount);
  const featureScale = new Float32Array(featureCount);
  for (let f = 0; f < featureCount; f++) {
    const values = fitted.map((e) => e.features[f]!);
    featureMean[f] = values.reduce((s, v) => s + v, 0) / values.length;
    featureScale[f] = Math.sqrt(values.reduce((s, v) => s + (v - featureMean[f]!) ** 2, 0) / values.length) || 1;
  }
  const width = MNIST_PIXELS + featureCount;
  const nonDigits = fitted.filter((e) => e.nonDigit).length;
  const digits = fitted.length - nonDigits;
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({
        units: hidden,
        activation: 'relu',
        inputShape: [width],
        kernelInitializer: tfl.initializers.glorotUniform({ seed }),
        kernelRegularizer: tfl.regularizers.l2({ l2: L2 }),
      }),
      tfl.layers.dense({ units: 1, kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) }),
    ],
  });
  const digitWeight = (fitted.length * (1 - nonDigitShare)) / digits;
  const nonDigitWeight = (fitted.length * nonDigitShare) / nonDigits;
  model.compile({
    optimizer: tf.train.adam(1e-3),
    loss: (yTrue: tf.Tensor, logits: tf.Tensor) =>
      tf.tidy(() => {
        const weight = tf.add(tf.mul(yTrue, nonDigitWeight - digitWeight), digitWeight);
        return tf.losses.sigmoidCrossEntropy(yTrue, logits, weight);
      }),
  });
  const x = tf.tensor2d(rows(fitted, featureMean, featureScale), [fitted.length, width]);
  const y = tf.tensor2d(
    fitted.map((e) => (e.nonDigit ? 1 : 0)),
    [fitted.length, 1],
  );
  const random = seededRandom(seed);
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = tf.tensor1d(shuffled(range(0, fitted.length), random), 'int32');
    const [xEpoch, yEpoch] = [tf.gather(x, order), tf.gather(y, order)];
    await model.fit(xEpoch, yEpoch, { epochs: 1, batchSize: 64, shuffle: false, verbose: 0 });
    tf.dispose([order, xEpoch, yEpoch]);
  }
  tf.dispose([x, y]);
  const [kernel1, bias1, kernel2, bias2] = model.getWeights().map((w) => w.dataSync() as Float32Array);
  model.dispose();
  // tfjs keeps the kernel inputs × units; the score reads it unit by unit.
  const w1 = new Float32Array(hidden * width);
  for (let i = 0; i < width; i++) for (let h = 0; h < hidden; h++) w1[h * width + i] = kernel1![i * hidden + h]!;
  // Calibrated as the bundle will carry it: its large layer rounded to float16.
  const net = decodeNet(
    encodeNet({
      features: featureCount,
      hidden,
      featureMean,
      featureScale,
      w1,
      b1: bias1!,
      w2: kernel2!,
      b2: bias2![0]!,
      threshold: 0,
    }),
  );
  net.threshold = calibrate(net, calibration, digitFlagShare);
  return net;
}

/** The lowest threshold that flags at most `share` of each form of `digits`. */
function calibrate(net: VerdictNet, digits: NetExample[], share: number): number {
  const byForm = new Map<string, number[]>();
  for (const e of digits) byForm.set(e.form, [...(byForm.get(e.form) ?? []), netLogit(net, e.input, e.features)]);
  return Math.max(
    ...[...byForm.values()].map((logits) => logits.sort((a, b) => b - a)[Math.floor(logits.length * share)]!),
  );
}

/** Writes the net as functions/lib/verdict-weights.ts. */
export async function writeNet(net: VerdictNet, command: string): Promise<void> {
  const text = [
    '/**',
    ` * Generated by \`${command}\` (scripts/bench/verdict-net-fit.ts): do not edit.`,
    " * The verdict's learned score (verdict-net.ts) as base64 (float32, and float16 for the large layer),",
    ' * so the bundle carries it as code.',
    ' */',
    `export const VERDICT_NET =\n  '${encodeNet(net)}';`,
    '',
  ].join('\n');
  await writeFile(WEIGHTS_FILE, text);
}
