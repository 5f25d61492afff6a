/**
 * Any image → the 28×28 input the model was trained on, made the way MNIST
 * itself was made: bright ink on black, cropped to the digit, the longest side
 * scaled to 20 px with anti-aliasing, centred by centre of mass. A raw resize
 * of a canvas drawing or a phone photo looks nothing like the digits the
 * model has seen, and it misreads them.
 *
 * Pure: raw pixels in, 784 floats out, with plain typed-array loops at a
 * reduced working size. The decode is the cost floor and this adds little to
 * it (`npm run bench -- preprocess` measures how little). The steps are
 * exported for number mode (segment.ts), which reads one ink image and gives
 * each digit in it the same transform.
 */
import { BadRequestError } from '../errors.ts';
import { MNIST_PIXELS, MNIST_SIDE } from '../mnist-shape.ts';
import {
  type Blobs,
  type Box,
  countMarks,
  findBlobs,
  type Gray,
  groupDigits,
  significantBlobs,
  unite,
} from './blobs.ts';
import type { Orientation } from './header.ts';

/** The image decoded but holds nothing that stands out from its background. */
export class EmptyImageError extends BadRequestError {
  constructor(message = 'no digit found: the image has no ink that stands out from its background') {
    super(message, 'no_digit_found');
  }
}

/** Pixels as a decoder or a canvas hands them over, row-major. */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  /** 4 for RGBA, 1 for grayscale. */
  channels: 1 | 4;
  /** How the pixels are turned for display (EXIF); 1, as stored, by default. */
  orientation?: Orientation;
}

/** MNIST fits each digit's longest side in 20 px and centres its mass in 28×28. */
const DIGIT_BOX = 20;
/** MNIST's mean centre of mass, in pixel-index coordinates. */
const MNIST_CENTRE = 14;
/**
 * The image is box-averaged down to about this size before any analysis: the
 * output is 20 px, so a digit a tenth of the frame tall still has pixels to
 * spare, and every later step then costs a fraction of the decode.
 */
export const WORK_SIDE = 256;
/** Ink must stand this far (of 255) above the paper to count: below it is paper texture and sensor noise. */
const MIN_CONTRAST = 32;
/** Which percentile of the ink becomes full white: photographed ink is never uniformly dark. */
const INK_PERCENTILE = 0.9;
/** Half of full ink: the level MNIST's 20 px box is measured at. */
const INK_MASK = 128;
/** The paper estimate is made of about GRID×GRID blocks of at least MIN_BLOCK px. */
const GRID = 8;
const MIN_BLOCK = 16;

/**
 * Raw pixels → 784 values in 0–1, MNIST-style. Throws EmptyImageError when
 * nothing stands out from the background.
 */
export function toMnistInput(image: RawImage): Float32Array {
  return mnistTransform(image).input;
}

/**
 * The model input; the longest side of the digit's box in the pixels given:
 * under DIGIT_BOX (20), the transform had to enlarge the digit, and a larger
 * image of it (a JPEG decoded at a finer scale) would give more detail; and
 * how many separate marks the image holds (`marks`: the digits number mode
 * would read, less a stroke broken off beside its digit; 1 for one digit,
 * even one drawn in two strokes).
 */
export function mnistTransform(image: RawImage): { input: Float32Array; digitSide: number; marks: number } {
  const { ink, stretch, maskLevel } = inkImage(image);
  const blobs = findBlobs(ink, maskLevel);
  const box = digitBox(blobs);
  // The working image is the given one box-averaged by a whole factor.
  const factor = Math.max(image.width, image.height) / Math.max(ink.width, ink.height);
  const digitSide = Math.max(box.x1 - box.x0, box.y1 - box.y0) * factor + factor;
  return { input: digitInput(ink, box, stretch), digitSide, marks: countMarks(groupDigits(blobs)) };
}

/** An image's ink at working size, and how to read it. */
export interface InkImage {
  /** Bright ink on black, paper subtracted, as displayed (EXIF applied). */
  ink: Gray;
  /** The lookup table that takes `ink` values to MNIST's: paper 0, strokes 255. */
  stretch: Uint8Array;
  /** The least `ink` value that `stretch` takes to half ink or more: what counts as a stroke. */
  maskLevel: number;
  /** Each working pixel is this many displayed pixels square (fewer on the right and bottom edges). */
  factor: number;
}

