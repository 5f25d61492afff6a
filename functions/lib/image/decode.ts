/**
 * Upload bytes → RGBA pixels, with every limit checked before the decoder
 * allocates anything: byte size, format (from the magic bytes), declared
 * dimensions, and for JPEG the memory its frame needs; the decode itself runs
 * under a time budget.
 */
import { PayloadTooLargeError } from '../errors.ts';
import { checkGifCodes } from './gif-codes.ts';
import {
  ImageTooComplexError,
  CorruptImageError,
  UnsupportedImageError,
  readImageHeader,
  type ImageFormat,
  type ImageHeader,
  type Sampling,
} from './header.ts';
import { chooseJpegScale, decodeJpegLuma, JpegFormatError, type JpegScale } from './jpeg.ts';
import type { RawImage } from './mnist-transform.ts';
import { decodePng, PngFormatError } from './png.ts';
import { BudgetExceededError, runWithin } from './time-budget.ts';

export const MAX_IMAGE_BYTES = 1024 * 1024;
/** Per side; also bounds a decode to 64 MB of RGBA. */
export const MAX_IMAGE_SIDE = 4096;
/**
 * What jpeg-js counts against its memory cap to decode a frame: a 256-byte
 * block of coefficients per 8×8 block of each component (padded to whole
 * MCUs), a byte per sample of each component's output lines, the
 * interleaved samples, and the RGBA result.
 */
export function jpegDecodeBytes(width: number, height: number, components: readonly Sampling[]): number {
  const maxH = Math.max(...components.map(({ h }) => h));
  const maxV = Math.max(...components.map(({ v }) => v));
  const mcusAcross = Math.ceil(width / 8 / maxH);
  const mcusDown = Math.ceil(height / 8 / maxV);
  let bytes = width * height * (components.length + 4);
  for (const { h, v } of components) {
    bytes += mcusAcross * h * mcusDown * v * 256;
    bytes += Math.ceil((Math.ceil(width / 8) * h) / maxH) * 8 * Math.ceil((Math.ceil(height / 8) * v) / maxV) * 8;
  }
  return bytes;
}

/**
 * The most a JPEG decode may take: what the largest image phones and libjpeg
 * write at our side limit needs, colour with 4:2:0 chroma. A full-resolution
 * chroma (4:4:4) or CMYK image of that size would need up to twice as much,
 * and is refused; at 11 MP or less it fits.
 */
export const MAX_JPEG_DECODE_BYTES = jpegDecodeBytes(MAX_IMAGE_SIDE, MAX_IMAGE_SIDE, [
  { h: 2, v: 2 },
  { h: 1, v: 1 },
  { h: 1, v: 1 },
]);

/** jpeg-js also counts 256 bytes for each 65-byte quantisation table, however many the file repeats. */
const JPEG_TABLE_BYTES = 4 * MAX_IMAGE_BYTES;

/**
 * How long, in wall-clock time, a decode may run before it is stopped: a
 * second, and more for a larger image, since jpeg-js takes 1.6–3.4 s of CPU
 * (warm to cold) for a legitimate 4096×4096 photo, and up to twice that in
 * wall-clock time on a busy host. The header checks keep legal files within
 * that; the budget is for what they do not foresee, such as a decoder bug
 * that loops, so no upload holds a worker for longer.
 */
export const DECODE_BUDGET_MS = 1000;
export const DECODE_MS_PER_MEGAPIXEL = 500;
/**
 * PNGs up to this many pixels decode without the budget's watchdog thread,
 * which costs ~0.12 ms a call (`runWithin`), a quarter of a 28×28 request.
 * The project's PNG decoder is a fixed number of linear passes over output
 * capped by the header, so such an image cannot keep it busy for more than
 * a few milliseconds; canvas drawings and small uploads are all below this.
 */
const UNBUDGETED_PNG_PIXELS = 1_000_000;

/** Over MAX_IMAGE_BYTES, or declares more than MAX_IMAGE_SIDE pixels on a side. */
export class ImageTooLargeError extends PayloadTooLargeError {
  constructor(message: string) {
    super(message, 'image_too_large');
  }
}

