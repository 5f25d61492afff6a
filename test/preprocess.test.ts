import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Jimp } from 'jimp';
import { AppError } from '#lib/errors';
import { seededRandom } from '#lib/training/batches';
import {
  ImageTooLargeError,
  MAX_IMAGE_BYTES,
  MAX_IMAGE_SIDE,
  MAX_JPEG_DECODE_BYTES,
  jpegDecodeBytes,
  checkImage,
} from '#lib/image/decode';
import { CorruptImageError, ImageTooComplexError, UnsupportedImageError, readImageHeader } from '#lib/image/header';
import { EmptyImageError, toMnistInput, type RawImage } from '#lib/image/mnist-transform';
import { InvalidPixelsError, preprocessImage, preprocessPixels } from '#lib/image/preprocess';
import { MNIST_PIXELS } from '#lib/mnist-shape';
import { MAX_JPEG_SCANS } from '#lib/image/header';
import { testMnist } from './support/env.ts';
import { frameHeader, progressiveJpeg } from './support/jpeg.ts';

const DIGITS = 50;
const { images: testImages } = (await testMnist()).test;
// Every 97th digit, so the sample is spread over the file's writers and classes.
const digits = Array.from({ length: DIGITS }, (_, k) =>
  testImages.slice(k * 97 * MNIST_PIXELS, (k * 97 + 1) * MNIST_PIXELS),
);

/** The digit's intensity at a fractional pixel position, bilinear, 0 outside. */
function sample(digit: Uint8Array, u: number, v: number): number {
  if (u <= -1 || v <= -1 || u >= 28 || v >= 28) return 0;
  const x0 = Math.floor(u);
  const y0 = Math.floor(v);
  const tx = u - x0;
  const ty = v - y0;
  const top = at(digit, x0, y0) * (1 - tx) + at(digit, x0 + 1, y0) * tx;
  const bottom = at(digit, x0, y0 + 1) * (1 - tx) + at(digit, x0 + 1, y0 + 1) * tx;
  return top * (1 - ty) + bottom * ty;
}

function at(digit: Uint8Array, x: number, y: number): number {
  return x < 0 || y < 0 || x >= 28 || y >= 28 ? 0 : digit[y * 28 + x]!;
}

interface Placement {
  scale: number;
  left: number;
  top: number;
}

/** Draws the digit's 28×28 frame scaled and placed on a width×height canvas; `paint` turns intensity 0–255 into RGBA. */
function render(
  digit: Uint8Array,
  width: number,
  height: number,
  { scale, left, top }: Placement,
  paint: (ink: number, x: number, y: number) => [number, number, number, number],
): Buffer {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const ink = sample(digit, (x + 0.5 - left) / scale - 0.5, (y + 0.5 - top) / scale - 0.5);
      data.set(paint(ink, x, y), (y * width + x) * 4);
    }
  }
  return data;
}

/** A placement that keeps the digit's 20 px ink box inside the canvas but nowhere near centred. */
function offCentre(rand: () => number, width: number, height: number, scale: number): Placement {
  const margin = 4 * scale;
  const place = (size: number) => -margin + rand() * (size - 24 * scale + margin);
  return { scale, left: place(width), top: place(height) };
}

async function encode(
  data: Buffer,
  width: number,
  height: number,
  mime: 'image/png' | 'image/jpeg' | 'image/gif' | 'image/bmp',
): Promise<Buffer> {
  const image = new Jimp({ data, width, height });
  return mime === 'image/jpeg' ? image.getBuffer(mime, { quality: 80 }) : image.getBuffer(mime);
}

/** A browser canvas export: thick black strokes on a transparent background. */
async function canvasPng(digit: Uint8Array, rand: () => number): Promise<Buffer> {
  const placement = offCentre(rand, 280, 280, 7 + rand() * 2);
  const data = render(digit, 280, 280, placement, (ink) => [0, 0, 0, Math.min(255, Math.round(ink * 1.5))]);
  return encode(data, 280, 280, 'image/png');
}

/** A phone photo of dark ink on grey, unevenly lit, noisy paper, saved as JPEG. */
async function paperJpeg(digit: Uint8Array, rand: () => number, lighting = 30): Promise<Buffer> {
  const placement = offCentre(rand, 320, 240, 5 + rand() * 2);
  const data = render(digit, 320, 240, placement, (ink, x, y) => {
    const paper = 190 + (lighting * (x + y)) / 560 + (rand() + rand() + rand() - 1.5) * 14;
    const value = Math.max(0, Math.min(255, Math.round(paper * (1 - (0.7 * ink) / 255))));
    return [value, value, value, 255];
  });
  return encode(data, 320, 240, 'image/jpeg');
}

