/**
 * Whether what the model saw looks like one handwritten digit, and if not,
 * why: no ink, several separate marks, ink unlike handwriting (noise, photos,
 * filled shapes), or a model that cannot decide between two digits.
 *
 * A single confidence threshold cannot do this: the model is confidently
 * wrong on noise and unsure on some real digits. So the verdict is built from
 * what separated best when measured (`npm run bench -- verdict`): ink
 * statistics of the 28×28 input (how much ink, how grey, how thick, how many
 * pieces, holes, stroke ends and forks, how filled its box is) and how unlike
 * those of the digit the model named they and the coarse image are, weighed by one logistic
 * regression per family of non-digit, and, for the stray strokes those miss,
 * a small learned score on the pixels and the same features (verdict-net.ts).
 * All are fitted on MNIST training digits (raw, saved as 28×28 PNGs and
 * re-rendered as canvas drawings and paper photos) against synthetic
 * non-digits (scripts/bench/non-digits.ts). Of the model they read only
 * which digit it named, not how sure it is, so they hold for whichever model
 * serves; `undecided` alone asks the gap between its top two answers. The constants below are printed, and the
 * learned score's weights written, by `npm run bench -- verdict --fit`;
 * refit both together whenever the preprocessing or the features change.
 *
 * Pure and cheap: a few passes over 784 values (a skeleton among them),
 * three dot products and one small hidden layer, on every request.
 */
import { MNIST_CLASSES, MNIST_PIXELS, MNIST_SIDE } from './mnist-shape.ts';
import { decodeNet, netLogit, type VerdictNet } from './verdict-net.ts';
import { VERDICT_NET } from './verdict-weights.ts';

export const VERDICT_REASONS = ['no_ink', 'several_marks', 'not_handwriting', 'undecided'] as const;
export type VerdictReason = (typeof VERDICT_REASONS)[number];
export type Verdict = { isDigit: true } | { isDigit: false; reason: VerdictReason; message: string };

/** What the app answers when preprocessing found no ink (EmptyImageError): nothing was shown to the model. */
export const NO_INK: Verdict = {
  isDigit: false,
  reason: 'no_ink',
  message: 'the image has no ink that stands out from its background',
};

const IS_DIGIT: Verdict = { isDigit: true };

/** A pixel is ink from half of full white, the level MNIST's own 20 px box is measured at. */
const INK_LEVEL = 0.5;
/** Below this a pixel is background: MNIST's anti-aliasing fades out within it. */
const LIT_LEVEL = 0.1;

/** The input's own features, each defined where verdictFeatures computes it. */
export const INK_FEATURES = [
  'inkShare',
  'litShare',
  'greyShare',
  'thickness',
  'pieces',
  'largestPiece',
  'holes',
  'boxFill',
  'roughness',
  'spread',
  'aspect',
  'ends',
  'forks',
] as const;
/**
 * Every feature the scores read: the input's, and how unlike the digit the
 * model named its ink statistics and its coarse image are. The model's
 * confidence is not among them: it is shaped by the model's architecture and
 * training (a CNN trained with label smoothing is never above 0.91 sure), so
 * scores fitted on one model's confidence misjudged another's. Which digit it
 * names is what any good model agrees on, so one fit serves them all.
 */
export const VERDICT_FEATURES = [...INK_FEATURES, 'unlikeItsDigit', 'unlikeItsShape'] as const;
export type VerdictFeature = (typeof VERDICT_FEATURES)[number];

/**
 * Per digit class, over MNIST training digits grouped by their true label:
 * each ink feature's mean and spread (INK_FEATURES order), and each cell's of
 * the 7×7 coarse image.
 */
export type ClassProfiles = { mean: number[]; spread: number[]; coarseMean: number[]; coarseSpread: number[] }[];

/** The coarse image's cells are 4×4 blocks of the 28×28 input. */
const COARSE = 4;
const COARSE_SIDE = MNIST_SIDE / COARSE;

/** The input averaged over 4×4 blocks: where the ink is, without the detail a stroke's wobble changes. */
export function coarseImage(input: Float32Array): number[] {
  const cells = new Array<number>(COARSE_SIDE * COARSE_SIDE).fill(0);
  for (let y = 0, i = 0; y < MNIST_SIDE; y++) {
    for (let x = 0; x < MNIST_SIDE; x++, i++)
      cells[((y / COARSE) | 0) * COARSE_SIDE + ((x / COARSE) | 0)]! += input[i]!;
  }
  return cells.map((sum) => sum / (COARSE * COARSE));
}

/** Log of 1 + the mean squared distance, in spreads, of `values` from `mean`. */
function unlikeness(values: readonly number[], mean: readonly number[], spread: readonly number[]): number {
  let distance = 0;
  values.forEach((value, k) => (distance += ((value - mean[k]!) / spread[k]!) ** 2));
  return Math.log1p(distance / values.length);
}

