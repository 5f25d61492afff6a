import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Jimp } from 'jimp';
import jpeg from 'jpeg-js';
import { checkImage, MIN_JPEG_DECODE_SIDE } from '#lib/image/decode';
import { chooseJpegScale, decodeJpegLuma, JpegFormatError, type JpegScale } from '#lib/image/jpeg';
import { preprocessImage } from '#lib/image/preprocess';
import { seededRandom } from '#lib/training/batches';
import { paperPhoto } from '../scripts/bench/rerender.ts';
import { testMnist } from './support/env.ts';
import { b422Restart, cmyk, greyProg, greyRestart, progRestart, rgb } from './support/jpeg-fixtures.ts';

function correlation(a: Float32Array, b: Float32Array): number {
  const mean = (x: Float32Array) => x.reduce((sum, v) => sum + v, 0) / x.length;
  const [ma, mb] = [mean(a), mean(b)];
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += (a[i]! - ma) * (b[i]! - mb);
    aa += (a[i]! - ma) ** 2;
    bb += (b[i]! - mb) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

/** A photo-like 4:2:0 baseline JPEG from jimp's encoder: noisy light paper, a dark ring, colour on top. */
async function photo(width: number, height: number, seed = 1): Promise<Buffer> {
  const random = seededRandom(seed);
  const image = new Jimp({ width, height, color: 0xffffffff });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const ring = Math.abs(Math.hypot(x - width / 2, y - height / 2) - Math.min(width, height) / 4) < 4;
      const paper = 180 + (x / width) * 30 + (random() - 0.5) * 20;
      const v = ring ? 40 : paper;
      image.bitmap.data.set([v, v * 0.9 + 10, v - 10, 255], (y * width + x) * 4);
    }
  }
  return image.getBuffer('image/jpeg', { quality: 80 });
}

/** jpeg-js's full-size decode as luma, box-averaged by `scale` (partial boxes at the edges). */
function referenceLuma(bytes: Buffer, scale: number) {
  const { data, width, height } = jpeg.decode(bytes);
  const w = Math.ceil(width / scale);
  const h = Math.ceil(height / scale);
  const out = new Float64Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let sum = 0;
      let n = 0;
      for (let yy = y * scale; yy < Math.min(height, (y + 1) * scale); yy++) {
        for (let xx = x * scale; xx < Math.min(width, (x + 1) * scale); xx++) {
          const p = (yy * width + xx) * 4;
          sum += (77 * data[p]! + 150 * data[p + 1]! + 29 * data[p + 2]!) / 256;
          n++;
        }
      }
      out[y * w + x] = sum / n;
    }
  }
  return { data: out, width: w, height: h };
}

function differences(bytes: Buffer, scale: JpegScale) {
  const ours = decodeJpegLuma(bytes, scale);
  assert.ok(ours, 'decoded by the project decoder');
  const reference = referenceLuma(bytes, scale);
  assert.deepEqual([ours.width, ours.height], [reference.width, reference.height]);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < reference.data.length; i++) {
    const d = Math.abs(ours.data[i]! - reference.data[i]!);
    sum += d;
    max = Math.max(max, d);
  }
  return { mean: sum / reference.data.length, max };
}

const files = async (): Promise<Record<string, Buffer>> => ({
  'baseline 4:2:0 (jimp)': await photo(101, 67),
  'baseline 4:2:2, a restart every MCU row': b422Restart,
  'progressive 4:2:0, a restart every 2 MCUs': progRestart,
  'greyscale baseline, a restart every 3 MCUs': greyRestart,
  'greyscale progressive': greyProg,
});