/** MNIST's own look, white on black, but enlarged and moved off centre. */
async function shiftedPng(digit: Uint8Array, rand: () => number): Promise<Buffer> {
  const placement = offCentre(rand, 150, 120, 3);
  const data = render(digit, 150, 120, placement, (ink) => {
    const value = Math.round(ink);
    return [value, value, value, 255];
  });
  return encode(data, 150, 120, 'image/png');
}

/** Stored size of an image displayed at width×height: orientations 5–8 store it on its side. */
function storedSize(width: number, height: number, orientation: number): [number, number] {
  return orientation >= 5 ? [height, width] : [width, height];
}

/**
 * The pixels a camera would store for an upright RGBA image under an EXIF
 * orientation: where each displayed pixel (x, y) comes from in storage, as
 * jimp's own table has it (sw1, sh1: stored width and height less one).
 */
function stored(upright: Buffer, width: number, height: number, orientation: number): Buffer {
  const [sw, sh] = storedSize(width, height, orientation);
  const source = (x: number, y: number): [number, number] =>
    [
      [x, y],
      [sw - 1 - x, y],
      [sw - 1 - x, sh - 1 - y],
      [x, sh - 1 - y],
      [y, x],
      [y, sh - 1 - x],
      [sw - 1 - y, sh - 1 - x],
      [sw - 1 - y, x],
    ][orientation - 1] as [number, number];
  const out = Buffer.alloc(upright.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [sx, sy] = source(x, y);
      upright.copy(out, (sy * sw + sx) * 4, (y * width + x) * 4, (y * width + x) * 4 + 4);
    }
  }
  return out;
}

/** Inserts an EXIF APP1 segment holding only an Orientation tag right after the JPEG's SOI. */
function withOrientation(jpeg: Buffer, orientation: number, littleEndian: boolean): Buffer {
  const tiff = Buffer.alloc(26);
  tiff.write(littleEndian ? 'II' : 'MM', 0, 'latin1');
  const u16 = (value: number, at: number) =>
    littleEndian ? tiff.writeUInt16LE(value, at) : tiff.writeUInt16BE(value, at);
  const u32 = (value: number, at: number) =>
    littleEndian ? tiff.writeUInt32LE(value, at) : tiff.writeUInt32BE(value, at);
  u16(42, 2);
  u32(8, 4); // IFD0 right after the TIFF header
  u16(1, 8); // one entry
  u16(0x0112, 10); // Orientation
  u16(3, 12); // SHORT
  u32(1, 14); // count
  u16(orientation, 18);
  u32(0, 22); // no next IFD
  const segment = Buffer.concat([Buffer.from([0xff, 0xe1, 0, 0]), Buffer.from('Exif\0\0', 'latin1'), tiff]);
  segment.writeUInt16BE(segment.length - 2, 2);
  return Buffer.concat([jpeg.subarray(0, 2), segment, jpeg.subarray(2)]);
}

function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let meanA = 0;
  let meanB = 0;
  for (let i = 0; i < a.length; i++) {
    meanA += a[i]!;
    meanB += b[i]!;
  }
  meanA /= a.length;
  meanB /= b.length;
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += (a[i]! - meanA) * (b[i]! - meanB);
    aa += (a[i]! - meanA) ** 2;
    bb += (b[i]! - meanB) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

function centreOfMass(pixels: ArrayLike<number>): { x: number; y: number } {
  let mass = 0;
  let x = 0;
  let y = 0;
  for (let i = 0; i < MNIST_PIXELS; i++) {
    mass += pixels[i]!;
    x += pixels[i]! * (i % 28);
    y += pixels[i]! * Math.floor(i / 28);
  }
  return { x: x / mass, y: y / mass };
}