/** The four neighbours whose background makes an ink pixel's side part of the perimeter. */
const SIDES = [-1, 1, -MNIST_SIDE, MNIST_SIDE] as const;

/**
 * The input's features, in INK_FEATURES order. Without ink at half level
 * every one but litShare, greyShare, roughness and spread is 0.
 */
export function inkFeatures(input: Float32Array): number[] {
  if (input.length !== MNIST_PIXELS) throw new RangeError(`an input is ${MNIST_PIXELS} values; got ${input.length}`);
  let ink = 0;
  let lit = 0;
  let grey = 0;
  let perimeter = 0;
  let mass = 0;
  let massX = 0;
  let massY = 0;
  let rough = 0;
  let [left, right, top, bottom] = [MNIST_SIDE, -1, MNIST_SIDE, -1];
  const mask = new Uint8Array(MNIST_PIXELS);
  for (let y = 0, i = 0; y < MNIST_SIDE; y++) {
    for (let x = 0; x < MNIST_SIDE; x++, i++) {
      const v = input[i]!;
      if (x + 1 < MNIST_SIDE) rough += Math.abs(v - input[i + 1]!);
      if (y + 1 < MNIST_SIDE) rough += Math.abs(v - input[i + MNIST_SIDE]!);
      if (v < LIT_LEVEL) continue;
      lit++;
      mass += v;
      massX += v * x;
      massY += v * y;
      if (v < 1 - LIT_LEVEL) grey++;
      if (v < INK_LEVEL) continue;
      mask[i] = 1;
      ink++;
      left = Math.min(left, x);
      right = Math.max(right, x);
      top = Math.min(top, y);
      bottom = Math.max(bottom, y);
      for (const side of SIDES) {
        const n = i + side;
        const outside = (side === -1 && x === 0) || (side === 1 && x === MNIST_SIDE - 1) || n < 0 || n >= MNIST_PIXELS;
        if (outside || input[n]! < INK_LEVEL) perimeter++;
      }
    }
  }
  let spread = 0;
  if (mass > 0) {
    const [cx, cy] = [massX / mass, massY / mass];
    for (let y = 0, i = 0; y < MNIST_SIDE; y++) {
      for (let x = 0; x < MNIST_SIDE; x++, i++) {
        const v = input[i]!;
        if (v >= LIT_LEVEL) spread += v * ((x - cx) ** 2 + (y - cy) ** 2);
      }
    }
    spread = Math.sqrt(spread / mass) / (MNIST_SIDE / 2);
  }
  const { count: pieces, largest } = inkPieces(mask);
  const { ends, forks } = skeletonJoints(mask);
  const [width, height] = [right - left + 1, bottom - top + 1];
  return [
    // Share of the 784 pixels that are ink.
    ink / MNIST_PIXELS,
    // Share of the frame lit at all: noise and textures light most of it, a digit a fifth.
    lit / MNIST_PIXELS,
    // Of the lit pixels, the share that is mid-grey rather than full ink or nearly: MNIST strokes are mostly saturated.
    lit === 0 ? 0 : grey / lit,
    // Stroke width: twice the ink area over its perimeter (a stroke w wide and L long: 2wL / 2L).
    perimeter === 0 ? 0 : (2 * ink) / perimeter,
    // Separate pieces of ink, as log(1 + n): a digit is one, sometimes two.
    Math.log1p(pieces),
    // The largest piece's share of the ink.
    ink === 0 ? 0 : largest / ink,
    // Enclosed background regions, as log(1 + n): a digit has at most two.
    Math.log1p(holes(mask)),
    // Ink share of its bounding box: a filled shape fills it, strokes do not.
    ink === 0 ? 0 : ink / (width * height),
    // Differences between neighbours over the total brightness: grain and speckle make it large.
    mass === 0 ? 0 : rough / mass,
    // How far the lit pixels spread from their centre of mass, in half frames.
    spread,
    // Width over height of the ink's box: MNIST scales the longest side to 20, so one of them is about 20.
    ink === 0 ? 0 : width / height,
    // Stroke ends and forks of the ink's skeleton, as log(1 + n): a digit has few of each, a scribble or an X more.
    Math.log1p(ends),
    Math.log1p(forks),
  ];
}

/**
 * Every feature of one input the model named `digit`, in VERDICT_FEATURES
 * order; `profiles` say how each digit's ink usually looks.
 */
export function verdictFeatures(
  input: Float32Array,
  digit: number,
  profiles: ClassProfiles = VERDICT_WEIGHTS.profiles,
): number[] {
  const ink = inkFeatures(input);
  const profile = profiles[digit]!;
  return [
    ...ink,
    // How far the ink's statistics and where it lies are from the usual ones of the digit the model named.
    unlikeness(ink, profile.mean, profile.spread),
    unlikeness(coarseImage(input), profile.coarseMean, profile.coarseSpread),
  ];
}