/**
 * Raw pixels → the ink image, box-averaged so its longest side is at most
 * `workSide`, with `inkPercentile` of the ink read as full strokes. Throws RangeError for pixels that do not match their size, and
 * EmptyImageError when nothing stands out from the background.
 */
export function inkImage(image: RawImage, workSide = WORK_SIDE, inkPercentile = INK_PERCENTILE): InkImage {
  const { data, width, height, channels } = image;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new RangeError(`image size ${width}×${height} is not a positive integer size`);
  }
  if (data.length !== width * height * channels) {
    throw new RangeError(
      `${width}×${height}×${channels} image needs ${width * height * channels} bytes, got ${data.length}`,
    );
  }
  const factor = workingFactor(width, height, workSide);
  const ink = orient(brightInk(image, factor), image.orientation ?? 1);
  const histogram = subtractPaper(ink);
  return { ink, ...inkLevels(histogram, ink.data.length, inkPercentile), factor };
}

/** The whole factor that brings the longest side to at most `workSide`. */
function workingFactor(width: number, height: number, workSide: number): number {
  return Math.ceil(Math.max(width, height) / workSide);
}

/** The 784 model inputs for the ink inside `box`: scaled to MNIST's 20 px box, centred by mass. */
export function digitInput(ink: Gray, box: Box, stretch: Uint8Array): Float32Array {
  return centreByMass(scaleToDigitBox(ink, box, stretch));
}

/** The longest side MNIST scales each digit to; an upload's digit with fewer pixels than this is enlarged. */
export const MNIST_DIGIT_SIDE = DIGIT_BOX;

/** Calls `visit` with the index of every pixel on the image's edge. */
function forEachBorderPixel(width: number, height: number, visit: (index: number) => void): void {
  for (let x = 0; x < width; x++) {
    visit(x);
    if (height > 1) visit((height - 1) * width + x);
  }
  for (let y = 1; y < height - 1; y++) {
    visit(y * width);
    if (width > 1) visit(y * width + width - 1);
  }
}

/** Rec. 601 luma of the RGBA pixel at byte offset p, 0–255. */
function luma(data: RawImage['data'], p: number): number {
  return (77 * data[p]! + 150 * data[p + 1]! + 29 * data[p + 2]! + 128) >> 8;
}

/** Rounded x/255 for x in 0…255², in integer operations. */
function div255(x: number): number {
  const t = x + 128;
  return (t + (t >> 8)) >> 8;
}

/**
 * Sums of pixel values over the factor×factor blocks of a source image,
 * averaged once all pixels are in: this is how the image gets to its working
 * size without a second pass over the full-size pixels.
 */
class BlockSums {
  readonly factor: number;
  readonly width: number;
  readonly height: number;
  readonly sums: Uint32Array;
  /** The working-image column of each source column. */
  readonly column: Int32Array;

  constructor(
    private readonly sourceWidth: number,
    private readonly sourceHeight: number,
    factor: number,
  ) {
    this.factor = factor;
    this.width = Math.ceil(sourceWidth / this.factor);
    this.height = Math.ceil(sourceHeight / this.factor);
    this.sums = new Uint32Array(this.width * this.height);
    this.column = new Int32Array(sourceWidth);
    for (let x = 0; x < sourceWidth; x++) this.column[x] = (x / this.factor) | 0;
  }

  /** Index of the first working pixel of the row that source row y falls in. */
  rowStart(y: number): number {
    return ((y / this.factor) | 0) * this.width;
  }

  /** The block averages; blocks on the right and bottom edges may be partial. */
  average(): Gray {
    const { factor, width, height, sums } = this;
    const data = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) {
      const rows = Math.min(this.sourceHeight, (y + 1) * factor) - y * factor;
      for (let x = 0; x < width; x++) {
        const pixels = rows * (Math.min(this.sourceWidth, (x + 1) * factor) - x * factor);
        // The store truncates, so adding half a pixel count first rounds.
        data[y * width + x] = (sums[y * width + x]! + (pixels >> 1)) / pixels;
      }
    }
    return { data, width, height };
  }
}