/** Renders every sample digit, preprocesses it, and checks it against the original. */
async function assertResemblesMnist(
  make: (digit: Uint8Array, rand: () => number) => Promise<Buffer>,
  minimumCorrelation: number,
): Promise<number> {
  const rand = seededRandom(42);
  let total = 0;
  for (const digit of digits) {
    const { input } = await preprocessImage(await make(digit, rand));
    assert.equal(input.length, MNIST_PIXELS);
    assert.ok(input.every((v) => v >= 0 && v <= 1));
    const centre = centreOfMass(input);
    assert.ok(
      Math.abs(centre.x - 14) <= 1 && Math.abs(centre.y - 14) <= 1,
      `centre of mass at ${centre.x}, ${centre.y}`,
    );
    total += correlation(input, digit);
  }
  const mean = total / digits.length;
  assert.ok(mean >= minimumCorrelation, `mean correlation with the MNIST originals is ${mean.toFixed(3)}`);
  return mean;
}

describe('preprocessImage on re-rendered MNIST digits', () => {
  it('recovers MNIST digits from a 280×280 canvas PNG of black strokes on transparency', async (t) => {
    t.diagnostic(`mean correlation ${(await assertResemblesMnist(canvasPng, 0.85)).toFixed(3)}`);
  });

  it('recovers MNIST digits from a 320×240 JPEG photo of dark ink on noisy, unevenly lit paper', async (t) => {
    t.diagnostic(`mean correlation ${(await assertResemblesMnist(paperJpeg, 0.85)).toFixed(3)}`);
  });

  it('recovers MNIST digits that were enlarged and shifted', async (t) => {
    t.diagnostic(`mean correlation ${(await assertResemblesMnist(shiftedPng, 0.85)).toFixed(3)}`);
  });

  it('reproduces a 28×28 MNIST digit sent as a PNG almost exactly', async () => {
    const data = render(digits[0]!, 28, 28, { scale: 1, left: 0, top: 0 }, (ink) => [ink, ink, ink, 255]);
    const { input, width, height, format } = await preprocessImage(await encode(data, 28, 28, 'image/png'));
    assert.deepEqual({ width, height, format }, { width: 28, height: 28, format: 'png' });
    assert.ok(correlation(input, digits[0]!) > 0.95);
  });

  it('reads light strokes on a transparent background as ink, not as blank', async () => {
    const rand = seededRandom(7);
    for (const digit of digits.slice(0, 5)) {
      const placement = offCentre(rand, 280, 280, 8);
      const data = render(digit, 280, 280, placement, (ink) => [255, 255, 255, Math.round(ink)]);
      const { input } = await preprocessImage(await encode(data, 280, 280, 'image/png'));
      assert.ok(correlation(input, digit) > 0.8);
    }
  });

  it('turns a JPEG by its EXIF orientation as jimp would, so phone photos come out upright', async () => {
    const digit = digits[8]!;
    const [width, height] = [84, 112];
    const upright = render(digit, width, height, { scale: 3, left: 0, top: 14 }, (ink) => [
      255 - ink,
      255 - ink,
      255 - ink,
      255,
    ]);
    for (const orientation of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const jpeg = withOrientation(
        await encode(
          stored(upright, width, height, orientation),
          ...storedSize(width, height, orientation),
          'image/jpeg',
        ),
        orientation,
        orientation % 2 === 0,
      );
      assert.equal(readImageHeader(jpeg).orientation, orientation);
      const ours = await preprocessImage(jpeg);
      assert.deepEqual([ours.width, ours.height], [width, height], `orientation ${orientation}`);
      const turnedByJimp = (await Jimp.fromBuffer(jpeg)).bitmap;
      assert.deepEqual([turnedByJimp.width, turnedByJimp.height], [width, height]);
      const oracle = toMnistInput({ ...turnedByJimp, channels: 4 });
      assert.ok(correlation(ours.input, oracle) > 0.99, `orientation ${orientation} agrees with jimp`);
      assert.ok(correlation(ours.input, digit) > 0.9, `orientation ${orientation} is upright`);
    }
  });

  it('decodes GIF and BMP as well', async () => {
    const data = render(digits[1]!, 56, 56, { scale: 2, left: 0, top: 0 }, (ink) => [
      255 - ink,
      255 - ink,
      255 - ink,
      255,
    ]);
    for (const mime of ['image/gif', 'image/bmp'] as const) {
      const { input, format } = await preprocessImage(await encode(data, 56, 56, mime));
      assert.equal(format, mime.slice('image/'.length));
      assert.ok(correlation(input, digits[1]!) > 0.9, mime);
    }
  });

  it('finds a digit that is a small part of a large photo', () => {
    const rand = seededRandom(13);
    for (const digit of digits.slice(10, 15)) {
      // The digit's 20 px box ends up about 180 px tall in a 1600×1200 frame.
      const placement = { scale: 9, left: 200 + rand() * 1100, top: 100 + rand() * 800 };
      const data = new Uint8Array(1600 * 1200);
      for (let y = 0, i = 0; y < 1200; y++) {
        for (let x = 0; x < 1600; x++, i++) {
          const ink = sample(
            digit,
            (x + 0.5 - placement.left) / placement.scale - 0.5,
            (y + 0.5 - placement.top) / placement.scale - 0.5,
          );
          data[i] = (200 - x / 40) * (1 - (0.6 * ink) / 255);
        }
      }
      const input = toMnistInput({ data, width: 1600, height: 1200, channels: 1 });
      assert.ok(correlation(input, digit) > 0.85);
    }
  });

  it('ignores a speck of dust far from the digit', async () => {
    const digit = digits[2]!;
    const data = render(digit, 280, 280, { scale: 7, left: 60, top: 40 }, (ink) => [0, 0, 0, Math.round(ink)]);
    const clean = (await preprocessImage(await encode(data, 280, 280, 'image/png'))).input;
    for (let y = 262; y < 266; y++) for (let x = 262; x < 266; x++) data.set([0, 0, 0, 255], (y * 280 + x) * 4);
    const dusty = (await preprocessImage(await encode(data, 280, 280, 'image/png'))).input;
    assert.ok(correlation(clean, dusty) > 0.99);
  });
});