/** The skeleton is thinned in a frame one pixel wider on each side, so every pixel has eight neighbours. */
const PADDED = MNIST_SIDE + 2;
/** Offsets of the eight neighbours in the padded frame, clockwise from north, as Zhang and Suen number them P2…P9. */
const RING = [-PADDED, -PADDED + 1, 1, PADDED + 1, PADDED, PADDED - 1, -1, -PADDED - 1] as const;

/**
 * Stroke ends (one neighbour) and forks (three or more branches) of the
 * mask's skeleton, thinned by Zhang and Suen's method: on 28×28 a handful of
 * passes.
 */
function skeletonJoints(mask: Uint8Array): { ends: number; forks: number } {
  const skeleton = new Uint8Array(PADDED * PADDED);
  for (let y = 0; y < MNIST_SIDE; y++) {
    skeleton.set(mask.subarray(y * MNIST_SIDE, (y + 1) * MNIST_SIDE), (y + 1) * PADDED + 1);
  }
  const neighbours = (i: number) => {
    let count = 0;
    for (const offset of RING) count += skeleton[i + offset]!;
    return count;
  };
  // Background-to-ink steps around the ring: 1 on a stroke's end or middle, 3 or more where branches meet.
  const crossings = (i: number) => {
    let count = 0;
    for (let k = 0; k < 8; k++) if (!skeleton[i + RING[k]!] && skeleton[i + RING[(k + 1) % 8]!]) count++;
    return count;
  };
  const remove: number[] = [];
  for (let changed = true; changed; ) {
    changed = false;
    for (const pass of [0, 1]) {
      remove.length = 0;
      for (let i = PADDED; i < PADDED * (PADDED - 1); i++) {
        if (!skeleton[i]) continue;
        const count = neighbours(i);
        if (count < 2 || count > 6 || crossings(i) !== 1) continue;
        const [n, e, s, w] = [skeleton[i - PADDED]!, skeleton[i + 1]!, skeleton[i + PADDED]!, skeleton[i - 1]!];
        if (pass === 0 ? n * e * s === 0 && e * s * w === 0 : n * e * w === 0 && n * s * w === 0) remove.push(i);
      }
      for (const i of remove) skeleton[i] = 0;
      if (remove.length > 0) changed = true;
    }
  }
  let ends = 0;
  let forks = 0;
  for (let i = PADDED; i < PADDED * (PADDED - 1); i++) {
    if (!skeleton[i]) continue;
    if (neighbours(i) === 1) ends++;
    else if (crossings(i) >= 3) forks++;
  }
  return { ends, forks };
}

/** Pieces of ink (8-connected) and the size of the largest, by flood fill over the 784 pixels. */
function inkPieces(mask: Uint8Array): { count: number; largest: number } {
  const seen = new Uint8Array(MNIST_PIXELS);
  const stack = new Int32Array(MNIST_PIXELS);
  let count = 0;
  let largest = 0;
  for (let start = 0; start < MNIST_PIXELS; start++) {
    if (seen[start] || !mask[start]) continue;
    count++;
    let size = 0;
    let depth = 0;
    stack[depth++] = start;
    seen[start] = 1;
    while (depth > 0) {
      const i = stack[--depth]!;
      size++;
      const x = i % MNIST_SIDE;
      const y = (i / MNIST_SIDE) | 0;
      for (let ny = Math.max(0, y - 1); ny <= Math.min(MNIST_SIDE - 1, y + 1); ny++) {
        for (let nx = Math.max(0, x - 1); nx <= Math.min(MNIST_SIDE - 1, x + 1); nx++) {
          const n = ny * MNIST_SIDE + nx;
          if (seen[n] || !mask[n]) continue;
          seen[n] = 1;
          stack[depth++] = n;
        }
      }
    }
    largest = Math.max(largest, size);
  }
  return { count, largest };
}

/** Background regions (4-connected) that do not reach the frame's edge: the loops of a 0, 6, 8 or 9. */
function holes(mask: Uint8Array): number {
  const seen = new Uint8Array(MNIST_PIXELS);
  const stack = new Int32Array(MNIST_PIXELS);
  let count = 0;
  for (let start = 0; start < MNIST_PIXELS; start++) {
    if (seen[start] || mask[start]) continue;
    let depth = 0;
    let open = false;
    stack[depth++] = start;
    seen[start] = 1;
    while (depth > 0) {
      const i = stack[--depth]!;
      const x = i % MNIST_SIDE;
      const y = (i / MNIST_SIDE) | 0;
      if (x === 0 || y === 0 || x === MNIST_SIDE - 1 || y === MNIST_SIDE - 1) {
        open = true;
        continue;
      }
      // An inner pixel: all four neighbours are in the frame.
      for (const n of [i - 1, i + 1, i - MNIST_SIDE, i + MNIST_SIDE]) {
        if (seen[n] || mask[n]) continue;
        seen[n] = 1;
        stack[depth++] = n;
      }
    }
    if (!open) count++;
  }
  return count;
}