/**
 * One value per pixel, ink bright on dark as in MNIST, box-averaged to the
 * working size in the same pass. How depends on the border, which is mostly
 * background: transparent, light or dark.
 */
function brightInk(image: RawImage, factor: number): Gray {
  const { data, width, height, channels } = image;
  const blocks = new BlockSums(width, height, factor);
  const { sums, column } = blocks;
  if (channels === 1) {
    const flip = borderMedian(width, height, (i) => data[i]!) >= 128 ? 255 : 0;
    for (let y = 0, i = 0; y < height; y++) {
      const row = blocks.rowStart(y);
      for (let x = 0; x < width; x++, i++) sums[row + column[x]!]! += data[i]! ^ flip;
    }
    return blocks.average();
  }
  let transparent = 0;
  forEachBorderPixel(width, height, (i) => {
    if (data[i * 4 + 3]! < 128) transparent++;
  });
  if (transparent * 2 > 2 * (width + height) - 4) return inkOnTransparency(image, factor);
  // How much darker than white each pixel is once composited onto white, as a
  // browser shows partly transparent pixels; on a dark border that is flipped.
  const darkness = (p: number) => div255(data[p + 3]! * (255 - luma(data, p)));
  const flip = borderMedian(width, height, (i) => darkness(i * 4)) < 128 ? 0 : 255;
  for (let y = 0, p = 0; y < height; y++) {
    const row = blocks.rowStart(y);
    for (let x = 0; x < width; x++, p += 4) sums[row + column[x]!]! += darkness(p) ^ flip;
  }
  return blocks.average();
}

function borderMedian(width: number, height: number, value: (index: number) => number): number {
  const histogram = new Uint32Array(256);
  let count = 0;
  forEachBorderPixel(width, height, (i) => {
    histogram[value(i)]!++;
    count++;
  });
  return percentile(histogram, count, 0.5);
}

/**
 * On a transparent background the ink is the strokes' opacity times their
 * contrast with the backdrop. A browser canvas exports dark strokes, which
 * stand out on white; a dark-themed one exports light strokes, which would
 * vanish on white and stand out on black. Both readings are made in the one
 * pass and the one with more contrast overall is kept.
 */
function inkOnTransparency({ data, width, height }: RawImage, factor: number): Gray {
  const onWhite = new BlockSums(width, height, factor);
  const onBlack = new BlockSums(width, height, factor);
  const { column } = onWhite;
  let darkStrokes = 0;
  let lightStrokes = 0;
  // Whole pixels at a time where the bytes are aligned: untouched canvas is transparent black, 0 in all four.
  const pixels = data.byteOffset % 4 === 0 ? new Uint32Array(data.buffer, data.byteOffset, width * height) : undefined;
  for (let y = 0, p = 0; y < height; y++) {
    const row = onWhite.rowStart(y);
    for (let x = 0; x < width; x++, p += 4) {
      if (pixels !== undefined && pixels[p >> 2] === 0) continue;
      const a = data[p + 3]!;
      // Most of a canvas is untouched; both readings are 0 there.
      if (a === 0) continue;
      const l = luma(data, p);
      const dark = div255(a * (255 - l));
      const light = div255(a * l);
      darkStrokes += dark;
      lightStrokes += light;
      onWhite.sums[row + column[x]!]! += dark;
      onBlack.sums[row + column[x]!]! += light;
    }
  }
  return (darkStrokes >= lightStrokes ? onWhite : onBlack).average();
}

/** Stored x = x0 + xx·x + xy·y and stored y = y0 + yx·x + yy·y for displayed pixel (x, y). */
type Affine = [x0: number, xx: number, xy: number, y0: number, yx: number, yy: number];

/** Where each displayed pixel is stored, per EXIF orientation; w1, h1 are the stored width and height less one. */
const ORIENTATIONS: Record<Orientation, (w1: number, h1: number) => Affine> = {
  1: () => [0, 1, 0, 0, 0, 1],
  2: (w1) => [w1, -1, 0, 0, 0, 1],
  3: (w1, h1) => [w1, -1, 0, h1, 0, -1],
  4: (_, h1) => [0, 1, 0, h1, 0, -1],
  5: () => [0, 0, 1, 0, 1, 0],
  6: (_, h1) => [0, 0, 1, h1, -1, 0],
  7: (w1, h1) => [w1, 0, -1, h1, -1, 0],
  8: (w1) => [w1, 0, -1, 0, 1, 0],
};

