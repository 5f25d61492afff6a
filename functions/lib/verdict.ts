/**
 * Whether what the model saw looks like one handwritten digit, and if not,
 * why: no ink, several separate marks, ink unlike handwriting (noise, photos,
 * filled shapes), or a model that cannot decide between two digits.
 *
 * A single confidence threshold cannot do this: the model is confidently
 * wrong on noise and unsure on some real digits. So the verdict is built from
 * what separated best when measured (`npm run bench -- verdict`): ink
 * statistics of the 28×28 input (how much ink, how grey, how thick, how many
 * pieces, holes, stroke ends and forks, how filled its box is), how unlike
 * the digit the model named they and the coarse image are, and the model's
 * own uncertainty, weighed by one logistic regression per family of
 * non-digit, each fitted on MNIST training digits (raw and re-rendered as
 * canvas drawings and paper photos) against synthetic non-digits
 * (scripts/bench/non-digits.ts). The constants below are printed by
 * `npm run bench -- verdict --fit`; refit and paste them whenever the
 * preprocessing, the model or the features change.
 *
 * Pure and cheap: a few passes over 784 values (a skeleton among them) and
 * three dot products, on every request.
 */
import { MNIST_CLASSES, MNIST_PIXELS, MNIST_SIDE } from './mnist-shape.ts';

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
 * Every feature the score reads: the input's, the model's uncertainty, and
 * how unlike the digit the model named the input's ink is.
 */
export const VERDICT_FEATURES = [
  ...INK_FEATURES,
  'top',
  'margin',
  'entropy',
  'unlikeItsDigit',
  'unlikeItsShape',
] as const;
export type VerdictFeature = (typeof VERDICT_FEATURES)[number];
/** The model's features (the rest are the input's): which group outweighs decides between undecided and not_handwriting. */
const MODEL_FEATURES: ReadonlySet<VerdictFeature> = new Set(['top', 'margin', 'entropy']);

/**
 * Per digit class, over MNIST training digits: each ink feature's mean and
 * spread (INK_FEATURES order), and each cell's of the 7×7 coarse image.
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
 * Every feature of one input and the model's probabilities, in
 * VERDICT_FEATURES order; `profiles` say how each digit's ink usually looks.
 */