/** Indices of the largest and second largest of the ten probabilities. */
function topTwo(probabilities: readonly number[]): [number, number] {
  let [first, second] = probabilities[1]! > probabilities[0]! ? [1, 0] : [0, 1];
  for (let c = 2; c < MNIST_CLASSES; c++) {
    const p = probabilities[c]!;
    if (p > probabilities[first]!) [first, second] = [c, first];
    else if (p > probabilities[second]!) second = c;
  }
  return [first, second];
}

/** The gap between the model's top two probabilities: the one thing `undecided` reads (the fit sets its bound on it). */
export function topTwoMargin(probabilities: readonly number[]): number {
  const [first, second] = topTwo(probabilities);
  return probabilities[first]! - probabilities[second]!;
}

/**
 * The kinds of non-digit, each with a score of its own: one linear score
 * cannot fence digits off from noise (grey, everywhere), blobs (solid) and
 * stray strokes (letters, scribbles: digit-like ink) at once, since each lies
 * on a different side of them. A family flags when its score does.
 */
export const NON_DIGIT_FAMILIES = ['noise', 'blob', 'strokes'] as const;
export type NonDigitFamily = (typeof NON_DIGIT_FAMILIES)[number];

/**
 * One family's logistic regression: logit = bias + Σ weight × (feature − the
 * typical digit's), flagged above `threshold`. Centring on the typical digit
 * makes each term read as how far that feature pulls away from a digit.
 */
export interface VerdictScore {
  bias: number;
  threshold: number;
  features: Record<VerdictFeature, { digit: number; weight: number }>;
}

export interface VerdictWeights {
  scores: Record<NonDigitFamily, VerdictScore>;
  /**
   * Below this gap between its top two probabilities the model is undecided,
   * whatever the scores say: the synthetic non-digits teach the scores little
   * about it, since the model is mostly confident on them.
   */
  undecidedMargin: number;
  profiles: ClassProfiles;
  /** The learned score on pixels and features (verdict-net.ts), for the stray strokes the families miss. */
  net: VerdictNet;
}