/** The image as displayed: EXIF orientations 2–8 mirror it and/or turn it by quarter turns. */
function orient(image: Gray, orientation: Orientation): Gray {
  if (orientation === 1) return image;
  const { data, width: w, height: h } = image;
  const [x0, xx, xy, y0, yx, yy] = ORIENTATIONS[orientation](w - 1, h - 1);
  const turned = orientation >= 5;
  const width = turned ? h : w;
  const height = turned ? w : h;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) out[y * width + x] = data[(y0 + yx * x + yy * y) * w + x0 + xx * x + xy * y]!;
  }
  return { data: out, width, height };
}

/** The smallest value v ≥ `from` such that at least `share` of the `count` values from `from` up are ≤ v. */
function percentile(histogram: Uint32Array, count: number, share: number, from = 0): number {
  const target = Math.max(1, Math.ceil(count * share));
  let seen = 0;
  for (let v = from; v < 256; v++) {
    seen += histogram[v]!;
    if (seen >= target) return v;
  }
  return 255;
}

/**
 * Subtracts a smooth estimate of the paper's brightness, in place, and
 * returns the histogram of what is left: a photo of paper is grey and
 * unevenly lit where MNIST's background is flat black. The estimate is each
 * block's median, lowered to the darkest of its neighbours so a block filled
 * by a thick stroke does not count its ink as paper, then interpolated
 * between block centres so a gradient of light cancels out.
 */
function subtractPaper({ data, width, height }: Gray): Uint32Array {
  // Even-sized blocks, so sampling every other pixel still reaches each block's first one.
  const block = 2 * Math.max(MIN_BLOCK / 2, Math.ceil(Math.max(width, height) / GRID / 2));
  const cols = Math.ceil(width / block);
  const rows = Math.ceil(height / block);
  // A median needs far fewer samples than a block has pixels: a quarter of them is plenty.
  const blockHistograms = new Uint32Array(cols * rows * 256);
  for (let y = 0; y < height; y += 2) {
    const rowBase = ((y / block) | 0) * cols;
    const line = y * width;
    for (let x = 0; x < width; x += 2) blockHistograms[(rowBase + ((x / block) | 0)) * 256 + data[line + x]!]!++;
  }
  const medians = new Float32Array(cols * rows);
  const sampled = (start: number, size: number) => Math.ceil((Math.min(size, start + block) - start) / 2);
  for (let by = 0; by < rows; by++) {
    for (let bx = 0; bx < cols; bx++) {
      const b = by * cols + bx;
      const samples = sampled(bx * block, width) * sampled(by * block, height);
      medians[b] = percentile(blockHistograms.subarray(b * 256, b * 256 + 256), samples, 0.5);
    }
  }
  const paper = new Float32Array(cols * rows);
  for (let by = 0; by < rows; by++) {
    for (let bx = 0; bx < cols; bx++) {
      let lowest = 255;
      for (let ny = Math.max(0, by - 1); ny <= Math.min(rows - 1, by + 1); ny++) {
        for (let nx = Math.max(0, bx - 1); nx <= Math.min(cols - 1, bx + 1); nx++) {
          lowest = Math.min(lowest, medians[ny * cols + nx]!);
        }
      }
      paper[by * cols + bx] = lowest;
    }
  }
  const histogram = new Uint32Array(256);
  if (paper.every((level) => level === 0)) {
    // Already black (a canvas, an MNIST-style upload): nothing to subtract.
    for (let i = 0; i < data.length; i++) histogram[data[i]!]!++;
    return histogram;
  }
  const xs = interpolation(width, block, cols);
  const ys = interpolation(height, block, rows);
  const paperRow = new Float32Array(cols);
  const paperLine = new Float32Array(width);
  for (let y = 0; y < height; y++) {
    const top = ys.lower[y]! * cols;
    const bottom = ys.upper[y]! * cols;
    const t = ys.weight[y]!;
    for (let bx = 0; bx < cols; bx++) paperRow[bx] = paper[top + bx]! + (paper[bottom + bx]! - paper[top + bx]!) * t;
    for (let x = 0; x < width; x++) {
      const left = paperRow[xs.lower[x]!]!;
      paperLine[x] = left + (paperRow[xs.upper[x]!]! - left) * xs.weight[x]! - 0.5;
    }
    for (let x = 0, i = y * width; x < width; x++, i++) {
      // With the 0.5 taken off the paper level above, truncating rounds.
      const value = data[i]! - paperLine[x]!;
      const residual = value > 0 ? value | 0 : 0;
      data[i] = residual;
      histogram[residual]!++;
    }
  }
  return histogram;
}

