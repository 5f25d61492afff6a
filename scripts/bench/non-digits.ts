/**
 * Synthetic non-digits rendered as real uploads, for fitting and measuring the
 * "not a digit" verdict (functions/lib/verdict.ts): noise, scribbles, shapes,
 * letters drawn from strokes, photo-like textures and two digits side by side.
 * Each is a seeded scene drawn into an ink-coverage buffer, then saved the two
 * ways rerender.ts saves MNIST digits: a 280×280 canvas PNG (dark strokes on a
 * transparent background) and a 320×240 JPEG photo of ink on grey, noisy,
 * unevenly lit paper; or drawn straight into 28×28 as `{"pixels"}` input. The
 * same seed gives the same scene in every form, so the fit and the evaluation
 * can use disjoint seed ranges.
 */
import { Jimp } from 'jimp';
import type { MnistSplit } from '#lib/training/mnist';
import { MNIST_PIXELS, MNIST_SIDE } from '#lib/mnist-shape';
import { seededRandom } from '#lib/training/batches';
import type { NonDigitFamily } from '#lib/verdict';

/**
 * The kinds, each with the family of verdict score it trains (verdict.ts) and
 * whether it counts toward the "≥ 90% flagged" target. Look-alikes are
 * letters and shapes a person would also read as a digit (O and a circle as
 * 0, I as 1, S as 5, Z as 2, B as 8, G and b as 6, q as 9): flagging them
 * would mean flagging real 0s, 1s and 8s, so they are neither fitted on nor
 * counted, only reported. Two digits side by side are several marks, which
 * the number-mode segmentation will count; until then they are judged, and
 * fitted on, as stray strokes.
 */
export const NON_DIGIT_KINDS = {
  'uniform-noise': { family: 'noise', counted: true },
  'gaussian-noise': { family: 'noise', counted: true },
  'salt-and-pepper': { family: 'noise', counted: true },
  texture: { family: 'noise', counted: true },
  'filled-shape': { family: 'blob', counted: true },
  scribble: { family: 'strokes', counted: true },
  'outlined-shape': { family: 'strokes', counted: true },
  letter: { family: 'strokes', counted: true },
  'two-digits': { family: 'strokes', counted: true },
  'look-alike': { family: undefined, counted: false },
} as const satisfies Record<string, { family: NonDigitFamily | undefined; counted: boolean }>;
export type NonDigitKind = keyof typeof NON_DIGIT_KINDS;
export const NON_DIGIT_NAMES = Object.keys(NON_DIGIT_KINDS) as NonDigitKind[];

export type UploadForm = 'canvas' | 'photo';

type Point = [number, number];
type Polyline = Point[];

/** Ink coverage 0–1 per pixel of the upload, and where the scene's unit square sits in it. */
interface Sheet {
  ink: Float32Array;
  width: number;
  height: number;
  left: number;
  top: number;
  size: number;
}

function arc(cx: number, cy: number, rx: number, ry: number, fromDeg: number, toDeg: number): Polyline {
  const steps = Math.max(4, Math.ceil(Math.abs(toDeg - fromDeg) / 15));
  return Array.from({ length: steps + 1 }, (_, i) => {
    const t = ((fromDeg + ((toDeg - fromDeg) * i) / steps) * Math.PI) / 180;
    return [cx + rx * Math.cos(t), cy + ry * Math.sin(t)] as Point;
  });
}

