/**
 * An input profile: what a set of 28×28 model inputs and the answers given to
 * them look like, as histograms over fixed bins. Training stores one per
 * version (the MNIST test set with that version's answers, `profile.json`);
 * the live summary builds one from recent captures and compares the two
 * (`drift.ts`). The bins are fixed in code, never derived from the data, so
 * any two profiles are comparable bin by bin; a stored profile whose bins
 * differ from these is refused rather than compared.
 *
 * Pure and cheap: a few passes over 784 bytes per image, no tensors.
 */
import { MNIST_CLASSES, MNIST_PIXELS, MNIST_SIDE } from '../mnist-shape.ts';

/** Bumped when a feature's definition or bins change; a profile of another schema is not compared. */
export const PROFILE_SCHEMA = 1;
/** A profile is about 2 KB; anything far larger is refused before its body is read. */
export const PROFILE_MAX_BYTES = 64 * 1024;
export const PROFILE_FILE = 'profile.json';

/** A pixel is ink when it is above half of full white (0–255): MNIST's own 20 px box is measured at this level. */
const INK_LEVEL = 128;
/** The middle of the 28×28 frame in pixel-index coordinates. */
const FRAME_CENTRE = (MNIST_SIDE - 1) / 2;

/**
 * Bin edges per ink feature. A value falls in bin i when exactly i edges are
 * at or below it, so there are edges + 1 bins and both ends are open. They
 * were chosen near the deciles of the first 20,000 MNIST training digits,
 * with room in the tails for what MNIST never shows (a rotated digit's width,
 * an inverted one's ink share); see the README's drift section.
 */
export const INK_BINS = {
  /** Share of the 784 pixels that are ink. MNIST: 7% to 21% for 90% of digits. */
  inkShare: [0.07, 0.09, 0.1, 0.115, 0.13, 0.145, 0.16, 0.18, 0.21, 0.3, 0.5],
  /** Width of the ink's bounding box in pixels. MNIST: 20 at most; a 1 is 4 wide. */
  width: [6, 9, 11, 13, 14, 15, 16, 17, 19, 20, 21, 24],
  /** Height of the ink's bounding box in pixels. MNIST: 20 for four digits in five. */
  height: [12, 15, 17, 18, 19, 20, 21, 24],
  /** Distance of the centre of mass from the frame's centre, in pixels. MNIST: under 1.3 for 99%. */
  centreOffset: [0.25, 0.4, 0.55, 0.7, 0.85, 1, 1.2, 1.5, 2, 3],
  /** Stroke thickness in pixels (see `inkStats`). MNIST: 1.3 to 3.1 for 90%. */
  thickness: [1.2, 1.4, 1.6, 1.75, 1.9, 2.05, 2.25, 2.5, 2.8, 3.3, 4],
  /** Mean brightness of the ink pixels, 0.5–1. MNIST: 0.83 to 0.93 for 90%. */
  inkIntensity: [0.82, 0.845, 0.86, 0.87, 0.88, 0.89, 0.9, 0.91, 0.925, 0.94, 0.97],
} as const satisfies Record<string, readonly number[]>;

export type InkFeature = keyof typeof INK_BINS;
export const INK_FEATURES = Object.keys(INK_BINS) as InkFeature[];
/** Every profiled feature: the answers' digit and confidence, then the ink statistics. */
export const FEATURES = ['classMix', 'confidence', ...INK_FEATURES] as const;
export type Feature = (typeof FEATURES)[number];

/** Confidence histograms: ten bins of width 0.1, from 0–0.1 to 0.9–1.0 (1.0 falls in the last). */
export const CONFIDENCE_BINS = 10;
export const confidenceBin = (confidence: number) =>
  Math.min(CONFIDENCE_BINS - 1, Math.floor(confidence * CONFIDENCE_BINS));

/** Bins per feature: a count per bin, summing to the profile's `count`. */
export interface Profile {
  schema: typeof PROFILE_SCHEMA;
  count: number;
  features: Record<Feature, number[]>;
}

/** One model input with the answer given to it. */
export interface ProfileSample {
  /** 784 bytes, 0–255, row by row: the model input as captures store it. */
  input: Uint8Array;
  digit: number;
  confidence: number;
}

export function binCount(feature: Feature): number {
  if (feature === 'classMix') return MNIST_CLASSES;
  if (feature === 'confidence') return CONFIDENCE_BINS;
  return INK_BINS[feature].length + 1;
}

/** The bin of `value` among `edges`: how many edges are at or below it. */
export function binOf(value: number, edges: readonly number[]): number {
  let bin = 0;
  while (bin < edges.length && value >= edges[bin]!) bin++;
  return bin;
}