/** Linear interpolation between block centres along one axis, clamped at the ends. */
function interpolation(length: number, block: number, blocks: number) {
  const lower = new Int32Array(length);
  const upper = new Int32Array(length);
  const weight = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    const position = Math.min(blocks - 1, Math.max(0, (i + 0.5) / block - 0.5));
    lower[i] = Math.floor(position);
    upper[i] = Math.min(blocks - 1, lower[i]! + 1);
    weight[i] = position - lower[i]!;
  }
  return { lower, upper, weight };
}

/**
 * From the histogram of paper-subtracted values: the lookup table that takes
 * the paper's noise to 0 and the ink to full white (MNIST strokes saturate),
 * and the value at which that table reaches INK_MASK; `inkPercentile` of
 * the ink becomes full white. Throws EmptyImageError
 * when no ink stands out.
 */
function inkLevels(
  histogram: Uint32Array,
  count: number,
  inkPercentile: number,
): { stretch: Uint8Array; maskLevel: number } {
  const split = otsuThreshold(histogram);
  if (split === undefined) throw new EmptyImageError();
  let paperCount = 0;
  for (let v = 0; v < split; v++) paperCount += histogram[v]!;
  // Quantiles rather than mean and deviation: the faint edges of strokes fall
  // in the paper class too, and would pass for noise.
  const paper = percentile(histogram, paperCount, 0.5);
  const noise = percentile(histogram, paperCount, 0.84) - paper;
  const inkLevel = percentile(histogram, count - paperCount, inkPercentile, split);
  if (inkLevel - paper < MIN_CONTRAST) throw new EmptyImageError();
  // Three deviations above the paper is its own texture, not ink.
  const floor = Math.min(paper + 3 * noise, split);
  const range = Math.max(1, inkLevel - floor);
  const stretch = new Uint8Array(256);
  let maskLevel = 256;
  for (let v = 255; v >= 0; v--) {
    stretch[v] = Math.max(0, Math.min(255, Math.round(((v - floor) * 255) / range)));
    if (stretch[v]! >= INK_MASK) maskLevel = v;
  }
  return { stretch, maskLevel };
}

/**
 * Otsu's threshold: the split of the histogram into two classes with the
 * largest between-class variance. Values ≥ the result are the brighter class;
 * undefined when every pixel has the same value.
 */
function otsuThreshold(histogram: Uint32Array): number | undefined {
  let total = 0;
  let sum = 0;
  for (let v = 0; v < 256; v++) {
    total += histogram[v]!;
    sum += v * histogram[v]!;
  }
  let best = -1;
  let threshold: number | undefined;
  let lowCount = 0;
  let lowSum = 0;
  for (let v = 0; v < 255; v++) {
    lowCount += histogram[v]!;
    lowSum += v * histogram[v]!;
    const highCount = total - lowCount;
    if (lowCount === 0) continue;
    if (highCount === 0) break;
    const gap = lowSum / lowCount - (sum - lowSum) / highCount;
    const between = lowCount * highCount * gap * gap;
    if (between > best) {
      best = between;
      threshold = v + 1;
    }
  }
  return threshold;
}

/**
 * The bounding box of the digit: every blob of strong ink (8-connected) at
 * least SPECK_SHARE the size of the largest, so dust and noise away from the
 * digit do not stretch the box, while the detached bar of a 5 or 7 stays.
 */