/** Printed by `npm run bench -- verdict --fit`, which writes the net's weights into verdict-weights.ts. */
export const VERDICT_WEIGHTS: VerdictWeights = {
  net: decodeNet(VERDICT_NET),
  scores: {
    noise: {
      bias: -7.911,
      threshold: 7.625,
      features: {
        inkShare: { digit: 0.1348, weight: -58.54 },
        litShare: { digit: 0.1784, weight: 15.94 },
        greyShare: { digit: 0.5254, weight: 15.1 },
        thickness: { digit: 2.08, weight: 3.651 },
        pieces: { digit: 0.7046, weight: 5.027 },
        largestPiece: { digit: 0.9958, weight: -6.432 },
        holes: { digit: 0.3195, weight: 0.7492 },
        boxFill: { digit: 0.3718, weight: 8.334 },
        roughness: { digit: 1.022, weight: 0.2742 },
        spread: { digit: 0.4799, weight: 14.84 },
        aspect: { digit: 0.7748, weight: 0.09429 },
        ends: { digit: 0.9877, weight: -0.3643 },
        forks: { digit: 0.4953, weight: 0.4653 },
        unlikeItsDigit: { digit: 0.5695, weight: 1.193 },
        unlikeItsShape: { digit: 0.4605, weight: 2.871 },
      },
    },
    blob: {
      bias: -12.14,
      threshold: 13.33,
      features: {
        inkShare: { digit: 0.1348, weight: -39 },
        litShare: { digit: 0.1784, weight: -0.4786 },
        greyShare: { digit: 0.5254, weight: 21.04 },
        thickness: { digit: 2.08, weight: 2.045 },
        pieces: { digit: 0.7046, weight: -6.782 },
        largestPiece: { digit: 0.9958, weight: 4.979 },
        holes: { digit: 0.3195, weight: -0.7935 },
        boxFill: { digit: 0.3718, weight: 8.833 },
        roughness: { digit: 1.022, weight: -23.41 },
        spread: { digit: 0.4799, weight: 7.626 },
        aspect: { digit: 0.7748, weight: 8.609 },
        ends: { digit: 0.9877, weight: -1.716 },
        forks: { digit: 0.4953, weight: -0.2287 },
        unlikeItsDigit: { digit: 0.5695, weight: 2.156 },
        unlikeItsShape: { digit: 0.4605, weight: 0.7917 },
      },
    },
    strokes: {
      bias: -2.145,
      threshold: 11.35,
      features: {
        inkShare: { digit: 0.1348, weight: 38.95 },
        litShare: { digit: 0.1784, weight: -36.65 },
        greyShare: { digit: 0.5254, weight: 5.859 },
        thickness: { digit: 2.08, weight: -1.844 },
        pieces: { digit: 0.7046, weight: -5.341 },
        largestPiece: { digit: 0.9958, weight: -3.844 },
        holes: { digit: 0.3195, weight: -0.9723 },
        boxFill: { digit: 0.3718, weight: 9.331 },
        roughness: { digit: 1.022, weight: -1.38 },
        spread: { digit: 0.4799, weight: 4.928 },
        aspect: { digit: 0.7748, weight: 2.244 },
        ends: { digit: 0.9877, weight: -0.8176 },
        forks: { digit: 0.4953, weight: 1.092 },
        unlikeItsDigit: { digit: 0.5695, weight: 1.836 },
        unlikeItsShape: { digit: 0.4605, weight: 3.128 },
      },
    },
  },
  undecidedMargin: 0.02304,
  // Per digit 0–9: mean and spread of the ink features (INK_FEATURES order), then of the 7×7 coarse image.
  profiles: [
    {
      mean: [0.181, 0.233, 0.48, 2.33, 0.699, 0.999, 0.642, 0.426, 0.92, 0.535, 0.909, 0.22, 0.153],
      spread: [0.0427, 0.0445, 0.115, 0.628, 0.0494, 0.0201, 0.24, 0.0867, 0.241, 0.0393, 0.191, 0.405, 0.345],
      coarseMean: [
        0, 0.00015, 0.00036, 0.0033, 0.003, 0.0003, 0, 0.000016, 0.0066, 0.14, 0.48, 0.54, 0.18, 0.0015, 0.000052,
        0.073, 0.5, 0.5, 0.44, 0.48, 0.015, 0.000027, 0.27, 0.54, 0.087, 0.21, 0.51, 0.026, 0.00027, 0.42, 0.41, 0.14,
        0.47, 0.33, 0.011, 0.00017, 0.23, 0.64, 0.62, 0.37, 0.064, 0.00085, 0, 0.0021, 0.023, 0.028, 0.0056, 0.00023,
        0.0000097,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.038, 0.19, 0.24, 0.24, 0.21, 0.02, 0.02, 0.14, 0.25, 0.29,
        0.27, 0.25, 0.045, 0.02, 0.24, 0.25, 0.15, 0.23, 0.23, 0.062, 0.02, 0.27, 0.25, 0.19, 0.27, 0.25, 0.042, 0.02,
        0.22, 0.2, 0.19, 0.24, 0.13, 0.02, 0.02, 0.02, 0.058, 0.064, 0.025, 0.02, 0.02,
      ],
    },
    {
      mean: [0.0807, 0.106, 0.511, 2.14, 0.704, 0.999, 0.00292, 0.419, 0.987, 0.43, 0.439, 1.11, 0.029],
      spread: [0.0235, 0.0262, 0.121, 0.52, 0.071, 0.02, 0.0473, 0.172, 0.23, 0.0313, 0.197, 0.0901, 0.159],
      coarseMean: [
        0, 0, 0.00011, 0.0013, 0.0014, 0.00017, 0, 0.000025, 0.00083, 0.015, 0.22, 0.32, 0.058, 0.00021, 0.000056,
        0.00075, 0.015, 0.43, 0.36, 0.011, 0.000031, 0.000044, 0.00083, 0.019, 0.67, 0.13, 0.00032, 0.000011, 0.000044,
        0.0019, 0.16, 0.62, 0.041, 0.002, 0.00039, 0.000092, 0.023, 0.32, 0.37, 0.06, 0.0027, 0.00038, 0, 0.0015, 0.018,
        0.018, 0.0025, 0.000025, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.069, 0.23, 0.25, 0.13, 0.02, 0.02, 0.02, 0.072, 0.23,
        0.29, 0.043, 0.02, 0.02, 0.02, 0.056, 0.15, 0.13, 0.02, 0.02, 0.02, 0.02, 0.2, 0.17, 0.1, 0.02, 0.02, 0.02,
        0.084, 0.31, 0.25, 0.14, 0.028, 0.02, 0.02, 0.02, 0.045, 0.041, 0.02, 0.02, 0.02,
      ],
    },
    {
      mean: [0.153, 0.201, 0.511, 2.18, 0.699, 0.998, 0.33, 0.361, 0.977, 0.51, 0.958, 1.19, 0.7],
      spread: [0.0402, 0.0441, 0.12, 0.575, 0.05, 0.0214, 0.383, 0.0767, 0.25, 0.0381, 0.236, 0.2, 0.465],
      coarseMean: [
        0, 0.0012, 0.016, 0.041, 0.025, 0.0026, 0.000018, 0.00023, 0.048, 0.28, 0.51, 0.46, 0.11, 0.00031, 0.00024,
        0.048, 0.16, 0.22, 0.47, 0.18, 0.00047, 0.00025, 0.035, 0.17, 0.38, 0.49, 0.1, 0.0052, 0.0058, 0.27, 0.56, 0.66,
        0.49, 0.22, 0.03, 0.0076, 0.23, 0.44, 0.33, 0.25, 0.14, 0.011, 0.000011, 0.0021, 0.0044, 0.0052, 0.0042, 0.0015,
        0.000062,
      ],
      coarseSpread: [
        0.02, 0.02, 0.049, 0.08, 0.056, 0.02, 0.02, 0.02, 0.12, 0.25, 0.23, 0.26, 0.18, 0.02, 0.02, 0.12, 0.22, 0.24,
        0.24, 0.23, 0.02, 0.02, 0.083, 0.2, 0.25, 0.26, 0.16, 0.028, 0.025, 0.27, 0.26, 0.23, 0.28, 0.24, 0.07, 0.032,
        0.24, 0.25, 0.26, 0.24, 0.18, 0.037, 0.02, 0.02, 0.024, 0.03, 0.028, 0.02, 0.02,
      ],
    },
    {
      mean: [0.147, 0.195, 0.525, 2.04, 0.706, 0.994, 0.0427, 0.37, 1.04, 0.514, 0.809, 1.3, 0.533],
      spread: [0.0398, 0.0446, 0.113, 0.505, 0.0834, 0.0445, 0.176, 0.0809, 0.247, 0.0326, 0.18, 0.18, 0.353],
      coarseMean: [
        0, 0.00013, 0.0018, 0.0045, 0.0033, 0.00031, 0, 0.0018, 0.068, 0.32, 0.53, 0.43, 0.091, 0.000044, 0.0029, 0.056,
        0.17, 0.38, 0.52, 0.11, 0.000036, 0.00031, 0.017, 0.27, 0.63, 0.51, 0.073, 0.0002, 0.008, 0.087, 0.091, 0.16,
        0.5, 0.16, 0.00093, 0.012, 0.25, 0.49, 0.56, 0.39, 0.061, 0.00019, 0.0003, 0.018, 0.058, 0.062, 0.016, 0.0014,
        0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.025, 0.023, 0.02, 0.02, 0.02, 0.13, 0.23, 0.19, 0.26, 0.15, 0.02, 0.02, 0.13, 0.18, 0.24,
        0.24, 0.18, 0.02, 0.02, 0.06, 0.23, 0.21, 0.23, 0.13, 0.02, 0.035, 0.16, 0.15, 0.2, 0.22, 0.22, 0.02, 0.039,
        0.25, 0.25, 0.2, 0.24, 0.13, 0.02, 0.02, 0.054, 0.093, 0.096, 0.05, 0.02, 0.02,
      ],
    },
    {
      mean: [0.125, 0.169, 0.544, 2, 0.703, 0.997, 0.0575, 0.32, 1.05, 0.444, 0.803, 1.47, 0.882],
      spread: [0.0334, 0.0361, 0.12, 0.501, 0.0649, 0.0358, 0.202, 0.0677, 0.236, 0.0378, 0.18, 0.149, 0.289],
      coarseMean: [
        0, 0.000039, 0.000084, 0.00064, 0.0016, 0.0012, 0.000014, 0.00025, 0.021, 0.099, 0.095, 0.15, 0.15, 0.012,
        0.0011, 0.084, 0.39, 0.19, 0.42, 0.21, 0.005, 0.0017, 0.22, 0.62, 0.4, 0.65, 0.14, 0.0028, 0.00066, 0.11, 0.31,
        0.51, 0.45, 0.064, 0.0013, 6.9e-7, 0.0042, 0.082, 0.31, 0.22, 0.035, 0.00047, 0, 0.0011, 0.023, 0.048, 0.034,
        0.0058, 0.000037,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.072, 0.14, 0.14, 0.17, 0.17, 0.04, 0.02, 0.18, 0.23, 0.21,
        0.22, 0.24, 0.029, 0.02, 0.23, 0.2, 0.24, 0.18, 0.18, 0.02, 0.02, 0.16, 0.23, 0.25, 0.25, 0.14, 0.02, 0.02,
        0.029, 0.16, 0.26, 0.25, 0.12, 0.02, 0.02, 0.02, 0.057, 0.075, 0.065, 0.027, 0.02,
      ],
    },
    {
      mean: [0.129, 0.176, 0.566, 1.88, 0.731, 0.976, 0.0275, 0.321, 1.11, 0.503, 0.985, 1.19, 0.17],
      spread: [0.0382, 0.0433, 0.117, 0.454, 0.129, 0.0866, 0.139, 0.0811, 0.243, 0.0391, 0.282, 0.195, 0.319],
      coarseMean: [
        0, 0, 0.000096, 0.0017, 0.0026, 0.0022, 0.00012, 0, 0.011, 0.12, 0.3, 0.33, 0.23, 0.042, 0.0000098, 0.036, 0.36,
        0.46, 0.27, 0.16, 0.034, 0.00021, 0.054, 0.46, 0.48, 0.3, 0.055, 0.00078, 0.0007, 0.11, 0.15, 0.25, 0.39, 0.12,
        0.0018, 0.00049, 0.14, 0.43, 0.48, 0.31, 0.049, 0.00044, 0.000014, 0.0045, 0.042, 0.055, 0.016, 0.0011, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.054, 0.19, 0.25, 0.24, 0.22, 0.07, 0.02, 0.1, 0.26, 0.24,
        0.23, 0.2, 0.067, 0.02, 0.12, 0.26, 0.2, 0.25, 0.12, 0.02, 0.02, 0.15, 0.18, 0.24, 0.25, 0.2, 0.02, 0.02, 0.16,
        0.22, 0.23, 0.26, 0.13, 0.02, 0.02, 0.023, 0.085, 0.095, 0.052, 0.02, 0.02,
      ],
    },
    {
      mean: [0.142, 0.186, 0.518, 2.12, 0.704, 0.998, 0.597, 0.396, 1.02, 0.458, 0.714, 0.829, 0.673],
      // biome-ignore lint/suspicious/noApproximativeNumericConstant: a fitted spread that happens to round to log10(e)
      spread: [0.0389, 0.0417, 0.124, 0.636, 0.0684, 0.0233, 0.363, 0.0781, 0.275, 0.0342, 0.163, 0.22, 0.434],
      coarseMean: [
        0.000009, 0.0013, 0.015, 0.068, 0.11, 0.019, 0.00022, 0.000022, 0.0076, 0.11, 0.4, 0.29, 0.031, 0.0006, 0,
        0.025, 0.31, 0.41, 0.089, 0.042, 0.002, 0, 0.069, 0.54, 0.42, 0.51, 0.27, 0.014, 0, 0.089, 0.62, 0.58, 0.56,
        0.25, 0.0086, 0, 0.016, 0.26, 0.45, 0.24, 0.025, 0.00011, 0, 0, 0.000037, 0.0003, 0.000096, 0, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.055, 0.095, 0.11, 0.051, 0.02, 0.02, 0.045, 0.19, 0.24, 0.26, 0.093, 0.02, 0.02, 0.086, 0.25,
        0.26, 0.14, 0.11, 0.02, 0.02, 0.14, 0.22, 0.25, 0.24, 0.26, 0.053, 0.02, 0.15, 0.2, 0.27, 0.24, 0.24, 0.038,
        0.02, 0.048, 0.18, 0.16, 0.18, 0.065, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02,
      ],
    },
    {
      mean: [0.119, 0.159, 0.524, 2.07, 0.701, 0.997, 0.0136, 0.316, 1.02, 0.487, 0.771, 1.18, 0.187],
      spread: [0.0324, 0.0362, 0.119, 0.508, 0.0589, 0.0277, 0.0985, 0.0701, 0.237, 0.0334, 0.18, 0.177, 0.377],
      coarseMean: [
        0, 0, 0, 0, 0, 0, 0, 0.00072, 0.023, 0.094, 0.15, 0.13, 0.032, 0.00031, 0.013, 0.2, 0.52, 0.53, 0.66, 0.22,
        0.0015, 0.0037, 0.08, 0.14, 0.16, 0.59, 0.099, 0.0011, 0.00043, 0.013, 0.061, 0.45, 0.36, 0.026, 0.00057,
        0.00004, 0.011, 0.2, 0.45, 0.13, 0.0053, 0.000022, 0.000032, 0.026, 0.17, 0.18, 0.053, 0.0037, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.057, 0.12, 0.14, 0.13, 0.062, 0.02, 0.051, 0.23, 0.23, 0.21,
        0.19, 0.25, 0.02, 0.022, 0.16, 0.2, 0.18, 0.19, 0.15, 0.02, 0.02, 0.058, 0.13, 0.26, 0.24, 0.082, 0.02, 0.02,
        0.057, 0.25, 0.24, 0.2, 0.038, 0.02, 0.02, 0.076, 0.19, 0.18, 0.12, 0.033, 0.02,
      ],
    },
    {
      mean: [0.154, 0.203, 0.535, 2.04, 0.701, 0.998, 0.963, 0.409, 1.05, 0.484, 0.765, 0.505, 1],
      spread: [0.0401, 0.0421, 0.125, 0.62, 0.0634, 0.02, 0.281, 0.0877, 0.271, 0.029, 0.179, 0.525, 0.453],
      coarseMean: [
        0, 0, 0.000036, 0.00036, 0.0011, 0.00024, 0, 0, 0.0094, 0.14, 0.43, 0.45, 0.17, 0.0098, 0.000036, 0.051, 0.4,
        0.4, 0.46, 0.29, 0.019, 0.000019, 0.026, 0.31, 0.71, 0.43, 0.057, 0.0034, 0.00005, 0.045, 0.44, 0.53, 0.31,
        0.048, 0.0011, 0.000068, 0.098, 0.5, 0.54, 0.29, 0.038, 0.00033, 0, 0.0064, 0.067, 0.089, 0.025, 0.0018, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.041, 0.17, 0.19, 0.2, 0.19, 0.039, 0.02, 0.13, 0.25, 0.24,
        0.23, 0.26, 0.057, 0.02, 0.089, 0.24, 0.19, 0.21, 0.13, 0.025, 0.02, 0.1, 0.23, 0.26, 0.24, 0.13, 0.02, 0.02,
        0.16, 0.25, 0.2, 0.26, 0.11, 0.02, 0.02, 0.023, 0.091, 0.099, 0.06, 0.02, 0.02,
      ],
    },
    {
      mean: [0.127, 0.169, 0.545, 1.97, 0.703, 0.998, 0.599, 0.375, 1.07, 0.445, 0.669, 0.829, 0.71],
      spread: [0.0339, 0.0368, 0.121, 0.515, 0.0719, 0.02, 0.314, 0.0726, 0.244, 0.032, 0.143, 0.259, 0.304],
      coarseMean: [
        0, 0, 0, 0, 0, 0, 0, 0.000006, 0.0022, 0.061, 0.26, 0.22, 0.028, 0.00012, 0.00013, 0.065, 0.47, 0.41, 0.53,
        0.13, 0.00083, 0.00078, 0.13, 0.5, 0.46, 0.64, 0.072, 0.00043, 0.00036, 0.035, 0.2, 0.44, 0.39, 0.026, 0.00025,
        0.00013, 0.008, 0.11, 0.36, 0.22, 0.031, 0.00068, 0.0000052, 0.0099, 0.087, 0.13, 0.083, 0.017, 0.00017,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.1, 0.15, 0.16, 0.065, 0.02, 0.02, 0.14, 0.19, 0.21,
        0.21, 0.19, 0.02, 0.02, 0.2, 0.21, 0.22, 0.19, 0.14, 0.02, 0.02, 0.1, 0.21, 0.23, 0.23, 0.092, 0.02, 0.02,
        0.043, 0.19, 0.27, 0.25, 0.11, 0.02, 0.02, 0.044, 0.13, 0.14, 0.13, 0.062, 0.02,
      ],
    },
  ],
};