describe('preprocessImage rejects bad input before decoding', () => {
  const pngSignature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

  /** Signature and an IHDR chunk (CRC left zero: it is never checked before the size is). */
  function pngHeader(width: number, height: number): Buffer {
    const bytes = Buffer.alloc(33);
    bytes.set(pngSignature);
    bytes.writeUInt32BE(13, 8);
    bytes.write('IHDR', 12, 'latin1');
    bytes.writeUInt32BE(width, 16);
    bytes.writeUInt32BE(height, 20);
    bytes.set([8, 6, 0, 0, 0], 24);
    return bytes;
  }

  async function smallPng(): Promise<Buffer> {
    return encode(
      render(digits[3]!, 28, 28, { scale: 1, left: 0, top: 0 }, (v) => [v, v, v, 255]),
      28,
      28,
      'image/png',
    );
  }

  it('returns 415 for an empty body', async () => {
    const error = await preprocessImage(Buffer.alloc(0)).catch((e: unknown) => e);
    assert.ok(error instanceof UnsupportedImageError);
    assert.ok(error instanceof AppError);
    assert.equal(error.status, 415);
    assert.equal(error.code, 'unsupported_image');
  });

  it('returns 415 for random bytes', async () => {
    const rand = seededRandom(11);
    const bytes = Buffer.from(Array.from({ length: 2048 }, () => Math.floor(rand() * 256)));
    await assert.rejects(preprocessImage(bytes), UnsupportedImageError);
    await assert.rejects(preprocessImage(Buffer.from('{"image": "not really"}')), UnsupportedImageError);
  });

  it('returns 415 for WebP, naming the formats that are supported', async () => {
    const webp = Buffer.alloc(30);
    webp.write('RIFF', 0, 'latin1');
    webp.writeUInt32LE(22, 4);
    webp.write('WEBPVP8L', 8, 'latin1');
    webp[20] = 0x2f;
    webp.writeUInt32LE(27 | (27 << 14), 21);
    await assert.rejects(preprocessImage(webp), (error: unknown) => {
      assert.ok(error instanceof UnsupportedImageError);
      assert.match(error.message, /webp.*png, jpeg, gif, bmp/);
      return true;
    });
  });

  it('returns 413 for a body over 1 MB whatever it holds', async () => {
    const bytes = Buffer.alloc(MAX_IMAGE_BYTES + 1);
    bytes.set(await smallPng());
    const error = await preprocessImage(bytes).catch((e: unknown) => e);
    assert.ok(error instanceof ImageTooLargeError);
    assert.equal(error.status, 413);
    assert.equal(error.code, 'image_too_large');
  });

  it('returns 413 for a 33-byte PNG that claims 100000×100000 pixels, from the header alone', async () => {
    const bomb = pngHeader(100_000, 100_000);
    // checkImage is synchronous, so the rejection cannot have come from the (async) decoder.
    assert.throws(() => checkImage(bomb), ImageTooLargeError);
    await assert.rejects(preprocessImage(bomb), ImageTooLargeError);
  });

  it('returns 413 for a PNG one pixel over the side limit', () => {
    assert.throws(() => checkImage(pngHeader(4097, 10)), ImageTooLargeError);
    assert.deepEqual(checkImage(pngHeader(4096, 4096)), { format: 'png', width: 4096, height: 4096, orientation: 1 });
  });

  it('returns 413 for a JPEG whose frame header claims 60000×60000', async () => {
    const jpeg = Buffer.from([
      0xff,
      0xd8, // SOI
      0xff,
      0xe0,
      0x00,
      0x10,
      0x4a,
      0x46,
      0x49,
      0x46,
      0x00,
      0x01,
      0x01,
      0x00,
      0x00,
      0x01,
      0x00,
      0x01,
      0x00,
      0x00, // APP0
      0xff,
      0xff, // fill bytes before the next marker
      0xff,
      0xc0,
      0x00,
      0x11,
      0x08,
      0xea,
      0x60,
      0xea,
      0x60,
      0x03,
      0x01,
      0x22,
      0x00,
      0x02,
      0x11,
      0x01,
      0x03,
      0x11,
      0x01, // SOF0
    ]);
    const components = [
      { h: 2, v: 2 },
      { h: 1, v: 1 },
      { h: 1, v: 1 },
    ];
    assert.deepEqual(readImageHeader(jpeg), {
      format: 'jpeg',
      width: 60000,
      height: 60000,
      orientation: 1,
      components,
    });
    await assert.rejects(preprocessImage(jpeg), ImageTooLargeError);
  });

  it('returns 413 for a real JPEG patched to declare 5000×5000', async () => {
    const jpeg = await encode(
      render(digits[4]!, 64, 48, { scale: 2, left: 0, top: 0 }, (v) => [v, v, v, 255]),
      64,
      48,
      'image/jpeg',
    );
    const components = [
      { h: 1, v: 1 },
      { h: 1, v: 1 },
      { h: 1, v: 1 },
    ];
    assert.deepEqual(readImageHeader(jpeg), { format: 'jpeg', width: 64, height: 48, orientation: 1, components });
    const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
    jpeg.writeUInt16BE(5000, sof + 5);
    jpeg.writeUInt16BE(5000, sof + 7);
    await assert.rejects(preprocessImage(jpeg), ImageTooLargeError);
  });

  it('returns 400, from the header alone, for a JPEG whose later frame header is larger than the first', async () => {
    const jpeg = await encode(
      render(digits[4]!, 64, 48, { scale: 2, left: 0, top: 0 }, (v) => [v, v, v, 255]),
      64,
      48,
      'image/jpeg',
    );
    const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
    const honest = Buffer.from(jpeg.subarray(sof, sof + 2 + jpeg.readUInt16BE(sof + 2)));
    jpeg.writeUInt16BE(5000, sof + 5);
    jpeg.writeUInt16BE(5000, sof + 7);
    const forged = Buffer.concat([jpeg.subarray(0, 2), honest, jpeg.subarray(2)]);
    assert.throws(
      () => checkImage(forged),
      (error: unknown) => error instanceof CorruptImageError && /more than one frame header/.test(error.message),
    );
  });

  describe('JPEG frame headers that jpeg-js would spend gigabytes or seconds on are refused from the header alone', () => {
    const grey = [{ h: 1, v: 1 }];
    const withFrame = (frame: Parameters<typeof frameHeader>[0]) =>
      Buffer.concat([Buffer.from([0xff, 0xd8]), frameHeader(frame), Buffer.from([0xff, 0xd9])]);
    const refusal = (bytes: Buffer) => {
      try {
        checkImage(bytes);
      } catch (error) {
        assert.ok(error instanceof AppError, String(error));
        return `${error.status} ${error.code}`;
      }
      return 'accepted';
    };

    it('415 for component counts other than 1, 3 and 4, which decode to nothing people send', () => {
      for (const count of [2, 5, 6, 255]) {
        const bytes = withFrame({ width: 4096, height: 4096, components: new Array(count).fill({ h: 1, v: 1 }) });
        assert.equal(refusal(bytes), '415 unsupported_image', `${count} components`);
      }
      for (const count of [1, 3, 4])
        assert.equal(
          refusal(withFrame({ width: 64, height: 64, components: new Array(count).fill({ h: 1, v: 1 }) })),
          'accepted',
        );
    });

    it('415 for sampling factors above 2, and 400 for a zero factor', () => {
      assert.equal(
        refusal(
          withFrame({
            width: 64,
            height: 64,
            components: [
              { h: 4, v: 1 },
              { h: 1, v: 1 },
              { h: 1, v: 1 },
            ],
          }),
        ),
        '415 unsupported_image',
      );
      assert.equal(
        refusal(withFrame({ width: 64, height: 64, components: [{ h: 2, v: 3 }] })),
        '415 unsupported_image',
      );
      assert.equal(refusal(withFrame({ width: 64, height: 64, components: [{ h: 0, v: 1 }] })), '400 corrupt_image');
      assert.equal(
        refusal(
          withFrame({
            width: 64,
            height: 64,
            components: [
              { h: 2, v: 2 },
              { h: 1, v: 1 },
              { h: 1, v: 1 },
            ],
          }),
        ),
        'accepted',
      );
    });

    it('415 for lossless, hierarchical and arithmetic-coded frames, which jpeg-js cannot decode', () => {
      for (const marker of [0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]) {
        assert.equal(
          refusal(withFrame({ width: 64, height: 64, components: grey, marker })),
          '415 unsupported_image',
          marker.toString(16),
        );
      }
      for (const marker of [0xc0, 0xc1, 0xc2])
        assert.equal(refusal(withFrame({ width: 64, height: 64, components: grey, marker })), 'accepted');
    });

    it('413 for a frame whose decode needs more memory than a 4096×4096 photo with 4:2:0 chroma', () => {
      const chroma420 = [
        { h: 2, v: 2 },
        { h: 1, v: 1 },
        { h: 1, v: 1 },
      ];
      const full = [
        { h: 1, v: 1 },
        { h: 1, v: 1 },
        { h: 1, v: 1 },
      ];
      assert.equal(jpegDecodeBytes(MAX_IMAGE_SIDE, MAX_IMAGE_SIDE, chroma420), MAX_JPEG_DECODE_BYTES);
      assert.equal(
        refusal(withFrame({ width: MAX_IMAGE_SIDE, height: MAX_IMAGE_SIDE, components: chroma420 })),
        'accepted',
      );
      assert.equal(
        refusal(withFrame({ width: MAX_IMAGE_SIDE, height: MAX_IMAGE_SIDE, components: full })),
        '413 image_too_large',
      );
      assert.equal(
        refusal(
          withFrame({ width: MAX_IMAGE_SIDE, height: MAX_IMAGE_SIDE, components: new Array(4).fill({ h: 2, v: 2 }) }),
        ),
        '413 image_too_large',
      );
      assert.equal(refusal(withFrame({ width: 3000, height: 3000, components: full })), 'accepted');
    });

    it(`413 for a progressive JPEG of more than ${MAX_JPEG_SCANS} scans, counting only real scan markers`, () => {
      const frame = { width: 64, height: 64, components: grey };
      assert.equal(refusal(progressiveJpeg(frame, MAX_JPEG_SCANS)), 'accepted');
      assert.equal(refusal(progressiveJpeg(frame, MAX_JPEG_SCANS + 1)), '413 image_too_complex');
      // Scan markers inside a comment (an EXIF thumbnail has them too) are segment data, not scans.
      const comment = Buffer.concat([
        Buffer.from([0xff, 0xfe, 0x0f, 0xa2]),
        Buffer.alloc(4000, Buffer.from([0xff, 0xda])),
      ]);
      const jpeg = progressiveJpeg(frame, MAX_JPEG_SCANS);
      assert.equal(refusal(Buffer.concat([jpeg.subarray(0, 2), comment, jpeg.subarray(2)])), 'accepted');
    });
  });

  it('stops a decode that outruns its time budget with a 413 image_too_complex', async () => {
    // Legal, and about a second of jpeg-js walking 65536 blocks a scan.
    const expensive = progressiveJpeg({ width: 2048, height: 2048, components: [{ h: 1, v: 1 }] }, MAX_JPEG_SCANS);
    const error = await preprocessImage(expensive, { budgetMs: 20 }).catch((e: unknown) => e);
    assert.ok(error instanceof ImageTooComplexError, String(error));
    assert.equal(error.status, 413);
    assert.equal(error.code, 'image_too_complex');
  });

  it('returns 400 for a truncated PNG', async () => {
    const png = await smallPng();
    const error = await preprocessImage(png.subarray(0, Math.floor(png.length / 2))).catch((e: unknown) => e);
    assert.ok(error instanceof CorruptImageError);
    assert.equal(error.status, 400);
    assert.equal(error.code, 'corrupt_image');
    await assert.rejects(preprocessImage(png.subarray(0, 20)), CorruptImageError);
  });

  it('returns 400 for zero dimensions', async () => {
    await assert.rejects(preprocessImage(pngHeader(0, 10)), CorruptImageError);
    const bmp = await encode(Buffer.alloc(4 * 4 * 4, 255), 4, 4, 'image/bmp');
    bmp.writeInt32LE(-4, 18);
    await assert.rejects(preprocessImage(bmp), CorruptImageError);
  });

  it('returns 400 for a PNG with a second IHDR that would change its size', async () => {
    const png = await smallPng();
    const second = pngHeader(100_000, 100_000).subarray(8);
    const iend = png.length - 12;
    await assert.rejects(
      preprocessImage(Buffer.concat([png.subarray(0, iend), second, png.subarray(iend)])),
      CorruptImageError,
    );
  });

  it('returns 400 for a GIF whose first frame is larger than its screen', async () => {
    const gif = await encode(
      render(digits[5]!, 28, 28, { scale: 1, left: 0, top: 0 }, (v) => [v, v, v, 255]),
      28,
      28,
      'image/gif',
    );
    assert.deepEqual(readImageHeader(gif), { format: 'gif', width: 28, height: 28, orientation: 1 });
    const descriptor = gif.indexOf(Buffer.from([0x2c, 0, 0, 0, 0, 28, 0, 28, 0]));
    assert.ok(descriptor > 0);
    gif.writeUInt16LE(60000, descriptor + 5);
    await assert.rejects(preprocessImage(gif), CorruptImageError);
  });

  it('reads WebP dimensions from lossy, lossless and extended headers', () => {
    const riff = (chunk: string, payload: number[]) => {
      const bytes = Buffer.alloc(20 + payload.length);
      bytes.write('RIFF', 0, 'latin1');
      bytes.write('WEBP', 8, 'latin1');
      bytes.write(chunk, 12, 'latin1');
      bytes.set(payload, 20);
      return bytes;
    };
    const lossy = riff('VP8 ', [0, 0, 0, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]);
    assert.deepEqual(readImageHeader(lossy), { format: 'webp', width: 320, height: 240, orientation: 1 });
    const lossless = riff('VP8L', [0x2f, 0, 0, 0, 0]);
    lossless.writeUInt32LE((320 - 1) | ((240 - 1) << 14), 21);
    assert.deepEqual(readImageHeader(lossless), { format: 'webp', width: 320, height: 240, orientation: 1 });
    const extended = riff('VP8X', [0, 0, 0, 0, 0x3f, 0x01, 0x00, 0xef, 0x00, 0x00]);
    assert.deepEqual(readImageHeader(extended), { format: 'webp', width: 320, height: 240, orientation: 1 });
  });

  it('reads BMP dimensions, including bottom-up and top-down row order', async () => {
    const bmp = await encode(Buffer.alloc(5 * 3 * 4, 255), 5, 3, 'image/bmp');
    assert.deepEqual(readImageHeader(bmp), { format: 'bmp', width: 5, height: 3, orientation: 1 });
    bmp.writeInt32LE(-3, 22);
    assert.deepEqual(readImageHeader(bmp), { format: 'bmp', width: 5, height: 3, orientation: 1 });
  });

  it('never fails with anything but a typed error on mangled headers', () => {
    const prefixes = [
      pngSignature,
      [0xff, 0xd8, 0xff],
      [...Buffer.from('GIF89a')],
      [...Buffer.from('BM')],
      [...Buffer.from('RIFF\0\0\0\0WEBP')],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...prefixes), fc.uint8Array({ maxLength: 64 }), (prefix, rest) => {
        try {
          const { width, height } = checkImage(Buffer.from([...prefix, ...rest]));
          assert.ok(width > 0 && height > 0);
        } catch (error) {
          assert.ok(error instanceof AppError, String(error));
        }
      }),
    );
  });
});

