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
      bias: -7.959,
      threshold: 8.763,
      features: {
        inkShare: { digit: 0.1366, weight: -69.16 },
        litShare: { digit: 0.1825, weight: 18.74 },
        greyShare: { digit: 0.5444, weight: 14.12 },
        thickness: { digit: 2.119, weight: 3.96 },
        pieces: { digit: 0.7041, weight: 4.278 },
        largestPiece: { digit: 0.9957, weight: -6.279 },
        holes: { digit: 0.3155, weight: 1.248 },
        boxFill: { digit: 0.377, weight: 8.805 },
        roughness: { digit: 1, weight: 0.656 },
        spread: { digit: 0.4792, weight: 17.34 },
        aspect: { digit: 0.774, weight: 0.2378 },
        ends: { digit: 0.9878, weight: -0.01198 },
        forks: { digit: 0.4883, weight: 0.2323 },
        unlikeItsDigit: { digit: 0.5707, weight: 1.284 },
        unlikeItsShape: { digit: 0.4591, weight: 3.041 },
      },
    },
    blob: {
      bias: -10.8,
      threshold: 13.96,
      features: {
        inkShare: { digit: 0.1366, weight: -41.31 },
        litShare: { digit: 0.1825, weight: -1.005 },
        greyShare: { digit: 0.5444, weight: 13.47 },
        thickness: { digit: 2.119, weight: 1.643 },
        pieces: { digit: 0.7041, weight: -7.013 },
        largestPiece: { digit: 0.9957, weight: 6.402 },
        holes: { digit: 0.3155, weight: -0.581 },
        boxFill: { digit: 0.377, weight: 10.51 },
        roughness: { digit: 1, weight: -20.33 },
        spread: { digit: 0.4792, weight: 11.91 },
        aspect: { digit: 0.774, weight: 9.576 },
        ends: { digit: 0.9878, weight: -1.555 },
        forks: { digit: 0.4883, weight: -0.2357 },
        unlikeItsDigit: { digit: 0.5707, weight: 1.991 },
        unlikeItsShape: { digit: 0.4591, weight: 0.8713 },
      },
    },
    strokes: {
      bias: -2.157,
      threshold: 12.02,
      features: {
        inkShare: { digit: 0.1366, weight: 51.22 },
        litShare: { digit: 0.1825, weight: -44.5 },
        greyShare: { digit: 0.5444, weight: 4.044 },
        thickness: { digit: 2.119, weight: -2.157 },
        pieces: { digit: 0.7041, weight: -5.624 },
        largestPiece: { digit: 0.9957, weight: -2.31 },
        holes: { digit: 0.3155, weight: -1.024 },
        boxFill: { digit: 0.377, weight: 8.821 },
        roughness: { digit: 1, weight: -0.9445 },
        spread: { digit: 0.4792, weight: 4.72 },
        aspect: { digit: 0.774, weight: 2.082 },
        ends: { digit: 0.9878, weight: -0.8156 },
        forks: { digit: 0.4883, weight: 1.183 },
        unlikeItsDigit: { digit: 0.5707, weight: 1.895 },
        unlikeItsShape: { digit: 0.4591, weight: 3.133 },
      },
    },
  },
  undecidedMargin: 0.03567,
  // Per digit 0–9: mean and spread of the ink features (INK_FEATURES order), then of the 7×7 coarse image.
  profiles: [
    {
      mean: [0.183, 0.237, 0.499, 2.37, 0.698, 0.999, 0.641, 0.43, 0.906, 0.535, 0.912, 0.213, 0.145],
      spread: [0.0433, 0.0455, 0.132, 0.649, 0.0439, 0.02, 0.233, 0.0882, 0.239, 0.039, 0.193, 0.398, 0.333],
      coarseMean: [
        0, 0.00011, 0.00033, 0.003, 0.0026, 0.00027, 0, 0.000012, 0.0055, 0.14, 0.48, 0.54, 0.18, 0.0025, 0.00004, 0.07,
        0.51, 0.51, 0.45, 0.48, 0.015, 0.00008, 0.28, 0.54, 0.087, 0.22, 0.52, 0.025, 0.00053, 0.42, 0.41, 0.14, 0.48,
        0.34, 0.01, 0.00062, 0.23, 0.64, 0.62, 0.37, 0.059, 0.00066, 0, 0.0021, 0.022, 0.027, 0.005, 0.00018, 0.0000074,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.034, 0.19, 0.24, 0.24, 0.21, 0.02, 0.02, 0.13, 0.24, 0.3,
        0.27, 0.25, 0.046, 0.02, 0.24, 0.25, 0.15, 0.24, 0.23, 0.059, 0.02, 0.27, 0.25, 0.2, 0.27, 0.25, 0.038, 0.02,
        0.22, 0.2, 0.19, 0.23, 0.12, 0.02, 0.02, 0.02, 0.056, 0.063, 0.023, 0.02, 0.02,
      ],
    },
    {
      mean: [0.0815, 0.108, 0.528, 2.17, 0.702, 0.999, 0.0022, 0.425, 0.973, 0.428, 0.436, 1.11, 0.0262],
      spread: [0.0238, 0.0269, 0.134, 0.535, 0.0659, 0.02, 0.041, 0.174, 0.228, 0.0309, 0.194, 0.0842, 0.148],
      coarseMean: [
        0, 0.0000022, 0.00016, 0.0013, 0.0011, 0.00015, 0, 0.000019, 0.0007, 0.015, 0.23, 0.32, 0.055, 0.00029,
        0.000042, 0.00056, 0.013, 0.44, 0.36, 0.011, 0.000024, 0.000033, 0.00064, 0.021, 0.68, 0.13, 0.00028, 0.0000081,
        0.000033, 0.0021, 0.16, 0.62, 0.042, 0.002, 0.00035, 0.00007, 0.022, 0.31, 0.38, 0.057, 0.0022, 0.00032, 0,
        0.0012, 0.019, 0.019, 0.0028, 0.000019, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.069, 0.23, 0.25, 0.13, 0.02, 0.02, 0.02, 0.066, 0.23,
        0.28, 0.042, 0.02, 0.02, 0.02, 0.057, 0.15, 0.14, 0.02, 0.02, 0.02, 0.02, 0.2, 0.17, 0.099, 0.024, 0.02, 0.02,
        0.083, 0.3, 0.25, 0.13, 0.025, 0.02, 0.02, 0.02, 0.046, 0.041, 0.02, 0.02, 0.02,
      ],
    },
    {
      mean: [0.155, 0.205, 0.533, 2.21, 0.702, 0.997, 0.33, 0.365, 0.96, 0.509, 0.959, 1.19, 0.699],
      spread: [0.0405, 0.0449, 0.137, 0.598, 0.0642, 0.028, 0.38, 0.077, 0.249, 0.0375, 0.234, 0.206, 0.46],
      coarseMean: [
        0, 0.0013, 0.017, 0.044, 0.024, 0.0025, 0.000027, 0.00038, 0.047, 0.29, 0.52, 0.45, 0.11, 0.00051, 0.00034,
        0.048, 0.15, 0.22, 0.47, 0.18, 0.00058, 0.00047, 0.039, 0.18, 0.39, 0.49, 0.1, 0.0052, 0.0064, 0.28, 0.57, 0.67,
        0.5, 0.24, 0.031, 0.0066, 0.22, 0.44, 0.32, 0.25, 0.14, 0.012, 0.0000082, 0.0016, 0.004, 0.0046, 0.0039, 0.0015,
        0.000046,
      ],
      coarseSpread: [
        0.02, 0.02, 0.052, 0.082, 0.057, 0.02, 0.02, 0.02, 0.11, 0.25, 0.23, 0.26, 0.18, 0.02, 0.02, 0.12, 0.21, 0.24,
        0.23, 0.23, 0.02, 0.02, 0.089, 0.2, 0.25, 0.25, 0.16, 0.027, 0.027, 0.27, 0.26, 0.24, 0.28, 0.25, 0.07, 0.029,
        0.23, 0.25, 0.26, 0.24, 0.18, 0.039, 0.02, 0.02, 0.023, 0.028, 0.026, 0.02, 0.02,
      ],
    },
    {
      mean: [0.149, 0.199, 0.545, 2.07, 0.705, 0.995, 0.0438, 0.376, 1.02, 0.512, 0.804, 1.3, 0.532],
      spread: [0.0406, 0.0465, 0.13, 0.525, 0.078, 0.0431, 0.178, 0.0831, 0.244, 0.0326, 0.178, 0.181, 0.358],
      coarseMean: [
        0, 0.000099, 0.0017, 0.0047, 0.0037, 0.00029, 0, 0.0015, 0.066, 0.32, 0.54, 0.43, 0.091, 0.000061, 0.0023,
        0.053, 0.17, 0.4, 0.53, 0.11, 0.000043, 0.00025, 0.017, 0.27, 0.64, 0.51, 0.07, 0.00015, 0.0073, 0.091, 0.098,
        0.17, 0.51, 0.15, 0.0007, 0.011, 0.24, 0.5, 0.57, 0.39, 0.061, 0.00014, 0.00023, 0.016, 0.06, 0.061, 0.015,
        0.0014, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.025, 0.024, 0.02, 0.02, 0.02, 0.13, 0.23, 0.19, 0.25, 0.15, 0.02, 0.02, 0.12, 0.19, 0.24,
        0.24, 0.18, 0.02, 0.02, 0.058, 0.24, 0.21, 0.23, 0.13, 0.02, 0.033, 0.16, 0.15, 0.21, 0.22, 0.22, 0.02, 0.038,
        0.25, 0.25, 0.2, 0.24, 0.13, 0.02, 0.02, 0.05, 0.094, 0.095, 0.048, 0.02, 0.02,
      ],
    },
    {
      mean: [0.127, 0.174, 0.564, 2.05, 0.701, 0.997, 0.0553, 0.326, 1.02, 0.443, 0.798, 1.47, 0.87],
      spread: [0.0348, 0.0388, 0.136, 0.531, 0.059, 0.032, 0.197, 0.0707, 0.235, 0.038, 0.177, 0.146, 0.286],
      coarseMean: [
        0, 0.000029, 0.000094, 0.0006, 0.0013, 0.0012, 0.00001, 0.00019, 0.021, 0.11, 0.096, 0.16, 0.14, 0.011, 0.0013,
        0.088, 0.4, 0.19, 0.43, 0.2, 0.0049, 0.0023, 0.22, 0.62, 0.41, 0.65, 0.14, 0.0032, 0.00064, 0.11, 0.32, 0.52,
        0.47, 0.068, 0.0018, 5.5e-7, 0.0054, 0.079, 0.32, 0.23, 0.036, 0.0006, 0, 0.00099, 0.022, 0.051, 0.036, 0.0054,
        0.000027,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.072, 0.14, 0.14, 0.17, 0.17, 0.038, 0.02, 0.18, 0.23, 0.22,
        0.22, 0.24, 0.029, 0.023, 0.23, 0.21, 0.24, 0.18, 0.18, 0.02, 0.02, 0.16, 0.24, 0.24, 0.25, 0.14, 0.02, 0.02,
        0.032, 0.15, 0.27, 0.25, 0.12, 0.02, 0.02, 0.02, 0.056, 0.079, 0.067, 0.026, 0.02,
      ],
    },
    {
      mean: [0.133, 0.183, 0.584, 1.92, 0.73, 0.977, 0.0287, 0.327, 1.08, 0.504, 0.98, 1.18, 0.161],
      spread: [0.039, 0.0454, 0.131, 0.472, 0.126, 0.0847, 0.142, 0.0834, 0.241, 0.0378, 0.273, 0.192, 0.316],
      coarseMean: [
        0, 0, 0.00016, 0.002, 0.0026, 0.0021, 0.00012, 0, 0.011, 0.13, 0.32, 0.35, 0.24, 0.044, 0.0000073, 0.039, 0.38,
        0.46, 0.27, 0.16, 0.035, 0.00015, 0.057, 0.47, 0.48, 0.3, 0.053, 0.00085, 0.00069, 0.11, 0.16, 0.26, 0.41, 0.12,
        0.0015, 0.00055, 0.14, 0.45, 0.5, 0.32, 0.051, 0.00043, 0.00001, 0.0041, 0.041, 0.056, 0.015, 0.001, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.05, 0.2, 0.26, 0.25, 0.22, 0.072, 0.02, 0.11, 0.27, 0.24,
        0.23, 0.2, 0.069, 0.02, 0.12, 0.25, 0.21, 0.25, 0.12, 0.02, 0.02, 0.15, 0.18, 0.25, 0.25, 0.2, 0.02, 0.02, 0.16,
        0.22, 0.23, 0.26, 0.13, 0.02, 0.02, 0.022, 0.084, 0.096, 0.049, 0.02, 0.02,
      ],
    },
    {
      mean: [0.142, 0.189, 0.539, 2.16, 0.703, 0.998, 0.586, 0.402, 0.994, 0.456, 0.707, 0.829, 0.657],
      spread: [0.039, 0.0423, 0.141, 0.665, 0.0662, 0.0222, 0.359, 0.0796, 0.271, 0.0335, 0.16, 0.22, 0.425],
      coarseMean: [
        0.0000066, 0.00098, 0.014, 0.069, 0.12, 0.019, 0.00016, 0.000016, 0.0068, 0.1, 0.41, 0.29, 0.03, 0.0006, 0,
        0.023, 0.31, 0.42, 0.089, 0.038, 0.0019, 0, 0.064, 0.54, 0.44, 0.51, 0.26, 0.012, 0, 0.082, 0.63, 0.58, 0.57,
        0.24, 0.0075, 0, 0.015, 0.25, 0.46, 0.25, 0.027, 0.00012, 0, 0, 0.000027, 0.00022, 0.000071, 0, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.052, 0.094, 0.11, 0.051, 0.02, 0.02, 0.043, 0.19, 0.24, 0.26, 0.091, 0.02, 0.02, 0.084, 0.24,
        0.26, 0.13, 0.1, 0.02, 0.02, 0.13, 0.22, 0.25, 0.25, 0.26, 0.05, 0.02, 0.15, 0.21, 0.26, 0.24, 0.23, 0.036,
        0.02, 0.046, 0.18, 0.16, 0.18, 0.068, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02,
      ],
    },
    {
      mean: [0.121, 0.162, 0.542, 2.11, 0.701, 0.997, 0.014, 0.32, 0.996, 0.486, 0.772, 1.18, 0.182],
      spread: [0.0331, 0.0373, 0.133, 0.537, 0.059, 0.0292, 0.0993, 0.0724, 0.235, 0.0329, 0.183, 0.176, 0.374],
      coarseMean: [
        0, 0, 0, 0, 0, 0, 0, 0.00072, 0.025, 0.096, 0.15, 0.13, 0.031, 0.00025, 0.014, 0.21, 0.53, 0.54, 0.67, 0.21,
        0.0015, 0.0042, 0.078, 0.13, 0.16, 0.59, 0.1, 0.0013, 0.00048, 0.015, 0.063, 0.46, 0.37, 0.029, 0.00071,
        0.00003, 0.011, 0.2, 0.46, 0.13, 0.0057, 0.000026, 0.000024, 0.024, 0.17, 0.18, 0.053, 0.0037, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.061, 0.12, 0.14, 0.13, 0.061, 0.02, 0.051, 0.23, 0.24, 0.21,
        0.19, 0.24, 0.02, 0.025, 0.16, 0.2, 0.18, 0.19, 0.17, 0.02, 0.02, 0.065, 0.14, 0.26, 0.24, 0.089, 0.02, 0.02,
        0.056, 0.25, 0.24, 0.2, 0.041, 0.02, 0.02, 0.073, 0.19, 0.18, 0.12, 0.034, 0.02,
      ],
    },
    {
      mean: [0.157, 0.209, 0.552, 2.09, 0.701, 0.998, 0.959, 0.416, 1.03, 0.484, 0.768, 0.496, 0.984],
      spread: [0.0406, 0.0437, 0.139, 0.652, 0.061, 0.02, 0.278, 0.0905, 0.268, 0.029, 0.18, 0.523, 0.457],
      coarseMean: [
        0, 1.6e-7, 0.00013, 0.00043, 0.00088, 0.0002, 0, 0, 0.0084, 0.15, 0.44, 0.45, 0.17, 0.0088, 0.000028, 0.049,
        0.4, 0.4, 0.47, 0.29, 0.018, 0.000015, 0.026, 0.32, 0.72, 0.44, 0.062, 0.0031, 0.000039, 0.049, 0.45, 0.53,
        0.32, 0.048, 0.0012, 0.000052, 0.11, 0.51, 0.55, 0.3, 0.038, 0.00026, 0, 0.0074, 0.066, 0.088, 0.025, 0.0018, 0,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.038, 0.17, 0.19, 0.2, 0.19, 0.035, 0.02, 0.13, 0.25, 0.24,
        0.23, 0.26, 0.055, 0.02, 0.087, 0.24, 0.19, 0.21, 0.13, 0.023, 0.02, 0.11, 0.23, 0.27, 0.25, 0.13, 0.02, 0.02,
        0.17, 0.25, 0.2, 0.26, 0.11, 0.02, 0.02, 0.025, 0.089, 0.098, 0.057, 0.02, 0.02,
      ],
    },
    {
      mean: [0.129, 0.174, 0.563, 2.01, 0.703, 0.998, 0.594, 0.38, 1.05, 0.444, 0.672, 0.83, 0.703],
      spread: [0.034, 0.0378, 0.136, 0.53, 0.0747, 0.0243, 0.307, 0.0742, 0.242, 0.0313, 0.143, 0.261, 0.293],
      coarseMean: [
        0, 0, 0, 0, 0, 0, 0, 0.0000046, 0.0023, 0.063, 0.26, 0.23, 0.028, 0.000094, 0.00011, 0.065, 0.48, 0.42, 0.53,
        0.14, 0.00071, 0.001, 0.13, 0.51, 0.47, 0.65, 0.076, 0.00046, 0.00031, 0.033, 0.2, 0.45, 0.4, 0.027, 0.00026,
        0.000098, 0.0081, 0.12, 0.37, 0.21, 0.029, 0.00069, 0.0000039, 0.01, 0.09, 0.13, 0.08, 0.016, 0.00013,
      ],
      coarseSpread: [
        0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.11, 0.15, 0.16, 0.063, 0.02, 0.02, 0.13, 0.19, 0.21,
        0.21, 0.19, 0.02, 0.02, 0.19, 0.21, 0.22, 0.19, 0.14, 0.02, 0.02, 0.097, 0.21, 0.23, 0.24, 0.095, 0.02, 0.02,
        0.042, 0.2, 0.27, 0.25, 0.11, 0.02, 0.02, 0.044, 0.13, 0.14, 0.12, 0.059, 0.02,
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