export type DecodableFormat = Exclude<ImageFormat, 'webp'>;
const DECODABLE: readonly DecodableFormat[] = ['png', 'jpeg', 'gif', 'bmp'];

function isDecodable(format: ImageFormat): format is DecodableFormat {
  return DECODABLE.some((decodable) => decodable === format);
}

/**
 * Everything that can be known without decoding, checked before any decode:
 * byte size, format, declared dimensions. Returns the header of an image
 * `preprocessImage` will accept.
 */
export function checkImage(bytes: Uint8Array): ImageHeader & { format: DecodableFormat } {
  if (bytes.length > MAX_IMAGE_BYTES) {
    throw new ImageTooLargeError(`the image is ${bytes.length} bytes; the limit is ${MAX_IMAGE_BYTES}`);
  }
  const header = readImageHeader(bytes);
  const { format, width, height } = header;
  if (!isDecodable(format)) {
    throw new UnsupportedImageError(`${format} images are not supported: send ${DECODABLE.join(', ')}`);
  }
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE) {
    throw new ImageTooLargeError(`the image is ${width}×${height}; the limit is ${MAX_IMAGE_SIDE}×${MAX_IMAGE_SIDE}`);
  }
  const decodeBytes = header.components ? jpegDecodeBytes(width, height, header.components) : 0;
  if (decodeBytes > MAX_JPEG_DECODE_BYTES) {
    const mb = (bytes: number) => `${Math.ceil(bytes / 2 ** 20)} MB`;
    throw new ImageTooLargeError(
      `the ${width}×${height} jpeg image needs ${mb(decodeBytes)} to decode; the limit is ${mb(MAX_JPEG_DECODE_BYTES)}`,
    );
  }
  return { ...header, format };
}

type Bitmap = { data: Buffer; width: number; height: number };
type Decoder = (bytes: Buffer) => Bitmap;

/**
 * The decoder packages for JPEG, GIF and BMP, called directly and loaded on
 * first use: most requests are PNGs, which never need them, and each is a
 * plain function over bytes (jimp wrapped the same three packages in ~60
 * more).
 */
async function loadForeignDecoders(): Promise<Map<DecodableFormat, Decoder>> {
  const [{ default: jpeg }, { default: gif }, bmp] = await Promise.all([
    import('jpeg-js'),
    import('omggif'),
    import('bmp-ts'),
  ]);
  return new Map<DecodableFormat, Decoder>([
    [
      'jpeg',
      (bytes) =>
        jpeg.decode(bytes, {
          // Both caps also cover a frame header the header reader did not see.
          maxResolutionInMP: MAX_IMAGE_SIDE ** 2 / 1e6,
          maxMemoryUsageInMB: (MAX_JPEG_DECODE_BYTES + JPEG_TABLE_BYTES) / 2 ** 20,
        }) as Bitmap,
    ],
    [
      'gif',
      (bytes) => {
        // omggif never returns from some corrupt code streams.
        checkGifCodes(bytes);
        const reader = new gif.GifReader(bytes);
        const data = Buffer.alloc(reader.width * reader.height * 4);
        reader.decodeAndBlitFrameRGBA(0, data);
        return { data, width: reader.width, height: reader.height };
      },
    ],
    [
      'bmp',
      (bytes) => {
        const { data, width, height } = bmp.decode(bytes);
        // bmp-ts gives ABGR; alpha is ignored, as browsers ignore it in most BMPs.
        for (let p = 0; p < data.length; p += 4) {
          const blue = data[p + 1]!;
          data[p] = data[p + 3]!;
          data[p + 1] = data[p + 2]!;
          data[p + 2] = blue;
          data[p + 3] = 0xff;
        }
        return { data, width, height };
      },
    ],
  ]);
}

let foreignDecoders: Promise<Map<DecodableFormat, Decoder>> | undefined;

async function loadDecoder(format: DecodableFormat): Promise<Decoder> {
  if (format === 'png') return decodePng;
  foreignDecoders ??= loadForeignDecoders();
  return (await foreignDecoders).get(format)!;
}

export interface DecodeOptions {
  /** Milliseconds the decode may run, instead of the budget for the image's size: for a test that needs it to run out. */
  budgetMs?: number;
  /** A JPEG's decode scale (1/N), instead of the one for its size: for measuring what each costs in accuracy. */
  jpegScale?: JpegScale;
}

