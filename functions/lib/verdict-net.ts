/**
 * The verdict's learned score: one hidden layer over the 784 pixels the model
 * saw and the verdict's features. The hand-made features and their logistic
 * scores fence off noise and filled shapes, but letters, scribbles and
 * outlines are pen strokes as a digit is; what sets them apart is where the
 * strokes run, which the pixels carry and no short list of features does.
 *
 * Its weights travel as one base64 string (a generated module,
 * verdict-weights.ts), so the Lambda bundle carries them with no
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

/** Values before w1, kept as float32: the header, featureMean, featureScale, b1 and w2. */
const smallLength = (features: number, hidden: number) => HEADER + 2 * features + 2 * hidden;

/**
 * A net as bytes, base64: the small arrays as float32, then w1, nearly all of
 * it, as float16, which halves the bundle's cost for a rounding the score
 * does not feel (2⁻¹¹ of each weight).
 */
export function encodeNet(net: VerdictNet): string {
  const { features, hidden } = net;
  const small = new Float32Array(smallLength(features, hidden));
  small.set([features, hidden, net.b2, net.threshold]);
  let at = HEADER;
  for (const part of [net.featureMean, net.featureScale, net.b1, net.w2]) {
    small.set(part, at);
    at += part.length;
  }
  const w1 = Uint16Array.from(net.w1, toHalf);
  return Buffer.concat([Buffer.from(small.buffer), Buffer.from(w1.buffer)]).toString('base64');
}

export function decodeNet(base64: string): VerdictNet {
  const bytes = Buffer.from(base64, 'base64');
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const [features, hidden, b2, threshold] = new Float32Array(buffer, 0, HEADER) as unknown as number[] as [
    number,
    number,
    number,
    number,
  ];
  const length = smallLength(features, hidden);
  const expected = 4 * length + 2 * hidden * (MNIST_PIXELS + features);
  if (buffer.byteLength !== expected) {
    throw new RangeError(`verdict net: ${buffer.byteLength} bytes, expected ${expected}`);
  }
  const values = new Float32Array(buffer, 0, length);
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
    w1: fromHalves(new Uint16Array(buffer, 4 * length)),
  };
}

const word = new Float32Array(1);
const bits = new Uint32Array(word.buffer);

/** The nearest IEEE half (rounding half up), as its 16 bits. */
function toHalf(value: number): number {
  word[0] = value;
  const x = bits[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = ((x >>> 23) & 0xff) - 127 + 15;
  const mantissa = x & 0x7fffff;
  if (exponent >= 31) return sign | 0x7c00;
  if (exponent <= 0) {
    if (exponent < -10) return sign;
    return sign | ((((mantissa | 0x800000) >>> (1 - exponent)) + 0x1000) >>> 13);
  }
  // A carry out of the mantissa rounds up into the exponent, as it should.
  return (sign | (exponent << 10) | (mantissa >>> 13)) + ((mantissa >>> 12) & 1);
}

/**
 * Halves to floats by moving their bits, not by arithmetic: this runs once at
 * import, on a cold function, and a float per call of Math.pow cost the cold
 * start ~10 ms of its ~80 ms import.
 */
function fromHalves(halves: Uint16Array): Float32Array {
  const floats = new Float32Array(halves.length);
  const out = new Uint32Array(floats.buffer);
  for (let i = 0; i < halves.length; i++) {
    const half = halves[i]!;
    const sign = (half & 0x8000) << 16;
    const exponent = (half >>> 10) & 0x1f;
    const mantissa = half & 0x3ff;
    if (exponent === 31) out[i] = sign | 0x7f800000 | (mantissa << 13);
    else if (exponent > 0) out[i] = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    // Subnormal halves are normal floats: the float's own arithmetic places them.
    else floats[i] = (sign ? -mantissa : mantissa) * 2 ** -24;
  }
  return floats;
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