/** The four neighbours whose background makes an ink pixel's side part of the perimeter. */
const SIDES = [
  [-1, 0],
  [1, 0],
  [0, -1],
  [0, 1],
] as const;

/**
 * The ink statistics of one 28×28 input. Without ink every one is 0, which
 * falls in each feature's first bin: an empty frame is as far from a digit as
 * a tiny one.
 *
 * Thickness is twice the ink area over its perimeter (ink pixel sides that
 * touch background or the frame's edge). A stroke w wide and L long has area
 * wL and perimeter about 2L, so this reads w without a skeleton: one pass, no
 * thinning iterations whose result depends on their order, and a dilated
 * digit or a thick pen moves it directly.
 */
export function inkStats(input: Uint8Array): Record<InkFeature, number> {
  if (input.length !== MNIST_PIXELS) throw new RangeError(`an input is ${MNIST_PIXELS} bytes; got ${input.length}`);
  const isInk = (x: number, y: number) =>
    x >= 0 && y >= 0 && x < MNIST_SIDE && y < MNIST_SIDE && input[y * MNIST_SIDE + x]! >= INK_LEVEL;
  let ink = 0;
  let inkSum = 0;
  let perimeter = 0;
  let mass = 0;
  let massX = 0;
  let massY = 0;
  let [left, right, top, bottom] = [MNIST_SIDE, -1, MNIST_SIDE, -1];
  for (let y = 0; y < MNIST_SIDE; y++) {
    for (let x = 0; x < MNIST_SIDE; x++) {
      const value = input[y * MNIST_SIDE + x]!;
      mass += value;
      massX += value * x;
      massY += value * y;
      if (value < INK_LEVEL) continue;
      ink++;
      inkSum += value;
      left = Math.min(left, x);
      right = Math.max(right, x);
      top = Math.min(top, y);
      bottom = Math.max(bottom, y);
      for (const [dx, dy] of SIDES) if (!isInk(x + dx, y + dy)) perimeter++;
    }
  }
  if (ink === 0) return { inkShare: 0, width: 0, height: 0, centreOffset: 0, thickness: 0, inkIntensity: 0 };
  return {
    inkShare: ink / MNIST_PIXELS,
    width: right - left + 1,
    height: bottom - top + 1,
    centreOffset: Math.hypot(massX / mass - FRAME_CENTRE, massY / mass - FRAME_CENTRE),
    thickness: (2 * ink) / perimeter,
    inkIntensity: inkSum / ink / 255,
  };
}

const emptyFeatures = (): Record<Feature, number[]> =>
  Object.fromEntries(FEATURES.map((f) => [f, Array.from({ length: binCount(f) }, () => 0)])) as Record<
    Feature,
    number[]
  >;

/** The profile of a set of inputs and their answers; throws on an input that is not 784 bytes or a bad answer. */
export function profileOf(samples: Iterable<ProfileSample>): Profile {
  const features = emptyFeatures();
  let count = 0;
  for (const { input, digit, confidence } of samples) {
    if (!(Number.isInteger(digit) && digit >= 0 && digit < MNIST_CLASSES)) throw new RangeError(`digit ${digit}`);
    if (!(confidence >= 0 && confidence <= 1)) throw new RangeError(`confidence ${confidence}`);
    const stats = inkStats(input);
    features.classMix[digit]!++;
    features.confidence[confidenceBin(confidence)]!++;
    for (const feature of INK_FEATURES) features[feature][binOf(stats[feature], INK_BINS[feature])]!++;
    count++;
  }
  return { schema: PROFILE_SCHEMA, count, features };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * A stored profile as read back, or a sentence saying why it is not one: the
 * bucket's files are checked, not trusted, and a profile made with other bins
 * cannot be compared with today's.
 */
export function parseProfile(bytes: Buffer): Profile | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { problem: 'is not valid JSON' };
  }
  if (!isObject(value) || !isObject(value.features)) return { problem: 'is not a profile' };
  if (value.schema !== PROFILE_SCHEMA)
    return { problem: `has schema ${JSON.stringify(value.schema)}; this code compares schema ${PROFILE_SCHEMA}` };
  const { count, features } = value;
  if (!isCount(count)) return { problem: 'has no count' };
  for (const feature of FEATURES) {
    const bins = features[feature];
    if (!Array.isArray(bins) || bins.length !== binCount(feature) || !bins.every(isCount))
      return { problem: `has no ${binCount(feature)} counts for ${feature}` };
    if (bins.reduce((a, b) => a + b, 0) !== count)
      return { problem: `has ${feature} counts that do not sum to ${count}` };
  }
  return { schema: PROFILE_SCHEMA, count, features: features as Profile['features'] };
}