function digitBox(blobs: Blobs): Box {
  if (blobs.boxes.length === 0) throw new EmptyImageError();
  let digit: Box | undefined;
  for (const blob of significantBlobs(blobs)) {
    const box = { ...blobs.boxes[blob]! };
    digit = digit === undefined ? box : unite(digit, box);
  }
  return digit!;
}

interface Patch {
  data: Float32Array;
  width: number;
  height: number;
}

/** The box, through the stretch table, scaled so its longest side is DIGIT_BOX px, keeping the aspect ratio. */
function scaleToDigitBox(ink: Gray, box: Box, stretch: Uint8Array): Patch {
  const boxWidth = box.x1 - box.x0 + 1;
  const boxHeight = box.y1 - box.y0 + 1;
  const scale = DIGIT_BOX / Math.max(boxWidth, boxHeight);
  const width = Math.max(1, Math.round(boxWidth * scale));
  const height = Math.max(1, Math.round(boxHeight * scale));
  const across = resamplingWeights(boxWidth, width);
  const down = resamplingWeights(boxHeight, height);
  const rowsScaled = new Float32Array(boxHeight * width);
  for (let y = 0; y < boxHeight; y++) {
    const line = (box.y0 + y) * ink.width + box.x0;
    for (let x = 0; x < width; x++) {
      let value = 0;
      for (let k = across.start[x]!; k < across.start[x + 1]!; k++) {
        value += stretch[ink.data[line + across.source[k]!]!]! * across.weight[k]!;
      }
      rowsScaled[y * width + x] = value;
    }
  }
  const data = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let k = down.start[y]!; k < down.start[y + 1]!; k++) {
      const from = down.source[k]! * width;
      const w = down.weight[k]!;
      for (let x = 0; x < width; x++) data[y * width + x]! += rowsScaled[from + x]! * w;
    }
  }
  return { data, width, height };
}

/**
 * Which source pixels make each output pixel along one axis, and how much.
 * Shrinking averages exactly the area each output pixel covers, which is the
 * anti-aliasing MNIST's strokes have; enlarging interpolates linearly, since
 * averaging less than a pixel would just repeat pixels in blocks.
 */
function resamplingWeights(from: number, to: number) {
  const start = new Int32Array(to + 1);
  const source: number[] = [];
  const weight: number[] = [];
  const ratio = from / to;
  for (let o = 0; o < to; o++) {
    start[o] = source.length;
    if (to <= from) {
      const begin = o * ratio;
      const end = begin + ratio;
      for (let i = Math.floor(begin); i < Math.min(from, Math.ceil(end)); i++) {
        source.push(i);
        weight.push((Math.min(end, i + 1) - Math.max(begin, i)) / ratio);
      }
    } else {
      const position = Math.min(from - 1, Math.max(0, (o + 0.5) * ratio - 0.5));
      const lower = Math.floor(position);
      const t = position - lower;
      source.push(lower);
      weight.push(1 - t);
      if (t > 0) {
        source.push(lower + 1);
        weight.push(t);
      }
    }
  }
  start[to] = source.length;
  return { start, source: Int32Array.from(source), weight: Float32Array.from(weight) };
}

/**
 * Pastes the patch into 28×28 so its centre of mass lands on MNIST's, shifted
 * by whole pixels as MNIST was; whatever then falls outside the frame is cut.
 */
function centreByMass(patch: Patch): Float32Array {
  const { data, width, height } = patch;
  let mass = 0;
  let sumX = 0;
  let sumY = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = data[y * width + x]!;
      mass += v;
      sumX += v * x;
      sumY += v * y;
    }
  }
  const dx = Math.round(MNIST_CENTRE - sumX / mass);
  const dy = Math.round(MNIST_CENTRE - sumY / mass);
  const out = new Float32Array(MNIST_PIXELS);
  for (let y = 0; y < height; y++) {
    const ty = y + dy;
    if (ty < 0 || ty >= MNIST_SIDE) continue;
    for (let x = 0; x < width; x++) {
      const tx = x + dx;
      if (tx < 0 || tx >= MNIST_SIDE) continue;
      out[ty * MNIST_SIDE + tx] = Math.min(1, data[y * width + x]! / 255);
    }
  }
  return out;
}