/** Capitals (and b, q) as pen strokes in a unit box, y down. Angles run clockwise from the right (y is down). */
const LETTERS: Record<string, Polyline[]> = {
  A: [
    [
      [0, 1],
      [0.5, 0],
      [1, 1],
    ],
    [
      [0.22, 0.6],
      [0.78, 0.6],
    ],
  ],
  C: [arc(0.5, 0.5, 0.5, 0.5, -40, -320)],
  E: [
    [
      [1, 0],
      [0, 0],
      [0, 1],
      [1, 1],
    ],
    [
      [0, 0.5],
      [0.7, 0.5],
    ],
  ],
  F: [
    [
      [1, 0],
      [0, 0],
      [0, 1],
    ],
    [
      [0, 0.5],
      [0.7, 0.5],
    ],
  ],
  H: [
    [
      [0, 0],
      [0, 1],
    ],
    [
      [1, 0],
      [1, 1],
    ],
    [
      [0, 0.5],
      [1, 0.5],
    ],
  ],
  K: [
    [
      [0, 0],
      [0, 1],
    ],
    [
      [1, 0],
      [0, 0.6],
    ],
    [
      [0.3, 0.4],
      [1, 1],
    ],
  ],
  M: [
    [
      [0, 1],
      [0, 0],
      [0.5, 0.6],
      [1, 0],
      [1, 1],
    ],
  ],
  N: [
    [
      [0, 1],
      [0, 0],
      [1, 1],
      [1, 0],
    ],
  ],
  R: [
    [
      [0, 1],
      [0, 0],
      [0.7, 0],
      [0.95, 0.12],
      [0.95, 0.38],
      [0.7, 0.5],
      [0, 0.5],
    ],
    [
      [0.4, 0.5],
      [1, 1],
    ],
  ],
  U: [[[0, 0], ...arc(0.5, 0.6, 0.5, 0.4, 180, 0), [1, 0]]],
  V: [
    [
      [0, 0],
      [0.5, 1],
      [1, 0],
    ],
  ],
  W: [
    [
      [0, 0],
      [0.25, 1],
      [0.5, 0.35],
      [0.75, 1],
      [1, 0],
    ],
  ],
  X: [
    [
      [0, 0],
      [1, 1],
    ],
    [
      [1, 0],
      [0, 1],
    ],
  ],
};

const LOOK_ALIKES: Record<string, Polyline[]> = {
  O: [arc(0.5, 0.5, 0.5, 0.5, 0, 360)],
  I: [
    [
      [0.5, 0],
      [0.5, 1],
    ],
  ],
  S: [[...arc(0.5, 0.25, 0.45, 0.25, -30, -270), ...arc(0.5, 0.75, 0.5, 0.25, -90, 150)]],
  Z: [
    [
      [0, 0],
      [1, 0],
      [0, 1],
      [1, 1],
    ],
  ],
  B: [
    [
      [0, 0],
      [0, 1],
    ],
    arc(0, 0.25, 0.8, 0.25, -90, 90),
    arc(0, 0.75, 1, 0.25, -90, 90),
  ],
  G: [
    [...arc(0.5, 0.5, 0.5, 0.5, -40, -360), [1, 0.5]],
    [
      [0.55, 0.55],
      [1, 0.55],
    ],
  ],
  b: [
    [
      [0, 0],
      [0, 1],
    ],
    arc(0.45, 0.7, 0.45, 0.3, 0, 360),
  ],
  q: [
    arc(0.5, 0.3, 0.45, 0.3, 0, 360),
    [
      [0.95, 0.1],
      [0.95, 1],
    ],
  ],
  circle: [arc(0.5, 0.5, 0.5, 0.45, 0, 360)],
};
export const LETTER_NAMES = Object.keys(LETTERS);
export const LOOK_ALIKE_NAMES = Object.keys(LOOK_ALIKES);

/** Distance from (px, py) to the segment a–b. */
function segmentDistance(px: number, py: number, [ax, ay]: Point, [bx, by]: Point): number {
  const dx = bx - ax;
  const dy = by - ay;
  const length2 = dx * dx + dy * dy;
  const t = length2 === 0 ? 0 : Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / length2));
  return Math.hypot(px - ax - t * dx, py - ay - t * dy);
}

/** Draws a polyline given in pixels with a round pen `pen` px wide, anti-aliased over one pixel. */
function strokePixels(sheet: Sheet, line: Polyline, pen: number): void {
  const half = pen / 2;
  for (let i = 0; i + 1 < line.length; i++) {
    const a = line[i]!;
    const b = line[i + 1]!;
    const x0 = Math.max(0, Math.floor(Math.min(a[0], b[0]) - half - 1));
    const x1 = Math.min(sheet.width - 1, Math.ceil(Math.max(a[0], b[0]) + half + 1));
    const y0 = Math.max(0, Math.floor(Math.min(a[1], b[1]) - half - 1));
    const y1 = Math.min(sheet.height - 1, Math.ceil(Math.max(a[1], b[1]) + half + 1));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const cover = Math.max(0, Math.min(1, half + 0.5 - segmentDistance(x + 0.5, y + 0.5, a, b)));
        const p = y * sheet.width + x;
        if (cover > sheet.ink[p]!) sheet.ink[p] = cover;
      }
    }
  }
}

