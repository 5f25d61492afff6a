import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Jimp } from 'jimp';
import { checkImage, decodeImage, ImageTooLargeError } from '#lib/image/decode';
import { UnsupportedImageError } from '#lib/image/header';
import { mnistTransform, type RawImage } from '#lib/image/mnist-transform';
import { encodeGreyPng } from '#lib/image/png-encode';
import { preprocessImage, preprocessNumber } from '#lib/image/preprocess';
import { MAX_NUMBER_PARTS, NoNumberFoundError, segmentNumber, TooManyPartsError } from '#lib/image/segment';
import { MNIST_PIXELS } from '#lib/mnist-shape';
import { canvasDrawing } from '../scripts/bench/rerender.ts';
import { testMnist } from './support/env.ts';
import { chunk, PNG_SIGNATURE } from './support/png.ts';

type Point = [number, number];

/** White paper with black pen strokes, as grey pixels. */
class Paper {
  readonly data: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.data = new Uint8Array(width * height).fill(255);
  }

  /** A pen of `radius` px drawn through the points. */
  stroke(points: Point[], radius = 4): this {
    const dot = (cx: number, cy: number) => {
      for (let y = Math.floor(cy - radius); y <= Math.ceil(cy + radius); y++) {
        for (let x = Math.floor(cx - radius); x <= Math.ceil(cx + radius); x++) {
          const inside = (x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2;
          if (inside && x >= 0 && y >= 0 && x < this.width && y < this.height) this.data[y * this.width + x] = 0;
        }
      }
    };
    for (let k = 0; k + 1 < Math.max(2, points.length); k++) {
      const [a, b] = [points[k]!, points[Math.min(k + 1, points.length - 1)]!];
      const steps = Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1])));
      for (let s = 0; s <= steps; s++) dot(a[0] + ((b[0] - a[0]) * s) / steps, a[1] + ((b[1] - a[1]) * s) / steps);
    }
    return this;
  }

  /** An ellipse outline centred on (cx, cy). */
  ring(cx: number, cy: number, rx: number, ry: number, radius = 4): this {
    const points: Point[] = [];
    for (let k = 0; k <= 64; k++)
      points.push([cx + rx * Math.cos((k * Math.PI) / 32), cy + ry * Math.sin((k * Math.PI) / 32)]);
    return this.stroke(points, radius);
  }

  image(): RawImage {
    return { data: this.data, width: this.width, height: this.height, channels: 1 };
  }
}

/** A stroke "1" (a bar) from (x, top) down `tall` px. */
const one = (paper: Paper, x: number, top: number, tall: number) =>
  paper.stroke([
    [x, top],
    [x, top + tall],
  ]);

describe('segmentNumber: a digit in several strokes is one part', () => {
  test('a 5 whose top bar was drawn apart from its body', () => {
    const paper = new Paper(120, 130)
      .stroke([
        [30, 30],
        [30, 62],
        [70, 62],
        [72, 100],
        [26, 104],
      ])
      .stroke([
        [36, 16],
        [84, 16],
      ]);
    assert.equal(segmentNumber(paper.image()).length, 1);
    assert.equal(mnistTransform(paper.image()).marks, 1);
  });

  test('a 7 whose crossbar does not touch its stem', () => {
    const paper = new Paper(110, 130)
      .stroke([
        [20, 20],
        [80, 20],
        [45, 110],
      ])
      .stroke([
        [28, 65],
        [50, 65],
      ]);
    assert.equal(segmentNumber(paper.image()).length, 1);
    assert.equal(mnistTransform(paper.image()).marks, 1);
  });

  test('a 4 whose stem was drawn separately, inside the columns of its other stroke', () => {
    const paper = new Paper(120, 140)
      .stroke([
        [25, 20],
        [25, 70],
        [85, 70],
      ])
      .stroke([
        [65, 82],
        [65, 125],
      ]);
    assert.equal(segmentNumber(paper.image()).length, 1);
    assert.equal(mnistTransform(paper.image()).marks, 1);
  });

  test('a 1 drawn as a broken, dashed stroke', () => {
    const paper = new Paper(100, 130);
    for (const top of [15, 45, 75]) one(paper, 50, top, 20);
    assert.equal(segmentNumber(paper.image()).length, 1);
    assert.equal(mnistTransform(paper.image()).marks, 1);
  });
});

