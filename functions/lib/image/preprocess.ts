/**
 * What a request hands the model: an uploaded image, checked, decoded and
 * made MNIST-style (one digit, or each digit of a written number); or
 * MNIST-style pixels sent as numbers, validated.
 */
import { BadRequestError } from '../errors.ts';
import { MNIST_PIXELS } from '../mnist-shape.ts';
import { checkImage, decodeBudgetMs, decodeImage, type DecodableFormat, type DecodeOptions } from './decode.ts';
import { chooseJpegScale, type JpegScale } from './jpeg.ts';
import { EmptyImageError, MNIST_DIGIT_SIDE, mnistTransform } from './mnist-transform.ts';
import { NoNumberFoundError, NUMBER_WORK_SIDE, type NumberPart, segmentNumber } from './segment.ts';

/** A `pixels` input that is not 784 numbers in 0–255. */
export class InvalidPixelsError extends BadRequestError {
  constructor(message: string) {
    super(message, 'invalid_pixels');
  }
}

export interface PreprocessedImage {
  /** 784 values in 0–1, row-major: the model's input. */
  input: Float32Array;
  /** As displayed, after any EXIF orientation. */
  width: number;
  height: number;
  format: DecodableFormat;
  /** How many digits number mode would read in the image: 2 or more is a number, not one digit. */
  marks: number;
}

/**
 * Encoded image bytes → model input. Throws ImageTooLargeError,
 * ImageTooComplexError, UnsupportedImageError or CorruptImageError before or
 * during the decode, and EmptyImageError when there is no digit to find.
 */
export async function preprocessImage(bytes: Buffer, options: DecodeOptions = {}): Promise<PreprocessedImage> {
  const header = checkImage(bytes);
  // One budget for the image, however many decodes it takes: a second decode gets what the first left.
  const budgetMs = options.budgetMs ?? decodeBudgetMs(header);
  const started = performance.now();
  const image = await decodeImage(bytes, header, options);
  // A JPEG decoded at reduced scale whose digit came out smaller than MNIST's box (a small digit in a large photo)
  // is decoded once more, at the scale that gives the digit that many pixels, so it is never enlarged; one whose
  // ink was too faint or small to find at all, once more at full size.
  const mayRetry = image.scale > 1 && options.jpegScale === undefined;
  let input: Float32Array | undefined;
  let marks = 1;
  let finer: JpegScale | undefined;
  try {
    const transformed = mnistTransform(image);
    input = transformed.input;
    marks = transformed.marks;
    if (mayRetry && transformed.digitSide < MNIST_DIGIT_SIDE) finer = finerScale(image.scale, transformed.digitSide);
  } catch (error) {
    if (!(error instanceof EmptyImageError && mayRetry)) throw error;
    finer = 1;
  }
  if (finer !== undefined) {
    const left = Math.max(1, Math.floor(budgetMs - (performance.now() - started)));
    ({ input, marks } = mnistTransform(
      await decodeImage(bytes, header, { ...options, jpegScale: finer, budgetMs: left }),
    ));
  }
  // The header's size: a JPEG may have been decoded at a fraction of it.
  const turned = header.orientation >= 5;
  return {
    input: input!,
    width: turned ? header.height : header.width,
    height: turned ? header.width : header.height,
    format: header.format,
    marks,
  };
}

export interface PreprocessedNumber {
  /** The digits left to right, boxes in the displayed image's pixels. */
  parts: NumberPart[];
  /** As displayed, after any EXIF orientation. */
  width: number;
  height: number;
  format: DecodableFormat;
}

/**
 * Encoded image bytes → the digits of the number written in it. The same
 * checks and one time budget as `preprocessImage`; throws
 * NoNumberFoundError when nothing reads as a digit and TooManyPartsError
 * over MAX_NUMBER_PARTS. `workSide` replaces NUMBER_WORK_SIDE, for
 * measuring what the working size buys. A JPEG is decoded at the coarsest scale that keeps
 * its longest side at NUMBER_WORK_SIDE (segmentation works at that size:
 * anything finer is averaged away, anything coarser loses the small digits
 * of a wide number), and once more at full size when nothing was found.
 */
export async function preprocessNumber(
  bytes: Buffer,
  options: DecodeOptions & { workSide?: number } = {},
): Promise<PreprocessedNumber> {
  const header = checkImage(bytes);
  const budgetMs = options.budgetMs ?? decodeBudgetMs(header);
  const started = performance.now();
  const longest = Math.max(header.width, header.height);
  const workSide = options.workSide ?? NUMBER_WORK_SIDE;
  const jpegScale = options.jpegScale ?? chooseJpegScale(longest, longest, workSide);
  let image = await decodeImage(bytes, header, { ...options, jpegScale });
  let parts: NumberPart[];
  try {
    parts = segmentNumber(image, workSide);
  } catch (error) {
    if (!(error instanceof NoNumberFoundError && image.scale > 1 && options.jpegScale === undefined)) throw error;
    const left = Math.max(1, Math.floor(budgetMs - (performance.now() - started)));
    image = await decodeImage(bytes, header, { ...options, jpegScale: 1, budgetMs: left });
    parts = segmentNumber(image, workSide);
  }
  const turned = header.orientation >= 5;
  const width = turned ? header.height : header.width;
  const height = turned ? header.width : header.height;
  const { scale } = image;
  for (const part of parts) {
    const [x, y, w, h] = part.box;
    part.box = [
      x * scale,
      y * scale,
      Math.min(width, (x + w) * scale) - x * scale,
      Math.min(height, (y + h) * scale) - y * scale,
    ];
  }
  return { parts, width, height, format: header.format };
}

/**
 * For callers that already send MNIST-style input: 784 numbers in 0–255,
 * row-major, ink bright on black. Only scaled to 0–1, not re-centred.
 */
export function preprocessPixels(pixels: unknown): Float32Array {
  const isArrayLike = Array.isArray(pixels) || (ArrayBuffer.isView(pixels) && !(pixels instanceof DataView));
  if (!isArrayLike) throw new InvalidPixelsError(`pixels must be an array of ${MNIST_PIXELS} numbers`);
  const values = pixels as ArrayLike<unknown>;
  if (values.length !== MNIST_PIXELS) {
    throw new InvalidPixelsError(`pixels must have ${MNIST_PIXELS} values (28×28); got ${values.length}`);
  }
  const input = new Float32Array(MNIST_PIXELS);
  for (let i = 0; i < MNIST_PIXELS; i++) {
    const value = values[i];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 255) {
      throw new InvalidPixelsError(`pixels[${i}] is ${describe(value)}; each value must be a number from 0 to 255`);
    }
    input[i] = value / 255;
  }
  return input;
}

/** Enough of a rejected value to recognise it; echoing all of it could make the error larger than Lambda may return. */
function describe(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string')
    return value.length > 32
      ? `${JSON.stringify(value.slice(0, 32))}… (${value.length} characters)`
      : JSON.stringify(value);
  return `a ${typeof value}`;
}

/** The coarsest scale finer than 1/`scale` at which a digit `digitSide` px long at 1/`scale` has MNIST's 20 px. */
function finerScale(scale: number, digitSide: number): JpegScale {
  for (const finer of [4, 2] as const) {
    if (finer < scale && (digitSide * scale) / finer >= MNIST_DIGIT_SIDE) return finer;
  }
  return 1;
}