/** Unit-square coordinates → the sheet's pixels. */
const toPixels = (sheet: Sheet, [x, y]: Point): Point => [sheet.left + x * sheet.size, sheet.top + y * sheet.size];

/** Fills a polygon given in unit coordinates (even-odd rule), its edge anti-aliased by a 1 px stroke. */
function fillPolygon(sheet: Sheet, polygon: Polyline): void {
  const points = polygon.map((p) => toPixels(sheet, p));
  for (let y = 0; y < sheet.height; y++) {
    for (let x = 0; x < sheet.width; x++) {
      let inside = false;
      for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
        const [xi, yi] = points[i]!;
        const [xj, yj] = points[j]!;
        if (yi > y + 0.5 !== yj > y + 0.5 && x + 0.5 < ((xj - xi) * (y + 0.5 - yi)) / (yj - yi) + xi) inside = !inside;
      }
      if (inside) sheet.ink[y * sheet.width + x] = 1;
    }
  }
  strokePixels(sheet, [...points, points[0]!], 1);
}

function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** A letter's strokes, slanted, squeezed and wobbled a little as a hand would, in the unit square. */
function handDrawn(strokes: Polyline[], random: () => number): Polyline[] {
  const aspect = 0.55 + random() * 0.45;
  const slant = (random() - 0.5) * 0.4;
  const wobble = 0.01 + random() * 0.03;
  return strokes.map((line) =>
    line.map(([x, y]) => {
      const jx = (0.5 - aspect / 2 + x * aspect + slant * (0.5 - y) + gaussian(random) * wobble) * 0.9 + 0.05;
      return [jx, (y + gaussian(random) * wobble) * 0.9 + 0.05] as Point;
    }),
  );
}

/** A random smooth curve through 5–14 points: Catmull-Rom through random control points. */
function scribbleLine(random: () => number): Polyline {
  const controls = Array.from({ length: 5 + Math.floor(random() * 10) }, () => [random(), random()] as Point);
  const line: Polyline = [];
  for (let i = 0; i + 1 < controls.length; i++) {
    const [p0, p1, p2, p3] = [
      controls[Math.max(0, i - 1)]!,
      controls[i]!,
      controls[i + 1]!,
      controls[Math.min(controls.length - 1, i + 2)]!,
    ];
    for (let s = 0; s < 8; s++) {
      const t = s / 8;
      const at = (k: 0 | 1) =>
        0.5 *
        (2 * p1[k] +
          (-p0[k] + p2[k]) * t +
          (2 * p0[k] - 5 * p1[k] + 4 * p2[k] - p3[k]) * t * t +
          (-p0[k] + 3 * p1[k] - 3 * p2[k] + p3[k]) * t * t * t);
      line.push([at(0), at(1)]);
    }
  }
  line.push(controls[controls.length - 1]!);
  return line;
}

function regularPolygon(sides: number, random: () => number): Polyline {
  const turn = random() * Math.PI * 2;
  const squash = 0.6 + random() * 0.4;
  return Array.from({ length: sides }, (_, i) => {
    const t = turn + (i * 2 * Math.PI) / sides;
    return [0.5 + 0.5 * Math.cos(t), 0.5 + 0.5 * squash * Math.sin(t)] as Point;
  });
}

/** A circle (if `round` may be drawn), rectangle or triangle, as a closed outline in the unit square. */
function shape(random: () => number, round: boolean): Polyline {
  const pick = Math.floor(random() * (round ? 3 : 2));
  if (pick === 2) return arc(0.5, 0.5, 0.5, 0.5 * (0.6 + random() * 0.4), 0, 360);
  if (pick === 0) {
    const [w, h] = [0.4 + random() * 0.6, 0.4 + random() * 0.6];
    return [
      [0.5 - w / 2, 0.5 - h / 2],
      [0.5 + w / 2, 0.5 - h / 2],
      [0.5 + w / 2, 0.5 + h / 2],
      [0.5 - w / 2, 0.5 + h / 2],
    ];
  }
  return regularPolygon(3, random);
}

