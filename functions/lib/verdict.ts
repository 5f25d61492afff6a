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
 * non-digit, and, for the stray strokes those miss, a small learned score on
 * the pixels and the same features (verdict-net.ts). All are fitted on MNIST
 * training digits (raw and re-rendered as canvas drawings and paper photos)
 * against synthetic non-digits (scripts/bench/non-digits.ts). The constants
 * below are printed, and the learned score's weights written, by
 * `npm run bench -- verdict --fit`; refit both together whenever the
 * preprocessing, the model or the features change.
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
  /** The learned score on pixels and features (verdict-net.ts), for the stray strokes the families miss. */
  net: VerdictNet;
}

/** Printed by `npm run bench -- verdict --fit`, which writes the net's weights into verdict-weights.ts. */
export const VERDICT_WEIGHTS: VerdictWeights = {
  net: decodeNet(VERDICT_NET),
  scores: {
    noise: {
      bias: -8.123,
      threshold: 8.335,
      features: {
        inkShare: { digit: 0.135, weight: -46.99 },
        litShare: { digit: 0.1789, weight: 9.516 },
        greyShare: { digit: 0.5265, weight: 15.18 },
        thickness: { digit: 2.085, weight: 3.345 },
        pieces: { digit: 0.7049, weight: 4.644 },
        largestPiece: { digit: 0.9957, weight: -5.881 },
        holes: { digit: 0.3202, weight: 0.9037 },
        boxFill: { digit: 0.3727, weight: 8.934 },
        roughness: { digit: 1.02, weight: -0.519 },
        spread: { digit: 0.48, weight: 18.37 },
        aspect: { digit: 0.7738, weight: 0.3562 },
        ends: { digit: 0.987, weight: 0.2856 },
        forks: { digit: 0.4958, weight: 0.1255 },
        top: { digit: 0.9702, weight: -0.3455 },
        margin: { digit: 0.9492, weight: 0.7478 },
        entropy: { digit: 0.1467, weight: 1.723 },
        unlikeItsDigit: { digit: 0.5678, weight: 0.9671 },
        unlikeItsShape: { digit: 0.4629, weight: 2.277 },
      },
    },
    blob: {
      bias: -12.25,
      threshold: 12.77,
      features: {
        inkShare: { digit: 0.135, weight: -41.46 },
        litShare: { digit: 0.1789, weight: 5.202 },
        greyShare: { digit: 0.5265, weight: 19.59 },
        thickness: { digit: 2.085, weight: 1.79 },
        pieces: { digit: 0.7049, weight: -7.867 },
        largestPiece: { digit: 0.9957, weight: 3.443 },
        holes: { digit: 0.3202, weight: -1.559 },
        boxFill: { digit: 0.3727, weight: 7.76 },
        roughness: { digit: 1.02, weight: -23.8 },
        spread: { digit: 0.48, weight: 7.813 },
        aspect: { digit: 0.7738, weight: 8.924 },
        ends: { digit: 0.987, weight: -2.103 },
        forks: { digit: 0.4958, weight: -0.1022 },
        top: { digit: 0.9702, weight: 2.694 },
        margin: { digit: 0.9492, weight: -1.537 },
        entropy: { digit: 0.1467, weight: 1.354 },
        unlikeItsDigit: { digit: 0.5678, weight: 1.959 },
        unlikeItsShape: { digit: 0.4629, weight: 0.3245 },
      },
    },
    strokes: {
      bias: -2.919,
      threshold: 10.17,
      features: {
        inkShare: { digit: 0.135, weight: 33.92 },
        litShare: { digit: 0.1789, weight: -31.9 },
        greyShare: { digit: 0.5265, weight: 5.089 },
        thickness: { digit: 2.085, weight: -1.486 },
        pieces: { digit: 0.7049, weight: -4.598 },
        largestPiece: { digit: 0.9957, weight: -4.912 },
        holes: { digit: 0.3202, weight: -0.6961 },
        boxFill: { digit: 0.3727, weight: 9.175 },
        roughness: { digit: 1.02, weight: -2.558 },
        spread: { digit: 0.48, weight: 11.51 },
        aspect: { digit: 0.7738, weight: 2.609 },
        ends: { digit: 0.987, weight: -0.4732 },
        forks: { digit: 0.4958, weight: 0.9976 },
        top: { digit: 0.9702, weight: 18.11 },
        margin: { digit: 0.9492, weight: -4.175 },
        entropy: { digit: 0.1467, weight: 5.772 },
        unlikeItsDigit: { digit: 0.5678, weight: 1.196 },
        unlikeItsShape: { digit: 0.4629, weight: 2.011 },
      },
    },
  },
  undecidedMargin: 0.02304,
  // Per digit 0–9: mean and spread of the ink features (INK_FEATURES order), then of the 7×7 coarse image.
  profiles: [
    {
      mean: [0.181, 0.234, 0.482, 2.34, 0.698, 0.999, 0.641, 0.427, 0.919, 0.535, 0.909, 0.226, 0.159],
      spread: [0.0429, 0.0447, 0.116, 0.636, 0.0478, 0.02, 0.24, 0.0872, 0.241, 0.039, 0.19, 0.408, 0.35],
      coarseMean: [
        0, 0.00016, 0.00042, 0.0034, 0.003, 0.00027, 0, 0.000017, 0.0067, 0.14, 0.48, 0.54, 0.18, 0.0016, 0.000055,
        0.073, 0.5, 0.5, 0.44, 0.48, 0.015, 0.000029, 0.28, 0.53, 0.087, 0.21, 0.52, 0.027, 0.00028, 0.42, 0.41, 0.14,
        0.47, 0.33, 0.011, 0.00018, 0.23, 0.64, 0.62, 0.37, 0.063, 0.00099, 0, 0.002, 0.022, 0.027, 0.0055, 0.00024,
        0.00001,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.039, 0.19, 0.24, 0.24, 0.2, 0.02, 0.02, 0.14, 0.25, 0.29,
        0.27, 0.25, 0.045, 0.02, 0.24, 0.25, 0.15, 0.23, 0.23, 0.063, 0.02, 0.27, 0.25, 0.19, 0.27, 0.25, 0.041, 0.02,
        0.22, 0.2, 0.19, 0.24, 0.13, 0.02, 0.02, 0.02, 0.057, 0.062, 0.024, 0.02, 0.02,
      ],
    },
    {
      mean: [0.0804, 0.106, 0.514, 2.14, 0.703, 0.999, 0.00568, 0.421, 0.988, 0.429, 0.435, 1.11, 0.0298],
      spread: [0.0232, 0.0257, 0.12, 0.516, 0.0683, 0.02, 0.0767, 0.172, 0.232, 0.031, 0.195, 0.0919, 0.168],
      coarseMean: [
        0, 0, 0.00011, 0.0016, 0.0014, 0.00019, 0, 0.000026, 0.00048, 0.014, 0.23, 0.32, 0.057, 0.00023, 0.000059,
        0.00047, 0.012, 0.43, 0.35, 0.012, 0.000033, 0.000047, 0.0004, 0.017, 0.67, 0.13, 0.00045, 0.000011, 0.000047,
        0.0019, 0.16, 0.62, 0.041, 0.0016, 0.00016, 0.000098, 0.023, 0.32, 0.38, 0.059, 0.0017, 0.00028, 0, 0.0015,
        0.018, 0.018, 0.0026, 0.000024, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.067, 0.23, 0.25, 0.13, 0.02, 0.02, 0.02, 0.064, 0.23,
        0.28, 0.046, 0.02, 0.02, 0.02, 0.049, 0.15, 0.13, 0.02, 0.02, 0.02, 0.02, 0.2, 0.17, 0.097, 0.02, 0.02, 0.02,
        0.086, 0.31, 0.25, 0.14, 0.021, 0.02, 0.02, 0.02, 0.043, 0.04, 0.02, 0.02, 0.02,
      ],
    },
    {
      mean: [0.153, 0.201, 0.512, 2.18, 0.7, 0.998, 0.331, 0.36, 0.977, 0.51, 0.959, 1.19, 0.709],
      spread: [0.0404, 0.0442, 0.121, 0.585, 0.0536, 0.0225, 0.381, 0.0777, 0.254, 0.0377, 0.234, 0.199, 0.459],
      coarseMean: [
        0, 0.0013, 0.017, 0.042, 0.025, 0.0026, 0.000019, 0.00024, 0.048, 0.28, 0.51, 0.46, 0.11, 0.00039, 0.00031,
        0.047, 0.15, 0.22, 0.47, 0.17, 0.00051, 0.00027, 0.035, 0.17, 0.38, 0.48, 0.1, 0.0051, 0.0058, 0.27, 0.57, 0.67,
        0.49, 0.23, 0.031, 0.0074, 0.22, 0.44, 0.32, 0.26, 0.15, 0.011, 0.000012, 0.0018, 0.004, 0.0047, 0.0031, 0.0014,
        0.000066,
      ],
      coarseSpread: [
        0.02, 0.02, 0.05, 0.081, 0.056, 0.02, 0.02, 0.02, 0.12, 0.25, 0.23, 0.26, 0.18, 0.02, 0.02, 0.12, 0.22, 0.24,
        0.24, 0.23, 0.02, 0.02, 0.084, 0.2, 0.25, 0.26, 0.16, 0.028, 0.025, 0.27, 0.26, 0.23, 0.28, 0.24, 0.072, 0.031,
        0.24, 0.25, 0.25, 0.24, 0.18, 0.038, 0.02, 0.02, 0.022, 0.029, 0.021, 0.02, 0.02,
      ],
    },
    {
      mean: [0.147, 0.196, 0.528, 2.04, 0.706, 0.994, 0.0509, 0.371, 1.04, 0.514, 0.807, 1.3, 0.536],
      spread: [0.0399, 0.0445, 0.116, 0.509, 0.0846, 0.0457, 0.194, 0.0802, 0.249, 0.032, 0.177, 0.202, 0.355],
      coarseMean: [
        0, 0.00014, 0.0017, 0.0047, 0.0037, 0.00033, 0, 0.0018, 0.068, 0.32, 0.54, 0.43, 0.09, 0, 0.0028, 0.055, 0.16,
        0.38, 0.52, 0.11, 0, 0.00032, 0.016, 0.27, 0.63, 0.51, 0.073, 0.00017, 0.0082, 0.09, 0.092, 0.15, 0.5, 0.16,
        0.00068, 0.012, 0.25, 0.5, 0.56, 0.4, 0.062, 0.000076, 0.00028, 0.016, 0.057, 0.06, 0.016, 0.0011, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.026, 0.024, 0.02, 0.02, 0.02, 0.13, 0.24, 0.19, 0.26, 0.15, 0.02, 0.02, 0.13, 0.18, 0.24,
        0.24, 0.18, 0.02, 0.02, 0.056, 0.23, 0.21, 0.23, 0.13, 0.02, 0.036, 0.16, 0.15, 0.19, 0.22, 0.22, 0.02, 0.04,
        0.25, 0.25, 0.2, 0.24, 0.12, 0.02, 0.02, 0.051, 0.091, 0.094, 0.05, 0.02, 0.02,
      ],
    },
    {
      mean: [0.126, 0.17, 0.545, 2.01, 0.704, 0.997, 0.0651, 0.322, 1.04, 0.444, 0.802, 1.47, 0.881],
      spread: [0.0337, 0.0364, 0.12, 0.505, 0.0667, 0.035, 0.215, 0.0684, 0.237, 0.0376, 0.184, 0.162, 0.29],
      coarseMean: [
        0, 0, 0.000041, 0.00049, 0.0015, 0.0012, 0.000015, 0.00024, 0.021, 0.1, 0.098, 0.16, 0.14, 0.012, 0.0011, 0.084,
        0.39, 0.19, 0.42, 0.21, 0.0049, 0.0018, 0.22, 0.62, 0.4, 0.65, 0.14, 0.0031, 0.0007, 0.11, 0.31, 0.51, 0.46,
        0.063, 0.0014, 7.3e-7, 0.0045, 0.083, 0.31, 0.23, 0.035, 0.00049, 0, 0.0011, 0.023, 0.049, 0.035, 0.006,
        0.000039,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.072, 0.14, 0.14, 0.17, 0.17, 0.039, 0.02, 0.18, 0.23, 0.21,
        0.22, 0.24, 0.029, 0.02, 0.23, 0.2, 0.24, 0.18, 0.18, 0.02, 0.02, 0.16, 0.23, 0.24, 0.25, 0.13, 0.02, 0.02,
        0.032, 0.16, 0.26, 0.26, 0.11, 0.02, 0.02, 0.02, 0.056, 0.076, 0.065, 0.027, 0.02,
      ],
    },
    {
      mean: [0.129, 0.177, 0.568, 1.87, 0.731, 0.977, 0.0286, 0.32, 1.11, 0.504, 0.985, 1.19, 0.17],
      spread: [0.0378, 0.0432, 0.116, 0.438, 0.128, 0.0845, 0.144, 0.0799, 0.241, 0.0389, 0.28, 0.196, 0.322],
      coarseMean: [
        0, 0, 0.0001, 0.0018, 0.0026, 0.0022, 0.00013, 0, 0.012, 0.13, 0.3, 0.33, 0.23, 0.043, 0.000011, 0.037, 0.37,
        0.45, 0.27, 0.16, 0.034, 0.00018, 0.055, 0.47, 0.48, 0.29, 0.055, 0.00083, 0.00062, 0.11, 0.15, 0.25, 0.39,
        0.12, 0.0021, 0.00046, 0.13, 0.43, 0.48, 0.31, 0.052, 0.00049, 0.000015, 0.0045, 0.043, 0.057, 0.016, 0.0012, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.054, 0.19, 0.25, 0.24, 0.22, 0.071, 0.02, 0.1, 0.26, 0.24,
        0.23, 0.2, 0.067, 0.02, 0.12, 0.25, 0.21, 0.25, 0.13, 0.02, 0.02, 0.15, 0.18, 0.24, 0.25, 0.2, 0.02, 0.02, 0.16,
        0.22, 0.23, 0.26, 0.13, 0.02, 0.02, 0.022, 0.086, 0.097, 0.053, 0.02, 0.02,
      ],
    },
    {
      mean: [0.141, 0.186, 0.519, 2.12, 0.704, 0.998, 0.59, 0.395, 1.02, 0.458, 0.714, 0.83, 0.664],
      spread: [0.039, 0.0417, 0.125, 0.639, 0.0697, 0.024, 0.36, 0.0783, 0.276, 0.0339, 0.163, 0.223, 0.425],
      coarseMean: [
        0.0000095, 0.0014, 0.015, 0.069, 0.11, 0.019, 0.00023, 0.000023, 0.0081, 0.11, 0.4, 0.29, 0.032, 0.00059, 0,
        0.026, 0.31, 0.41, 0.088, 0.041, 0.0018, 0, 0.069, 0.54, 0.42, 0.51, 0.27, 0.014, 0, 0.088, 0.62, 0.58, 0.56,
        0.25, 0.0089, 0, 0.015, 0.25, 0.45, 0.24, 0.026, 0.00012, 0, 0, 0.000037, 0.000084, 0, 0, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.056, 0.096, 0.11, 0.051, 0.02, 0.02, 0.047, 0.19, 0.24, 0.26, 0.095, 0.02, 0.02, 0.088, 0.25,
        0.26, 0.13, 0.11, 0.02, 0.02, 0.14, 0.22, 0.25, 0.24, 0.26, 0.054, 0.02, 0.15, 0.2, 0.27, 0.24, 0.24, 0.039,
        0.02, 0.048, 0.18, 0.15, 0.18, 0.066, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02,
      ],
    },
    {
      mean: [0.119, 0.159, 0.526, 2.07, 0.702, 0.997, 0.0154, 0.316, 1.02, 0.487, 0.773, 1.18, 0.188],
      spread: [0.0328, 0.0364, 0.121, 0.515, 0.0642, 0.0338, 0.106, 0.0706, 0.239, 0.0334, 0.182, 0.178, 0.376],
      coarseMean: [
        0, 0, 0, 0, 0, 0, 0, 0.00071, 0.024, 0.095, 0.14, 0.13, 0.032, 0.00032, 0.013, 0.21, 0.52, 0.53, 0.66, 0.21,
        0.0015, 0.0038, 0.082, 0.14, 0.15, 0.59, 0.099, 0.0012, 0.00043, 0.013, 0.059, 0.45, 0.36, 0.026, 0.00058,
        0.000042, 0.011, 0.2, 0.45, 0.13, 0.0058, 0.000022, 0.000034, 0.025, 0.17, 0.18, 0.054, 0.004, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.058, 0.12, 0.14, 0.13, 0.062, 0.02, 0.052, 0.23, 0.23, 0.21,
        0.19, 0.24, 0.02, 0.022, 0.16, 0.2, 0.17, 0.19, 0.16, 0.02, 0.02, 0.058, 0.13, 0.26, 0.24, 0.084, 0.02, 0.02,
        0.054, 0.25, 0.24, 0.2, 0.042, 0.02, 0.02, 0.074, 0.19, 0.18, 0.12, 0.034, 0.02,
      ],
    },
    {
      mean: [0.155, 0.205, 0.532, 2.07, 0.702, 0.998, 0.947, 0.413, 1.04, 0.484, 0.761, 0.513, 0.99],
      spread: [0.0402, 0.042, 0.126, 0.645, 0.0716, 0.02, 0.303, 0.0892, 0.272, 0.0292, 0.174, 0.529, 0.461],
      coarseMean: [
        0, 0, 0.000038, 0.00029, 0.001, 0.00021, 0, 0, 0.0095, 0.15, 0.44, 0.45, 0.17, 0.0098, 0.000038, 0.051, 0.4,
        0.4, 0.47, 0.29, 0.019, 0.000024, 0.027, 0.32, 0.72, 0.43, 0.058, 0.0032, 0.000028, 0.043, 0.44, 0.53, 0.31,
        0.049, 0.0012, 0.000044, 0.098, 0.5, 0.55, 0.3, 0.041, 0.00035, 0, 0.0067, 0.067, 0.09, 0.026, 0.002, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.041, 0.18, 0.19, 0.2, 0.19, 0.038, 0.02, 0.13, 0.25, 0.25,
        0.23, 0.27, 0.057, 0.02, 0.09, 0.24, 0.19, 0.21, 0.13, 0.025, 0.02, 0.1, 0.23, 0.27, 0.25, 0.13, 0.02, 0.02,
        0.16, 0.25, 0.2, 0.26, 0.12, 0.02, 0.02, 0.024, 0.091, 0.1, 0.06, 0.02, 0.02,
      ],
    },
    {
      mean: [0.127, 0.17, 0.545, 1.98, 0.703, 0.998, 0.594, 0.376, 1.07, 0.445, 0.669, 0.834, 0.71],
      spread: [0.0345, 0.0371, 0.123, 0.522, 0.0711, 0.02, 0.32, 0.0733, 0.246, 0.0318, 0.143, 0.264, 0.312],
      coarseMean: [
        0, 0, 0, 0, 0, 0, 0, 0.0000063, 0.0021, 0.061, 0.26, 0.22, 0.028, 0.00013, 0.00014, 0.067, 0.47, 0.41, 0.53,
        0.13, 0.00088, 0.00082, 0.13, 0.5, 0.46, 0.64, 0.073, 0.00038, 0.00029, 0.035, 0.2, 0.44, 0.39, 0.026, 0.00012,
        0.00011, 0.0069, 0.11, 0.36, 0.22, 0.031, 0.00059, 0.0000055, 0.0094, 0.088, 0.13, 0.084, 0.017, 0.00017,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.1, 0.14, 0.15, 0.065, 0.02, 0.02, 0.14, 0.19, 0.22,
        0.21, 0.19, 0.02, 0.02, 0.2, 0.21, 0.22, 0.19, 0.14, 0.02, 0.02, 0.099, 0.21, 0.23, 0.23, 0.093, 0.02, 0.02,
        0.04, 0.19, 0.27, 0.25, 0.11, 0.02, 0.02, 0.043, 0.13, 0.14, 0.13, 0.062, 0.02,
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
 * a digit than its ink does; otherwise it is not handwriting. The learned
 * score has no such groups, so an input it alone flags is weighed the same way
 * under the strokes family's score, the kind of non-digit it is there for. An
 * unflagged one is still undecided when the model's top two are too close.
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
  if (!flagged && netLogit(weights.net, seen.input, values) > weights.net.threshold) {
    const { model, ink } = pulls(weights.scores.strokes, values);
    if (ink >= model) return NOT_HANDWRITING;
    flagged = true;
  }
  if (!flagged && values[VERDICT_FEATURES.indexOf('margin')]! >= weights.undecidedMargin) return IS_DIGIT;
  const [first, second] = topTwo(seen.probabilities);
  return { isDigit: false, reason: 'undecided', message: `the model cannot decide between ${first} and ${second}` };
}