const NOT_HANDWRITING: Verdict = {
  isDigit: false,
  reason: 'not_handwriting',
  message: 'the ink does not look like one handwritten digit (noise, a photo, a filled shape or a scribble?)',
};

/** One family's logit for `values` (the fit sets each threshold on this same sum). */
export function familyLogit(score: VerdictScore, values: readonly number[]): number {
  let sum = score.bias;
  VERDICT_FEATURES.forEach((name, i) => {
    const { digit, weight } = score.features[name];
    sum += weight * (values[i]! - digit);
  });
  return sum;
}

/**
 * The verdict on one input the model saw. `marks` of 2 or more is several
 * marks whatever the scores; ink any family's score or the learned score
 * flags is not handwriting; the rest is a digit unless the model's top two
 * are too close, which is undecided: the only rule that reads how sure the
 * model is.
 */
export function digitVerdict(
  seen: { input: Float32Array; probabilities: readonly number[]; marks: number },
  weights: VerdictWeights = VERDICT_WEIGHTS,
): Verdict {
  if (seen.marks >= 2) {
    return {
      isDigit: false,
      reason: 'several_marks',
      message: `the image holds ${seen.marks} separate marks, not one digit; to read them as a number, send it with "mode": "number"`,
    };
  }
  const [first, second] = topTwo(seen.probabilities);
  const values = verdictFeatures(seen.input, first, weights.profiles);
  if (values[INK_FEATURES.indexOf('litShare')] === 0) return NO_INK;
  // Preprocessing stretches an upload's ink to full white and MNIST's strokes reach it: a haze that never does is not a stroke.
  if (values[INK_FEATURES.indexOf('inkShare')] === 0) return NOT_HANDWRITING;
  for (const family of NON_DIGIT_FAMILIES) {
    const score = weights.scores[family];
    if (familyLogit(score, values) > score.threshold) return NOT_HANDWRITING;
  }
  if (netLogit(weights.net, seen.input, values) > weights.net.threshold) return NOT_HANDWRITING;
  if (topTwoMargin(seen.probabilities) >= weights.undecidedMargin) return IS_DIGIT;
  return { isDigit: false, reason: 'undecided', message: `the model cannot decide between ${first} and ${second}` };
}