/** A field of values over a random part of the sheet (all of it half the time). */
function fillField(sheet: Sheet, random: () => number, value: (x: number, y: number) => number): void {
  const whole = random() < 0.5;
  const x0 = whole ? 0 : Math.floor(sheet.left);
  const y0 = whole ? 0 : Math.floor(sheet.top);
  const x1 = whole ? sheet.width : Math.min(sheet.width, Math.ceil(sheet.left + sheet.size));
  const y1 = whole ? sheet.height : Math.min(sheet.height, Math.ceil(sheet.top + sheet.size));
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) sheet.ink[y * sheet.width + x] = Math.max(0, Math.min(1, value(x, y)));
  }
}

/** Smooth light and shade: a gradient plus a few soft blobs, with grain, as a photo of a surface. */
function texture(sheet: Sheet, random: () => number): void {
  const [gx, gy, base] = [(random() - 0.5) * 1.2, (random() - 0.5) * 1.2, 0.2 + random() * 0.5];
  const blobs = Array.from({ length: 2 + Math.floor(random() * 5) }, () => ({
    x: random() * sheet.width,
    y: random() * sheet.height,
    r: (0.1 + random() * 0.4) * sheet.width,
    a: (random() - 0.5) * 1.2,
  }));
  const grain = 0.03 + random() * 0.15;
  fillField(sheet, random, (x, y) => {
    let v = base + gx * (x / sheet.width - 0.5) + gy * (y / sheet.height - 0.5);
    for (const b of blobs) v += b.a * Math.exp(-((x - b.x) ** 2 + (y - b.y) ** 2) / (b.r * b.r));
    return v + gaussian(random) * grain;
  });
}

/** A 28×28 MNIST digit drawn `size` px wide at (left, top), bilinear, coverage kept where darker. */
function pasteDigit(sheet: Sheet, digit: Uint8Array, left: number, top: number, size: number): void {
  for (let y = Math.max(0, Math.floor(top)); y < Math.min(sheet.height, top + size); y++) {
    for (let x = Math.max(0, Math.floor(left)); x < Math.min(sheet.width, left + size); x++) {
      const sx = ((x - left) / size) * MNIST_SIDE - 0.5;
      const sy = ((y - top) / size) * MNIST_SIDE - 0.5;
      const [x0, y0] = [Math.floor(sx), Math.floor(sy)];
      const at = (xx: number, yy: number) =>
        xx < 0 || yy < 0 || xx >= MNIST_SIDE || yy >= MNIST_SIDE ? 0 : digit[yy * MNIST_SIDE + xx]! / 255;
      const [fx, fy] = [sx - x0, sy - y0];
      const cover =
        at(x0, y0) * (1 - fx) * (1 - fy) +
        at(x0 + 1, y0) * fx * (1 - fy) +
        at(x0, y0 + 1) * (1 - fx) * fy +
        at(x0 + 1, y0 + 1) * fx * fy;
      const p = y * sheet.width + x;
      sheet.ink[p] = Math.max(sheet.ink[p]!, Math.min(1, cover * 1.6));
    }
  }
}

/** Two random digits of `split` side by side, each half the scene's width, with a gap. */
function twoDigits(sheet: Sheet, random: () => number, split: MnistSplit): void {
  const half = sheet.size / 2;
  for (const k of [0, 1]) {
    const index = Math.floor(random() * split.count);
    const digit = split.images.subarray(index * MNIST_PIXELS, (index + 1) * MNIST_PIXELS);
    const dy = (random() - 0.5) * half * 0.3;
    pasteDigit(sheet, digit, sheet.left + k * half * (1.05 + random() * 0.2), sheet.top + half / 2 + dy, half * 0.95);
  }
}