describe('segmentNumber: separate digits', () => {
  test('"11" with a gap is two parts, left to right', () => {
    const paper = new Paper(150, 120);
    one(paper, 40, 15, 85);
    one(paper, 100, 15, 85);
    const parts = segmentNumber(paper.image());
    assert.equal(parts.length, 2);
    assert.ok(parts[0]!.box[0] < 40 && parts[1]!.box[0] > 60, JSON.stringify(parts.map((p) => p.box)));
    assert.equal(mnistTransform(paper.image()).marks, 2);
  });

  test('two touching 0s are cut into two parts, each with its own ink', () => {
    const paper = new Paper(240, 130).ring(70, 65, 45, 48).ring(158, 65, 45, 48);
    assert.equal(mnistTransform(paper.image()).marks, 2);
    const parts = segmentNumber(paper.image());
    assert.equal(parts.length, 2);
    const [left, right] = parts.map((part) => part.box);
    assert.ok(left![0] + left![2] <= right![0] + 8, `the cut boxes overlap: ${JSON.stringify([left, right])}`);
    for (const part of parts) assert.equal(part.input.length, MNIST_PIXELS);
  });

  test('dots and specks between and around digits are dropped', () => {
    const paper = new Paper(220, 130);
    one(paper, 40, 15, 90);
    paper.stroke([[110, 100]], 5);
    paper.ring(165, 60, 28, 45);
    for (const [x, y] of [
      [10, 10],
      [200, 120],
      [90, 30],
      [130, 125],
    ] as Point[])
      paper.stroke([[x, y]], 1);
    assert.equal(segmentNumber(paper.image()).length, 2);
  });

  test('digits of uneven sizes on uneven baselines come back left to right', () => {
    const paper = new Paper(300, 180);
    paper.ring(240, 110, 25, 45);
    one(paper, 40, 60, 70);
    paper.ring(140, 60, 30, 50);
    const parts = segmentNumber(paper.image());
    assert.equal(parts.length, 3);
    const xs = parts.map((part) => part.box[0]);
    assert.deepEqual(
      xs,
      [...xs].sort((a, b) => a - b),
    );
    assert.ok(parts[0]!.box[0] < 40 && parts[2]!.box[0] > 200, JSON.stringify(parts.map((p) => p.box)));
  });

  test('each part sees only its own ink: a neighbour reaching into its box is blanked', () => {
    const paper = new Paper(210, 130).ring(50, 65, 28, 50);
    // The second digit's long tail reaches back under the first one, inside its box.
    paper.ring(150, 65, 28, 50).stroke(
      [
        [150, 100],
        [66, 118],
      ],
      3,
    );
    const [first] = segmentNumber(paper.image());
    const [single] = segmentNumber(new Paper(210, 130).ring(50, 65, 28, 50).image());
    const difference = first!.input.reduce((sum, v, i) => sum + Math.abs(v - single!.input[i]!), 0);
    assert.ok(difference < 20, `the first digit's input differs by ${difference} from the same stroke alone`);
  });
});

