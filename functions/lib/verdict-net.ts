/**
 * The verdict's learned score: one hidden layer over the 784 pixels the model
 * saw and the verdict's features. The hand-made features and their logistic
 * scores fence off noise and filled shapes, but letters, scribbles and
 * outlines are pen strokes as a digit is; what sets them apart is where the
 * strokes run, which the pixels carry and no short list of features does.
 *
 * Its weights travel as one base64 string of float32 values (a generated
 * module, verdict-weights.ts), so the Lambda bundle carries them with no
 * loader and no tfjs: the score is two plain loops, decoded once at load.
 */
import { MNIST_PIXELS } from './mnist-shape.ts';

export interface VerdictNet {
  /** How many features follow the pixels in the input. */
  features: number;
  hidden: number;
  /** Each feature's centre and spread over the fitting set: the layer sees them scaled to unit spread. */
  featureMean: Float32Array;
  featureScale: Float32Array;
  /** hidden × (pixels + features), row by row. */
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: number;
  /** Above this logit the input is flagged. */
  threshold: number;
}

/** The header before the arrays: features, hidden, b2, threshold. */
const HEADER = 4;

/** A net as float32 values: the header, then featureMean, featureScale, b1, w2 and w1, in that order. */
export function encodeNet(net: VerdictNet): string {
  const { features, hidden } = net;
  const values = new Float32Array(HEADER + 2 * features + 2 * hidden + hidden * (MNIST_PIXELS + features));
  values.set([features, hidden, net.b2, net.threshold]);
  let at = HEADER;
  for (const part of [net.featureMean, net.featureScale, net.b1, net.w2, net.w1]) {
    values.set(part, at);
    at += part.length;
  }
  return Buffer.from(values.buffer).toString('base64');
}

export function decodeNet(base64: string): VerdictNet {
  const bytes = Buffer.from(base64, 'base64');
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const [features, hidden, b2, threshold] = values as unknown as [number, number, number, number];
  const expected = HEADER + 2 * features + 2 * hidden + hidden * (MNIST_PIXELS + features);
  if (values.length !== expected) throw new RangeError(`verdict net: ${values.length} values, expected ${expected}`);
  let at = HEADER;
  const take = (length: number) => {
    at += length;
    return values.subarray(at - length, at);
  };
  return {
    features,
    hidden,
    b2,
    threshold,
    featureMean: take(features),
    featureScale: take(features),
    b1: take(hidden),
    w2: take(hidden),
    w1: take(hidden * (MNIST_PIXELS + features)),
  };
}

/** The net's logit for one input (784 pixels) and its features. */
export function netLogit(net: VerdictNet, input: Float32Array, features: readonly number[]): number {
  const { features: count, hidden, w1, b1, w2 } = net;
  const width = MNIST_PIXELS + count;
  const scaled = new Float32Array(count);
  for (let f = 0; f < count; f++) scaled[f] = (features[f]! - net.featureMean[f]!) / net.featureScale[f]!;
  let logit = net.b2;
  for (let h = 0, row = 0; h < hidden; h++, row += width) {
    let sum = b1[h]!;
    for (let i = 0; i < MNIST_PIXELS; i++) sum += w1[row + i]! * input[i]!;
    for (let f = 0; f < count; f++) sum += w1[row + MNIST_PIXELS + f]! * scaled[f]!;
    if (sum > 0) logit += w2[h]! * sum;
  }
  return logit;
}