/** The scene of `kind` for `seed`, drawn into `sheet`. */
function draw(kind: NonDigitKind, sheet: Sheet, random: () => number, split: MnistSplit | undefined) {
  // About the stroke width of the digits rerender.ts draws, relative to the ink's box.
  const pen = sheet.size * (0.08 + random() * 0.07);
  const stroke = (lines: Polyline[]) => {
    for (const line of lines)
      strokePixels(
        sheet,
        line.map((p) => toPixels(sheet, p)),
        pen,
      );
  };
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  switch (kind) {
    case 'uniform-noise':
      return fillField(sheet, random, () => random());
    case 'gaussian-noise': {
      const [mean, spread] = [0.3 + random() * 0.4, 0.15 + random() * 0.2];
      return fillField(sheet, random, () => mean + gaussian(random) * spread);
    }
    case 'salt-and-pepper': {
      const density = 0.03 + random() * 0.3;
      return fillField(sheet, random, () => (random() < density ? 1 : 0));
    }
    case 'scribble':
      return stroke(Array.from({ length: 1 + Math.floor(random() * 3) }, () => scribbleLine(random)));
    case 'filled-shape':
      return fillPolygon(sheet, shape(random, true));
    case 'outlined-shape': {
      // No circles: an outlined circle is a 0, drawn among the look-alikes.
      const outline = shape(random, false);
      return stroke([[...outline, outline[0]!]]);
    }
    case 'letter':
      return stroke(handDrawn(LETTERS[pick(LETTER_NAMES)]!, random));
    case 'look-alike':
      return stroke(handDrawn(LOOK_ALIKES[pick(LOOK_ALIKE_NAMES)]!, random));
    case 'texture':
      return texture(sheet, random);
    case 'two-digits':
      if (split === undefined) throw new Error('two-digits needs MNIST digits to draw');
      return twoDigits(sheet, random, split);
  }
}

/**
 * One non-digit as `{"pixels"}` input: the scene drawn straight into 28×28,
 * bright ink on black, its box about MNIST's 20 px, as a caller who
 * skips the preprocessing would send it.
 */
export function nonDigitPixels(kind: NonDigitKind, seed: number, split?: MnistSplit): Float32Array {
  const random = seededRandom(seed);
  const size = 16 + random() * 6;
  const sheet: Sheet = {
    ink: new Float32Array(MNIST_PIXELS),
    width: MNIST_SIDE,
    height: MNIST_SIDE,
    left: (MNIST_SIDE - size) / 2 + (random() - 0.5) * 4,
    top: (MNIST_SIDE - size) / 2 + (random() - 0.5) * 4,
    size,
  };
  draw(kind, sheet, random, split);
  return sheet.ink;
}

/**
 * One non-digit upload. `split` supplies the digits for `two-digits` (the
 * training split for fitting, the test split for evaluation).
 */
export async function nonDigit(
  kind: NonDigitKind,
  seed: number,
  form: UploadForm,
  split?: MnistSplit,
): Promise<Buffer> {
  const random = seededRandom(seed);
  const [width, height] = form === 'canvas' ? [280, 280] : [320, 240];
  const size = form === 'canvas' ? 160 + random() * 100 : 120 + random() * 90;
  const sheet: Sheet = {
    ink: new Float32Array(width * height),
    width,
    height,
    left: random() * (width - size),
    top: random() * (height - size),
    size,
  };
  draw(kind, sheet, random, split);
  return form === 'canvas' ? canvasPng(sheet) : paperJpeg(sheet, random);
}

/** Black ink whose opacity is the coverage, on transparent black, as a browser canvas exports it. */
async function canvasPng({ ink, width, height }: Sheet): Promise<Buffer> {
  const image = new Jimp({ width, height, color: 0x00000000 });
  for (let p = 0; p < ink.length; p++) {
    if (ink[p]! > 0) image.bitmap.data.set([0, 0, 0, Math.round(ink[p]! * 255)], p * 4);
  }
  return image.getBuffer('image/png');
}

/** The paper of rerender.ts's paperPhoto: grey, lit unevenly, noisy, ink 30–70, JPEG quality 80. */
async function paperJpeg({ ink, width, height }: Sheet, random: () => number): Promise<Buffer> {
  const paper = 170 + random() * 50;
  const dark = 30 + random() * 40;
  const image = new Jimp({ width, height, color: 0xffffffff });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const light = paper + (x / width - 0.5) * 30 + (y / height - 0.5) * 20 + (random() - 0.5) * 24;
      const coverage = ink[y * width + x]!;
      const value = Math.max(0, Math.min(255, Math.round(light * (1 - coverage) + dark * coverage)));
      image.bitmap.data.set([value, value, Math.max(0, value - 8), 255], (y * width + x) * 4);
    }
  }
  return image.getBuffer('image/jpeg', { quality: 80 });
}