describe('decodeJpegLuma', () => {
  it('gives the luma jpeg-js gives at full scale, within 2 levels, for baseline, progressive, grey and restart files', async () => {
    for (const [name, bytes] of Object.entries(await files())) {
      const { max } = differences(bytes, 1);
      assert.ok(max <= 2, `${name}: max difference ${max}`);
    }
  });

  it('at 1/2, 1/4 and 1/8 gives planes of the rounded-up size whose pixels average the full-size ones', async () => {
    for (const [name, bytes] of Object.entries(await files())) {
      for (const scale of [2, 4, 8] as const) {
        // What is lost is the frequencies the scale drops: paper noise and the edges of strokes.
        const { mean } = differences(bytes, scale);
        assert.ok(mean < 4, `${name} at 1/${scale}: mean difference ${mean.toFixed(2)}`);
      }
    }
  });

  it('decodes a 1×1 and a 9×17 image at every scale', async () => {
    for (const [width, height] of [
      [1, 1],
      [9, 17],
    ] as const) {
      const bytes = await photo(width, height);
      for (const scale of [1, 2, 4, 8] as const) {
        const ours = decodeJpegLuma(bytes, scale)!;
        assert.deepEqual([ours.width, ours.height], [Math.ceil(width / scale), Math.ceil(height / scale)]);
      }
    }
  });

  it('leaves CMYK and Adobe RGB files, whose first component is not luma, to jpeg-js', async () => {
    assert.equal(decodeJpegLuma(cmyk, 4), undefined);
    assert.equal(decodeJpegLuma(rgb, 4), undefined);
    for (const bytes of [cmyk, rgb]) {
      const { width, height, format } = await preprocessImage(bytes);
      assert.deepEqual({ width, height, format }, { width: 52, height: 44, format: 'jpeg' });
    }
  });

  it('damaged files that pass the header checks decode to something or throw JpegFormatError, nothing else', async () => {
    const originals = [await photo(64, 48), progRestart, greyProg];
    await fc.assert(
      fc.property(
        fc.constantFrom(...originals),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.option(fc.nat(), { nil: undefined }),
        fc.constantFrom<JpegScale>(1, 2, 4, 8),
        (original, overwrites, truncateAt, scale) => {
          let bytes = Buffer.from(original);
          for (const [at, value] of overwrites) bytes[2 + (at % (bytes.length - 2))] = value;
          if (truncateAt !== undefined) bytes = bytes.subarray(0, 2 + (truncateAt % (bytes.length - 2)));
          try {
            // As in preprocessImage: what the header refuses never reaches the decoder.
            checkImage(bytes);
          } catch {
            return;
          }
          try {
            decodeJpegLuma(bytes, scale);
          } catch (error) {
            if (!(error instanceof JpegFormatError)) throw error;
          }
        },
      ),
      { numRuns: 1500, seed: 42 },
    );
  });
});

describe('preprocessImage on JPEGs decoded at reduced scale', () => {
  it('decodes a photo again at a finer scale when its digit comes out smaller than 20 px', async () => {
    const { test } = await testMnist();
    let served = 0;
    let quarter = 0;
    const photos = 10;
    for (let i = 0; i < photos; i++) {
      const digit = test.images.subarray(i * 784, (i + 1) * 784);
      // Drawn 40–70 px in a 320×240 photo: 7–12 px at the 1/4 scale its size alone would get.
      const small = await paperPhoto(digit, i + 1, [40, 70]);
      const fullSize = (await preprocessImage(small, { jpegScale: 1 })).input;
      served += correlation((await preprocessImage(small)).input, fullSize) / photos;
      quarter += correlation((await preprocessImage(small, { jpegScale: 4 })).input, fullSize) / photos;
    }
    assert.ok(served > 0.95 && served > quarter + 0.05, `served ${served.toFixed(3)}, 1/4 ${quarter.toFixed(3)}`);
  });
});

describe('chooseJpegScale', () => {
  it(`takes the smallest scale that keeps the short side at least ${MIN_JPEG_DECODE_SIDE} px`, () => {
    const scale = (width: number, height: number) => chooseJpegScale(width, height, MIN_JPEG_DECODE_SIDE);
    assert.equal(scale(320, 240), 4);
    assert.equal(scale(4032, 3024), 8);
    assert.equal(scale(640, 383), 4);
    assert.equal(scale(200, 100), 2);
    assert.equal(scale(84, 112), 1);
    assert.equal(scale(28, 28), 1);
  });
});