export function verdictFeatures(
  input: Float32Array,
  probabilities: readonly number[],
  profiles: ClassProfiles = VERDICT_WEIGHTS.profiles,
): number[] {
  const ink = inkFeatures(input);
  const [first, second] = topTwo(probabilities);
  const profile = profiles[first]!;
  return [
    ...ink,
    probabilities[first]!,
    probabilities[first]! - probabilities[second]!,
    entropy(probabilities),
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

function entropy(probabilities: readonly number[]): number {
  let bits = 0;
  for (const p of probabilities) if (p > 0) bits -= p * Math.log2(p);
  return bits;
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
 * makes each term read as how far that feature pulls away from a digit,
 * which is how the reason is chosen.
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
}

/** Written by `npm run bench -- verdict --fit`. */
export const VERDICT_WEIGHTS: VerdictWeights = {
  scores: {
    noise: {
      bias: -8.033,
      threshold: 2.054,
      features: {
        inkShare: { digit: 0.1362, weight: -51.79 },
        litShare: { digit: 0.1855, weight: 10.01 },
        greyShare: { digit: 0.5721, weight: 12.11 },
        thickness: { digit: 2.117, weight: 2.969 },
        pieces: { digit: 0.7037, weight: 4.879 },
        largestPiece: { digit: 0.996, weight: -4.829 },
        holes: { digit: 0.2993, weight: 0.9612 },
        boxFill: { digit: 0.3733, weight: 10.3 },
        roughness: { digit: 0.9885, weight: -2.393 },
        spread: { digit: 0.4788, weight: 23.33 },
        aspect: { digit: 0.7845, weight: 0.2741 },
        ends: { digit: 1.002, weight: 0.3839 },
        forks: { digit: 0.4772, weight: -0.03263 },
        top: { digit: 0.9709, weight: -2.117 },
        margin: { digit: 0.9508, weight: 2.971 },
        entropy: { digit: 0.1439, weight: 1.849 },
        unlikeItsDigit: { digit: 0.5673, weight: 1.516 },
        unlikeItsShape: { digit: 0.461, weight: 2.232 },
      },
    },
    blob: {
      bias: -13.56,
      threshold: 2.885,
      features: {
        inkShare: { digit: 0.1362, weight: -59.12 },
        litShare: { digit: 0.1855, weight: 15.26 },
        greyShare: { digit: 0.5721, weight: 12.62 },
        thickness: { digit: 2.117, weight: 2.068 },
        pieces: { digit: 0.7037, weight: -2.756 },
        largestPiece: { digit: 0.996, weight: 3.956 },
        holes: { digit: 0.2993, weight: -1.676 },
        boxFill: { digit: 0.3733, weight: 11.41 },
        roughness: { digit: 0.9885, weight: -24.21 },
        spread: { digit: 0.4788, weight: 10.36 },
        aspect: { digit: 0.7845, weight: 11.83 },
        ends: { digit: 1.002, weight: -2.906 },
        forks: { digit: 0.4772, weight: -0.4739 },
        top: { digit: 0.9709, weight: 13.19 },
        margin: { digit: 0.9508, weight: -2.935 },
        entropy: { digit: 0.1439, weight: 3.502 },
        unlikeItsDigit: { digit: 0.5673, weight: 2.434 },
        unlikeItsShape: { digit: 0.461, weight: 0.6487 },
      },
    },
    strokes: {
      bias: -2.971,
      threshold: 5.107,
      features: {
        inkShare: { digit: 0.1362, weight: 63.99 },
        litShare: { digit: 0.1855, weight: -49.98 },
        greyShare: { digit: 0.5721, weight: 1.123 },
        thickness: { digit: 2.117, weight: -2.088 },
        pieces: { digit: 0.7037, weight: -3.525 },
        largestPiece: { digit: 0.996, weight: -2.862 },
        holes: { digit: 0.2993, weight: -1.198 },
        boxFill: { digit: 0.3733, weight: 7.479 },
        roughness: { digit: 0.9885, weight: -1.421 },
        spread: { digit: 0.4788, weight: 10.22 },
        aspect: { digit: 0.7845, weight: 1.585 },
        ends: { digit: 1.002, weight: -0.966 },
        forks: { digit: 0.4772, weight: 1.276 },
        top: { digit: 0.9709, weight: 22.35 },
        margin: { digit: 0.9508, weight: -6.165 },
        entropy: { digit: 0.1439, weight: 5.895 },
        unlikeItsDigit: { digit: 0.5673, weight: 1.217 },
        unlikeItsShape: { digit: 0.461, weight: 2.202 },
      },
    },
  },
  undecidedMargin: 0.02304,
  // Per digit 0–9: mean and spread of the ink features (INK_FEATURES order), then of the 7×7 coarse image.
  profiles: [
    {
      mean: [0.183, 0.241, 0.528, 2.36, 0.697, 0.999, 0.63, 0.428, 0.896, 0.536, 0.902, 0.207, 0.118],
      spread: [0.0401, 0.0421, 0.141, 0.582, 0.0447, 0.0214, 0.229, 0.0835, 0.226, 0.0387, 0.181, 0.404, 0.297],
      coarseMean: [
        0, 6.5e-9, 0.00078, 0.0024, 0.0022, 0.00043, 0, 0, 0.0048, 0.14, 0.47, 0.56, 0.21, 0.0027, 0, 0.063, 0.48, 0.52,
        0.45, 0.47, 0.014, 0.000025, 0.26, 0.56, 0.084, 0.23, 0.5, 0.022, 0.00013, 0.43, 0.41, 0.14, 0.48, 0.31, 0.011,
        0.00039, 0.24, 0.65, 0.63, 0.37, 0.065, 0.00086, 0, 0.001, 0.016, 0.028, 0.006, 0.000029, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.026, 0.2, 0.24, 0.24, 0.23, 0.02, 0.02, 0.12, 0.24, 0.29,
        0.26, 0.24, 0.044, 0.02, 0.23, 0.25, 0.13, 0.23, 0.23, 0.054, 0.02, 0.26, 0.25, 0.18, 0.27, 0.24, 0.039, 0.02,
        0.23, 0.19, 0.19, 0.24, 0.13, 0.02, 0.02, 0.02, 0.045, 0.064, 0.024, 0.02, 0.02,
      ],
    },
    {
      mean: [0.0825, 0.111, 0.551, 2.18, 0.701, 0.999, 0.00121, 0.413, 0.961, 0.431, 0.454, 1.11, 0.0191],
      spread: [0.0211, 0.0247, 0.138, 0.48, 0.058, 0.02, 0.0289, 0.17, 0.208, 0.0306, 0.193, 0.0781, 0.123],
      coarseMean: [
        0, 0, 0.00015, 0.0013, 0.0013, 0.00012, 0, 0, 0.00056, 0.015, 0.22, 0.33, 0.06, 0.00019, 0.00011, 0.00013,
        0.012, 0.43, 0.38, 0.011, 0.00011, 0, 0.00071, 0.017, 0.68, 0.14, 0.00015, 0.000038, 0, 0.0014, 0.18, 0.62,
        0.041, 0.002, 0.0002, 0, 0.02, 0.34, 0.36, 0.059, 0.0015, 0.00025, 0, 0.0019, 0.021, 0.015, 0.0028, 0, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.066, 0.24, 0.26, 0.13, 0.02, 0.02, 0.02, 0.057, 0.23,
        0.29, 0.04, 0.02, 0.02, 0.02, 0.04, 0.15, 0.13, 0.02, 0.02, 0.02, 0.02, 0.2, 0.16, 0.096, 0.021, 0.02, 0.02,
        0.066, 0.31, 0.26, 0.14, 0.02, 0.02, 0.02, 0.02, 0.048, 0.037, 0.02, 0.02, 0.02,
      ],
    },
    {
      mean: [0.157, 0.212, 0.557, 2.23, 0.704, 0.997, 0.334, 0.364, 0.945, 0.511, 0.992, 1.18, 0.67],
      spread: [0.0401, 0.0462, 0.141, 0.564, 0.0724, 0.0238, 0.387, 0.0748, 0.244, 0.0374, 0.228, 0.202, 0.488],
      coarseMean: [
        0, 0.0013, 0.016, 0.041, 0.026, 0.0035, 0.000063, 0.00041, 0.051, 0.26, 0.49, 0.47, 0.15, 0.00091, 0.00071,
        0.057, 0.14, 0.22, 0.46, 0.22, 0.00049, 0.00047, 0.038, 0.2, 0.41, 0.49, 0.12, 0.0044, 0.0067, 0.31, 0.58, 0.66,
        0.5, 0.25, 0.028, 0.0072, 0.25, 0.44, 0.32, 0.24, 0.12, 0.011, 0.000039, 0.0024, 0.0039, 0.0043, 0.0033, 0.0019,
        0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.051, 0.08, 0.059, 0.02, 0.02, 0.02, 0.12, 0.24, 0.23, 0.25, 0.21, 0.02, 0.02, 0.14, 0.2, 0.23,
        0.25, 0.25, 0.02, 0.02, 0.078, 0.2, 0.25, 0.26, 0.16, 0.024, 0.027, 0.28, 0.26, 0.23, 0.26, 0.24, 0.06, 0.031,
        0.25, 0.24, 0.26, 0.24, 0.17, 0.039, 0.02, 0.02, 0.022, 0.025, 0.022, 0.02, 0.02,
      ],
    },
    {
      mean: [0.151, 0.206, 0.571, 2.09, 0.7, 0.997, 0.0442, 0.372, 0.992, 0.514, 0.827, 1.3, 0.55],
      spread: [0.0375, 0.0451, 0.132, 0.454, 0.061, 0.0291, 0.182, 0.0739, 0.21, 0.0314, 0.177, 0.189, 0.35],
      coarseMean: [
        0, 0.000018, 0.0017, 0.0033, 0.0028, 0.0002, 0, 0.0021, 0.056, 0.3, 0.53, 0.46, 0.13, 0, 0.0033, 0.048, 0.18,
        0.39, 0.53, 0.14, 0, 0.000012, 0.017, 0.28, 0.64, 0.53, 0.066, 0.00026, 0.0057, 0.094, 0.089, 0.16, 0.54, 0.14,
        0.001, 0.014, 0.29, 0.51, 0.58, 0.36, 0.052, 0.00024, 0.00053, 0.025, 0.065, 0.056, 0.011, 0.0022, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.021, 0.02, 0.02, 0.02, 0.02, 0.12, 0.22, 0.19, 0.25, 0.17, 0.02, 0.02, 0.12, 0.19, 0.22,
        0.23, 0.21, 0.02, 0.02, 0.054, 0.24, 0.2, 0.23, 0.12, 0.02, 0.027, 0.16, 0.14, 0.18, 0.2, 0.21, 0.02, 0.042,
        0.27, 0.25, 0.18, 0.24, 0.12, 0.02, 0.02, 0.066, 0.097, 0.091, 0.041, 0.022, 0.02,
      ],
    },
    {
      mean: [0.126, 0.176, 0.593, 2.02, 0.702, 0.997, 0.0462, 0.321, 1.02, 0.444, 0.813, 1.47, 0.873],
      spread: [0.0332, 0.0374, 0.145, 0.501, 0.0601, 0.0351, 0.18, 0.0694, 0.225, 0.0391, 0.184, 0.155, 0.282],
      coarseMean: [
        0, 0, 0.000036, 0.00047, 0.00096, 0.0013, 0, 0.00055, 0.021, 0.11, 0.093, 0.15, 0.14, 0.014, 0.0019, 0.085,
        0.38, 0.19, 0.41, 0.22, 0.0061, 0.0024, 0.22, 0.62, 0.4, 0.65, 0.14, 0.0021, 0.00031, 0.12, 0.34, 0.52, 0.47,
        0.071, 0.0019, 0, 0.0045, 0.082, 0.32, 0.21, 0.039, 0.00046, 0, 0.0011, 0.02, 0.045, 0.031, 0.0045, 0.00001,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.072, 0.15, 0.14, 0.17, 0.16, 0.044, 0.02, 0.18, 0.23, 0.21,
        0.22, 0.24, 0.03, 0.026, 0.23, 0.2, 0.23, 0.18, 0.18, 0.02, 0.02, 0.15, 0.23, 0.24, 0.23, 0.15, 0.02, 0.02,
        0.026, 0.15, 0.27, 0.25, 0.12, 0.02, 0.02, 0.02, 0.053, 0.073, 0.059, 0.022, 0.02,
      ],
    },
    {
      mean: [0.134, 0.188, 0.606, 1.93, 0.731, 0.979, 0.025, 0.333, 1.06, 0.501, 0.999, 1.19, 0.157],
      spread: [0.0378, 0.0447, 0.139, 0.425, 0.126, 0.0772, 0.137, 0.0801, 0.214, 0.0398, 0.284, 0.192, 0.314],
      coarseMean: [
        0, 0, 0.000047, 0.0019, 0.0023, 0.0016, 0.00016, 0, 0.012, 0.13, 0.32, 0.36, 0.24, 0.036, 0, 0.039, 0.37, 0.47,
        0.26, 0.15, 0.034, 0.00019, 0.054, 0.44, 0.49, 0.34, 0.057, 0.00048, 0.00069, 0.13, 0.17, 0.24, 0.44, 0.12,
        0.0009, 0.0007, 0.15, 0.46, 0.49, 0.32, 0.048, 0.00089, 0, 0.0037, 0.033, 0.047, 0.015, 0.0006, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.048, 0.21, 0.26, 0.25, 0.21, 0.066, 0.02, 0.1, 0.27, 0.23,
        0.22, 0.2, 0.067, 0.02, 0.12, 0.25, 0.19, 0.25, 0.12, 0.02, 0.02, 0.17, 0.18, 0.23, 0.25, 0.21, 0.02, 0.02,
        0.17, 0.22, 0.24, 0.27, 0.13, 0.02, 0.02, 0.022, 0.075, 0.087, 0.051, 0.02, 0.02,
      ],
    },
    {
      mean: [0.142, 0.191, 0.562, 2.18, 0.7, 0.999, 0.58, 0.406, 0.981, 0.452, 0.699, 0.843, 0.663],
      spread: [0.0367, 0.0402, 0.147, 0.656, 0.0543, 0.02, 0.383, 0.0808, 0.266, 0.0307, 0.15, 0.221, 0.461],
      coarseMean: [
        0, 0.00007, 0.0078, 0.063, 0.13, 0.021, 0.000056, 0.000037, 0.0037, 0.078, 0.42, 0.32, 0.027, 0.00047, 0, 0.015,
        0.29, 0.44, 0.086, 0.03, 0.0015, 0, 0.05, 0.56, 0.43, 0.53, 0.25, 0.0077, 0, 0.081, 0.63, 0.61, 0.6, 0.2, 0.004,
        0, 0.016, 0.25, 0.44, 0.23, 0.02, 0.000096, 0, 0, 0, 0, 0, 0, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.037, 0.087, 0.11, 0.053, 0.02, 0.02, 0.033, 0.16, 0.23, 0.26, 0.074, 0.02, 0.02, 0.063, 0.22,
        0.26, 0.13, 0.081, 0.02, 0.02, 0.11, 0.22, 0.26, 0.24, 0.24, 0.04, 0.02, 0.13, 0.2, 0.25, 0.22, 0.2, 0.025,
        0.02, 0.042, 0.18, 0.16, 0.19, 0.058, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02,
      ],
    },
    {
      mean: [0.122, 0.168, 0.575, 2.1, 0.705, 0.995, 0.0189, 0.32, 0.985, 0.487, 0.785, 1.18, 0.187],
      spread: [0.0314, 0.0366, 0.142, 0.487, 0.0767, 0.0411, 0.116, 0.0672, 0.214, 0.0326, 0.188, 0.176, 0.377],
      coarseMean: [
        0, 0, 0, 0, 0, 0, 0, 0.0008, 0.024, 0.095, 0.15, 0.13, 0.029, 0.000018, 0.013, 0.2, 0.52, 0.53, 0.67, 0.24,
        0.002, 0.0037, 0.077, 0.13, 0.17, 0.6, 0.12, 0.002, 0.0003, 0.012, 0.068, 0.47, 0.36, 0.03, 0.00088, 0.000056,
        0.011, 0.23, 0.45, 0.11, 0.0029, 0, 0, 0.035, 0.19, 0.17, 0.044, 0.0018, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.059, 0.12, 0.14, 0.12, 0.055, 0.02, 0.047, 0.22, 0.23, 0.2,
        0.18, 0.24, 0.02, 0.02, 0.15, 0.19, 0.19, 0.19, 0.17, 0.02, 0.02, 0.056, 0.14, 0.26, 0.24, 0.088, 0.02, 0.02,
        0.048, 0.26, 0.23, 0.18, 0.03, 0.02, 0.02, 0.085, 0.19, 0.19, 0.1, 0.025, 0.02,
      ],
    },
    {
      mean: [0.156, 0.211, 0.58, 2.11, 0.7, 0.998, 0.926, 0.409, 1, 0.483, 0.778, 0.567, 0.977],
      spread: [0.0379, 0.0404, 0.148, 0.634, 0.0612, 0.0224, 0.291, 0.0853, 0.251, 0.0272, 0.177, 0.525, 0.463],
      coarseMean: [
        0, 0, 0.00014, 0.00014, 0, 0, 0, 0, 0.0061, 0.13, 0.44, 0.46, 0.18, 0.012, 0, 0.038, 0.38, 0.42, 0.47, 0.31,
        0.02, 0, 0.017, 0.28, 0.75, 0.43, 0.054, 0.0019, 0, 0.042, 0.48, 0.54, 0.31, 0.04, 0.00062, 0, 0.11, 0.54, 0.55,
        0.27, 0.031, 0, 0, 0.0072, 0.068, 0.074, 0.021, 0.0015, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.029, 0.15, 0.18, 0.19, 0.19, 0.043, 0.02, 0.12, 0.25, 0.24,
        0.22, 0.26, 0.054, 0.02, 0.066, 0.23, 0.17, 0.2, 0.12, 0.02, 0.02, 0.094, 0.21, 0.25, 0.24, 0.12, 0.02, 0.02,
        0.16, 0.25, 0.2, 0.26, 0.093, 0.02, 0.02, 0.023, 0.089, 0.088, 0.052, 0.02, 0.02,
      ],
    },
    {
      mean: [0.124, 0.172, 0.601, 1.96, 0.7, 0.999, 0.559, 0.374, 1.05, 0.441, 0.663, 0.84, 0.675],
      spread: [0.0303, 0.035, 0.144, 0.458, 0.0549, 0.0225, 0.301, 0.0714, 0.217, 0.0277, 0.142, 0.265, 0.249],
      coarseMean: [
        0, 0, 0, 0, 0, 0, 0, 0, 0.0011, 0.046, 0.25, 0.24, 0.026, 0.000065, 0.0000066, 0.048, 0.45, 0.41, 0.53, 0.13,
        0.00018, 0.00083, 0.1, 0.51, 0.48, 0.65, 0.061, 0.00021, 0.00075, 0.024, 0.17, 0.46, 0.36, 0.018, 0.000038,
        0.00018, 0.011, 0.13, 0.38, 0.17, 0.02, 0.00048, 0.000019, 0.016, 0.1, 0.12, 0.069, 0.011, 0.00028,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.085, 0.14, 0.15, 0.055, 0.02, 0.02, 0.11, 0.19, 0.19,
        0.2, 0.19, 0.02, 0.02, 0.18, 0.21, 0.2, 0.18, 0.13, 0.02, 0.02, 0.083, 0.19, 0.22, 0.23, 0.072, 0.02, 0.02,
        0.047, 0.2, 0.26, 0.23, 0.091, 0.02, 0.02, 0.055, 0.13, 0.13, 0.11, 0.047, 0.02,
      ],
    },
  ],
};

const NOT_HANDWRITING: Verdict = {
  isDigit: false,
  reason: 'not_handwriting',
  message: 'the ink does not look like one handwritten digit (noise, a photo, a filled shape or a scribble?)',
};

/** How far each group of features pulls `values` from a digit under `score`. */
function pulls(score: VerdictScore, values: readonly number[]): { model: number; ink: number } {
  let model = 0;
  let ink = 0;
  VERDICT_FEATURES.forEach((name, i) => {
    const { digit, weight } = score.features[name];
    const pull = weight * (values[i]! - digit);
    if (MODEL_FEATURES.has(name)) model += pull;
    else ink += pull;
  });
  return { model, ink };
}

/**
 * The verdict on one input the model saw. `marks` of 2 or more is several
 * marks whatever the scores. A flagged input is `undecided` when, under every
 * family's score that flags it, the model's uncertainty pulls it further from
 * a digit than its ink does; otherwise it is not handwriting. An unflagged
 * one is still undecided when the model's top two are too close.
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
  const values = verdictFeatures(seen.input, seen.probabilities, weights.profiles);
  if (values[INK_FEATURES.indexOf('litShare')] === 0) return NO_INK;
  // Preprocessing stretches an upload's ink to full white and MNIST's strokes reach it: a haze that never does is not a stroke.
  if (values[INK_FEATURES.indexOf('inkShare')] === 0) return NOT_HANDWRITING;
  let flagged = false;
  for (const family of NON_DIGIT_FAMILIES) {
    const score = weights.scores[family];
    const { model, ink } = pulls(score, values);
    if (score.bias + model + ink <= score.threshold) continue;
    if (ink >= model) return NOT_HANDWRITING;
    flagged = true;
  }
  if (!flagged && values[VERDICT_FEATURES.indexOf('margin')]! >= weights.undecidedMargin) return IS_DIGIT;
  const [first, second] = topTwo(seen.probabilities);
  return { isDigit: false, reason: 'undecided', message: `the model cannot decide between ${first} and ${second}` };
}