describe('segmentNumber: limits and errors', () => {
  test(`${MAX_NUMBER_PARTS + 1} digits are refused as too_many_parts; ${MAX_NUMBER_PARTS} are read`, () => {
    const written = (count: number) => {
      const paper = new Paper(30 * count + 30, 80);
      for (let k = 0; k < count; k++) one(paper, 30 + 30 * k, 15, 50);
      return paper.image();
    };
    assert.equal(segmentNumber(written(MAX_NUMBER_PARTS)).length, MAX_NUMBER_PARTS);
    assert.throws(
      () => segmentNumber(written(MAX_NUMBER_PARTS + 1)),
      (error) => error instanceof TooManyPartsError && error.code === 'too_many_parts' && error.status === 400,
    );
  });

  test('a page covered in thousands of dots of one size is too_many_parts, and many marks in digit mode', () => {
    const paper = new Paper(1024, 1024);
    for (let y = 0; y < 1024; y += 10) for (let x = 0; x < 1024; x += 10) paper.stroke([[x + 3, y + 3]], 2.5);
    assert.throws(() => segmentNumber(paper.image()), TooManyPartsError);
    assert.ok(mnistTransform(paper.image()).marks > MAX_NUMBER_PARTS);
  });

  test('a blank page, a blank canvas and a page of faint texture are no_number_found', () => {
    const canvas: RawImage = { data: new Uint8Array(200 * 100 * 4), width: 200, height: 100, channels: 4 };
    const texture = new Paper(200, 100);
    texture.data.forEach((_, i) => (texture.data[i] = 240 + (i % 7)));
    for (const image of [new Paper(200, 100).image(), canvas, texture.image()]) {
      assert.throws(
        () => segmentNumber(image),
        (error) => error instanceof NoNumberFoundError && error.code === 'no_number_found' && error.status === 400,
      );
    }
  });

  test('boxes lie inside the displayed image, whatever the strokes and the EXIF orientation', () => {
    const stroke = fc.array(fc.tuple(fc.integer({ min: -20, max: 260 }), fc.integer({ min: -20, max: 140 })), {
      minLength: 1,
      maxLength: 5,
    });
    fc.assert(
      fc.property(
        fc.array(stroke, { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 8 }),
        (strokes, turn) => {
          const paper = new Paper(240, 120);
          for (const points of strokes) paper.stroke(points as Point[], 3);
          const image = { ...paper.image(), orientation: turn as RawImage['orientation'] };
          const [width, height] = turn >= 5 ? [120, 240] : [240, 120];
          let parts: ReturnType<typeof segmentNumber>;
          try {
            parts = segmentNumber(image);
          } catch (error) {
            if (error instanceof NoNumberFoundError || error instanceof TooManyPartsError) return;
            throw error;
          }
          for (const { box, input } of parts) {
            const [x, y, w, h] = box;
            assert.ok(x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= width && y + h <= height, JSON.stringify(box));
            assert.ok(input.every((v) => v >= 0 && v <= 1));
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('marks: single digits as users draw them', () => {
  test('a stroke broken off right beside its digit is two parts to number mode but one mark', () => {
    const paper = new Paper(150, 120);
    one(paper, 40, 15, 85);
    paper.stroke([
      [52, 60],
      [79, 100],
    ]);
    assert.equal(segmentNumber(paper.image()).length, 2);
    assert.equal(mnistTransform(paper.image()).marks, 1);
  });

  test('at least 99.5% of 1,000 MNIST test digits sent as 28×28 PNGs have one mark', async (t) => {
    const { test: split } = await testMnist();
    let single = 0;
    for (let i = 0; i < 1000; i++) {
      const png = encodeGreyPng(split.images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS), 28, 28);
      const { marks } = await preprocessImage(png);
      if (marks === 1) single++;
    }
    t.diagnostic(`${single} of 1000 have one mark`);
    assert.ok(single >= 995, `${single} of 1000 have one mark`);
  });

  test('at least 99% of 300 MNIST test digits drawn on a canvas have one mark', async (t) => {
    const { test: split } = await testMnist();
    let single = 0;
    for (let i = 0; i < 300; i++) {
      const png = await canvasDrawing(split.images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS), i + 1);
      const { marks } = mnistTransform(await decodeImage(png, checkImage(png), {}));
      if (marks === 1) single++;
    }
    t.diagnostic(`${single} of 300 have one mark`);
    assert.ok(single >= 297, `${single} of 300 have one mark`);
  });
});

describe('preprocessNumber', () => {
  test('reads a PNG of "1 0" into two parts with boxes in its pixels', async () => {
    const paper = new Paper(220, 120);
    one(paper, 50, 15, 90);
    paper.ring(150, 60, 30, 45);
    const { parts, width, height, format } = await preprocessNumber(encodeGreyPng(paper.data, 220, 120));
    assert.deepEqual([width, height, format, parts.length], [220, 120, 'png', 2]);
    const [x, y, w, h] = parts[1]!.box;
    assert.ok(
      Math.abs(x - 116) <= 3 && Math.abs(y - 11) <= 3 && Math.abs(w - 68) <= 4 && Math.abs(h - 98) <= 4,
      `${parts[1]!.box}`,
    );
  });

  test('a wide JPEG decoded at reduced scale still gives boxes in its full-size pixels', async () => {
    const [width, height] = [2400, 500];
    const image = new Jimp({ width, height, color: 0xdcdcdcff });
    const ink = (x0: number, y0: number, x1: number, y1: number) => {
      for (let y = y0; y < y1; y++)
        for (let x = x0; x < x1; x++) image.bitmap.data.set([40, 40, 40, 255], (y * width + x) * 4);
    };
    ink(400, 100, 440, 400);
    ink(1800, 120, 1840, 420);
    const { parts } = await preprocessNumber(await image.getBuffer('image/jpeg', { quality: 90 }));
    assert.equal(parts.length, 2);
    for (const [k, [x, y]] of [
      [400, 100],
      [1800, 120],
    ].entries()) {
      const box = parts[k]!.box;
      assert.ok(Math.abs(box[0] - x) <= 8 && Math.abs(box[1] - y) <= 8 && Math.abs(box[2] - 40) <= 16, `${box}`);
    }
  });

  test('hostile sizes meet the single-digit limits before any decode', async () => {
    const header = Buffer.alloc(13);
    header.writeUInt32BE(5000, 0);
    header.writeUInt32BE(10, 4);
    header.set([8, 0, 0, 0, 0], 8);
    const huge = Buffer.concat([PNG_SIGNATURE, chunk('IHDR', header), chunk('IEND', Buffer.alloc(0))]);
    await assert.rejects(preprocessNumber(huge), ImageTooLargeError);
    await assert.rejects(preprocessNumber(Buffer.alloc(1024 * 1024 + 1, 0x89)), ImageTooLargeError);
    await assert.rejects(preprocessNumber(Buffer.from('not an image at all')), UnsupportedImageError);
  });

  test('a blank image is no_number_found', async () => {
    await assert.rejects(
      preprocessNumber(encodeGreyPng(new Uint8Array(300 * 100).fill(250), 300, 100)),
      (error: Error) => error instanceof NoNumberFoundError && (error as NoNumberFoundError).code === 'no_number_found',
    );
  });
});