describe('preprocessImage finds no digit in a blank image', () => {
  it('returns 400 no_digit_found for an all-white image', async () => {
    const error = await preprocessImage(await encode(Buffer.alloc(100 * 80 * 4, 255), 100, 80, 'image/png')).catch(
      (e: unknown) => e,
    );
    assert.ok(error instanceof EmptyImageError);
    assert.equal(error.status, 400);
    assert.equal(error.code, 'no_digit_found');
  });

  it('returns 400 no_digit_found for an empty transparent canvas', async () => {
    await assert.rejects(
      preprocessImage(await encode(Buffer.alloc(280 * 280 * 4), 280, 280, 'image/png')),
      EmptyImageError,
    );
  });

  it('returns 400 no_digit_found for a photo of blank, noisy paper', async () => {
    const blank = new Uint8Array(MNIST_PIXELS);
    await assert.rejects(preprocessImage(await paperJpeg(blank, seededRandom(5))), EmptyImageError);
  });
});

describe('toMnistInput', () => {
  it('accepts grayscale buffers', () => {
    const input = toMnistInput({ data: digits[6]!, width: 28, height: 28, channels: 1 });
    assert.ok(correlation(input, digits[6]!) > 0.95);
  });

  it('always gives 784 values in 0–1 or EmptyImageError, for any image', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        fc.constantFrom<1 | 4>(1, 4),
        fc.integer({ min: 0, max: 2 ** 31 }),
        (width, height, channels, seed) => {
          const rand = seededRandom(seed);
          const image: RawImage = {
            width,
            height,
            channels,
            data: Uint8Array.from({ length: width * height * channels }, () => rand() * 256),
          };
          try {
            const input = toMnistInput(image);
            assert.equal(input.length, MNIST_PIXELS);
            assert.ok(input.every((v) => v >= 0 && v <= 1));
          } catch (error) {
            assert.ok(error instanceof EmptyImageError, String(error));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rejects a buffer that does not match its size', () => {
    assert.throws(() => toMnistInput({ data: new Uint8Array(10), width: 28, height: 28, channels: 1 }), RangeError);
  });
});

describe('preprocessPixels', () => {
  it('scales 784 values in 0–255 to 0–1 without re-centring', () => {
    const pixels = Array.from({ length: MNIST_PIXELS }, (_, i) => (i * 7) % 256);
    const input = preprocessPixels(pixels);
    assert.ok(input instanceof Float32Array);
    pixels.forEach((v, i) => assert.equal(input[i], Math.fround(v / 255)));
    assert.deepEqual(preprocessPixels(Float32Array.from(pixels)), input);
    assert.deepEqual(
      preprocessPixels(digits[0]!),
      Float32Array.from(digits[0]!, (v) => v / 255),
    );
  });

  it('keeps every valid array in 0–1', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 255, noNaN: true }), { minLength: MNIST_PIXELS, maxLength: MNIST_PIXELS }),
        (pixels) => {
          assert.ok(preprocessPixels(pixels).every((v) => v >= 0 && v <= 1));
        },
      ),
      { numRuns: 50 },
    );
  });

  const valid = () => new Array<unknown>(MNIST_PIXELS).fill(0);
  const withValue = (value: unknown) => {
    const pixels = valid();
    pixels[300] = value;
    return pixels;
  };
  const bad: Array<[string, unknown]> = [
    ['783 values', new Array(783).fill(0)],
    ['785 values', new Array(785).fill(0)],
    ['an empty array', []],
    ['NaN', withValue(NaN)],
    ['Infinity', withValue(Infinity)],
    ['-1', withValue(-1)],
    ['256', withValue(256)],
    ['a numeric string', withValue('12')],
    ['null', withValue(null)],
    ['a string instead of an array', '0'.repeat(MNIST_PIXELS)],
    ['an object instead of an array', { length: MNIST_PIXELS }],
    ['undefined', undefined],
  ];
  for (const [name, pixels] of bad) {
    it(`returns 400 invalid_pixels for ${name}`, () => {
      assert.throws(
        () => preprocessPixels(pixels),
        (error: unknown) =>
          error instanceof InvalidPixelsError && error.status === 400 && error.code === 'invalid_pixels',
      );
    });
  }
});
