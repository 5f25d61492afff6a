/**
 * A written number → its digits, left to right: each as the 784 inputs a
 * single digit would get (mnist-transform.ts's steps on that digit's ink
 * only), with its box in the image's displayed pixels. Which ink makes which
 * digit is blobs.ts's grouping, whose parts digit mode counts as `marks`.
 *
 * Pure, like the single-digit transform, and bounded the same way: one pass
 * over the decoded pixels, then work on a working image at most
 * NUMBER_WORK_SIDE on its longest side, and at most MAX_NUMBER_PARTS
 * transforms of 28×28.
 */
import { BadRequestError } from '../errors.ts';
import { type Box, type DigitPart, findBlobs, type Gray, groupDigits, type Blobs } from './blobs.ts';
import { digitInput, EmptyImageError, inkImage, type RawImage } from './mnist-transform.ts';

/** The most digits one number may have: more is a page of text or noise, not a number. */
export const MAX_NUMBER_PARTS = 32;
/**
 * A number is wide, so its working image is larger than a single digit's
 * (256): eight digits in a row at 256 px would have about 30 px each. The
 * longest side is capped so the work per request stays bounded.
 */
export const NUMBER_WORK_SIDE = 1024;

/**
 * Which percentile of the ink becomes full white: a single digit's 90th
 * (mnist-transform.ts) would leave a digit written fainter than its
 * neighbours grey and broken, where MNIST's strokes are all full white.
 * Measured on the tests' numbers (photos with gaps, digits the model reads
 * alone): 8 of 150 misread at 0.9, 6 at 0.5 and at 0.4.
 */
const NUMBER_INK_PERCENTILE = 0.5;

/** The image holds no ink that reads as digits. */
export class NoNumberFoundError extends BadRequestError {
  constructor(message = 'no number found: the image has no ink that stands out from its background') {
    super(message, 'no_number_found');
  }
}

/** The image splits into more than MAX_NUMBER_PARTS digits. */
export class TooManyPartsError extends BadRequestError {
  constructor(parts: number) {
    super(
      `the image splits into ${parts} parts; a number may have at most ${MAX_NUMBER_PARTS} digits`,
      'too_many_parts',
    );
  }
}

export interface NumberPart {
  /** 784 values in 0–1, MNIST-style, like a single digit's. */
  input: Float32Array;
  /** x, y, width, height in the image's displayed pixels (after EXIF orientation). */
  box: [number, number, number, number];
}

/** The owner of a pixel that is no digit's strong ink: a faint edge, dust, a dot, paper. */
const UNOWNED = -1;
/** A pixel no digit owns (a stroke's anti-aliased edge, dust) within this many working pixels of a digit's ink is that digit's. */
const EDGE_REACH = 2;

/**
 * The digits of the number in `image`, left to right. Throws
 * NoNumberFoundError when nothing reads as a digit, TooManyPartsError over
 * MAX_NUMBER_PARTS (before any digit is transformed).
 */
export function segmentNumber(image: RawImage, workSide = NUMBER_WORK_SIDE): NumberPart[] {
  let read: ReturnType<typeof inkImage>;
  try {
    read = inkImage(image, workSide, NUMBER_INK_PERCENTILE);
  } catch (error) {
    if (error instanceof EmptyImageError) throw new NoNumberFoundError();
    throw error;
  }
  const { ink, stretch, maskLevel, factor } = read;
  const blobs = findBlobs(ink, maskLevel);
  const parts = groupDigits(blobs);
  if (parts.length === 0) throw new NoNumberFoundError();
  if (parts.length > MAX_NUMBER_PARTS) throw new TooManyPartsError(parts.length);
  const owners = ownership(ink, blobs, parts);
  const turned = (image.orientation ?? 1) >= 5;
  const shown = { width: turned ? image.height : image.width, height: turned ? image.width : image.height };
  return parts.map((part, index) => {
    const own = ownInk(ink, owners, part.box, index);
    return {
      input: digitInput(own, { x0: 0, y0: 0, x1: own.width - 1, y1: own.height - 1 }, stretch),
      box: displayedBox(part.box, factor, shown),
    };
  });
}

/** For each working pixel, the index of the part whose strong ink it is, or UNOWNED. */
function ownership(ink: Gray, blobs: Blobs, parts: DigitPart[]): Int32Array {
  const owners = new Int32Array(ink.width * ink.height).fill(UNOWNED);
  const partsOfBlob = new Map<number, number[]>();
  parts.forEach((part, index) => {
    for (const blob of part.blobs) partsOfBlob.set(blob, [...(partsOfBlob.get(blob) ?? []), index]);
  });
  for (let run = 0; run < blobs.runBlob.length; run++) {
    const line = blobs.runRow[run]! * ink.width;
    const start = blobs.runStart[run]!;
    const end = blobs.runEnd[run]!;
    for (const index of partsOfBlob.get(blobs.runBlob[run]!) ?? []) {
      const { from, to } = parts[index]!;
      if (Math.max(start, from) < Math.min(end, to))
        owners.fill(index, line + Math.max(start, from), line + Math.min(end, to));
    }
  }
  return owners;
}

/**
 * The ink inside `box` that is part `index`'s: its strong pixels, and the
 * rest (faint edges, dust, a broken stroke's small pieces) where they are
 * near them or near no other digit's, as the single-digit transform would
 * keep them; a neighbour's strokes reaching into the box are blanked.
 */
function ownInk(ink: Gray, owners: Int32Array, box: Box, index: number): Gray {
  const width = box.x1 - box.x0 + 1;
  const height = box.y1 - box.y0 + 1;
  const data = new Uint8Array(width * height);
  for (let y = box.y0; y <= box.y1; y++) {
    for (let x = box.x0; x <= box.x1; x++) {
      const i = y * ink.width + x;
      const owner = owners[i]!;
      const keep = owner === index || (owner === UNOWNED && nearestClaim(ink, owners, x, y, index));
      if (keep) data[(y - box.y0) * width + x - box.x0] = ink.data[i]!;
    }
  }
  return { data, width, height };
}

/** Whether a pixel no digit owns belongs with part `index`: it is near that part's ink, or near no other part's. */
function nearestClaim(ink: Gray, owners: Int32Array, x: number, y: number, index: number): boolean {
  let other = false;
  for (let ny = Math.max(0, y - EDGE_REACH); ny <= Math.min(ink.height - 1, y + EDGE_REACH); ny++) {
    for (let nx = Math.max(0, x - EDGE_REACH); nx <= Math.min(ink.width - 1, x + EDGE_REACH); nx++) {
      const owner = owners[ny * ink.width + nx]!;
      if (owner === index) return true;
      if (owner >= 0) other = true;
    }
  }
  return !other;
}

/** A working-image box as [x, y, w, h] in displayed pixels, each working pixel `factor` of them, clipped to the image. */
function displayedBox(box: Box, factor: number, shown: { width: number; height: number }): NumberPart['box'] {
  const x = box.x0 * factor;
  const y = box.y0 * factor;
  return [x, y, Math.min(shown.width, (box.x1 + 1) * factor) - x, Math.min(shown.height, (box.y1 + 1) * factor) - y];
}