/**
 * A JPEG is decoded at the smallest of 1/8, 1/4 and 1/2 scale that keeps
 * its short side at least this many pixels (or at full size). The transform
 * crops to the ink and scales it to 20 px, so a digit that fills a good part
 * of the photo needs a few dozen pixels, not the photo's hundreds. Measured
 * (`npm run bench -- jpeg-scale`, 500 paper photos of 320×240, 2-epoch MLP):
 * with the digit drawn 120–210 px, jpeg-js at full size 97.6%, 1/2 97.6%,
 * 1/4 (short side 60) 98.2%, 1/8 (30) 96.8%; drawn 40–70 px, 96.8%, 97.0%,
 * 94.8% and 31.8%. A digit that comes out smaller than MNIST's 20 px is
 * decoded again finer (`preprocessImage`), which gives 98.2% and 96.8%.
 */
export const MIN_JPEG_DECODE_SIDE = 48;

/**
 * A JPEG's luma at the scale for its size, from the project's decoder; the
 * few files whose first component is not luma (CMYK, YCCK, Adobe RGB) get
 * jpeg-js's full-size RGBA instead.
 */
function jpegDecoder(fullSize: Decoder, scale: JpegScale): (bytes: Buffer) => Pixels {
  return (bytes) => {
    const luma = decodeJpegLuma(bytes, scale);
    return luma ? { ...luma, channels: 1, scale } : { ...fullSize(bytes), channels: 4, scale: 1 };
  };
}

/** Decoded pixels, and the fraction of the declared size they have. */
type Pixels = { data: RawImage['data']; width: number; height: number; channels: 1 | 4; scale: number };

/** How long decoding an image of the header's size may take, in all. */
export function decodeBudgetMs(header: Pick<ImageHeader, 'width' | 'height'>): number {
  return Math.ceil(DECODE_BUDGET_MS + (DECODE_MS_PER_MEGAPIXEL * header.width * header.height) / 1e6);
}

/**
 * The project's PNG and JPEG decoders, or the format's decoder package; a
 * JPEG may come out at 1/`scale` of its declared size.
 * EXIF orientation is not applied here: the header reader has it, and the
 * transform applies it to the much smaller working image. A decoder that
 * fails to load is the server's fault, so only the decoding itself becomes a
 * CorruptImageError, or an ImageTooComplexError when it runs out of time.
 */
export async function decodeImage(
  bytes: Buffer,
  header: ImageHeader & { format: DecodableFormat },
  options: DecodeOptions,
): Promise<RawImage & { scale: number }> {
  const { format, orientation } = header;
  const budgetMs = options.budgetMs ?? decodeBudgetMs(header);
  const loaded = await loadDecoder(format);
  const decoder: (bytes: Buffer) => Pixels =
    format === 'jpeg'
      ? jpegDecoder(loaded, options.jpegScale ?? chooseJpegScale(header.width, header.height, MIN_JPEG_DECODE_SIDE))
      : (input) => ({ ...loaded(input), channels: 4, scale: 1 });
  const budgeted =
    format !== 'png' || header.width * header.height > UNBUDGETED_PNG_PIXELS || options.budgetMs !== undefined;
  let pixels: Pixels;
  try {
    pixels = budgeted ? runWithin(budgetMs, () => decoder(bytes)) : decoder(bytes);
  } catch (error) {
    if (error instanceof BudgetExceededError)
      throw new ImageTooComplexError(`the ${format} image took too long to decode`);
    const detail = error instanceof PngFormatError || error instanceof JpegFormatError ? `: ${error.message}` : '';
    throw new CorruptImageError(`the ${format} image could not be decoded${detail}`, { cause: error });
  }
  const { data, width, height, channels, scale } = pixels;
  const expected = [Math.ceil(header.width / scale), Math.ceil(header.height / scale)];
  if (width !== expected[0] || height !== expected[1] || width * height * channels !== data.length) {
    throw new CorruptImageError(
      `the ${format} image decoded to ${width}×${height} pixels, not what its header declared`,
    );
  }
  return { data, width, height, channels, orientation, scale };
}
