/**
 * MNIST test digits re-rendered the way real uploads look: a large canvas
 * drawing (black strokes on a transparent background, off-centre) and a
 * 320×240 photo of dark ink on grey, noisy, unevenly lit paper saved as JPEG.
 */
import { Jimp } from 'jimp';
import { seededRandom } from '#lib/training/batches';

/** Bilinear sample of a 28×28 digit at fractional coordinates; 0 outside. */
function sample(digit: Uint8Array, x: number, y: number): number {
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const at = (xx: number, yy: number) => (xx < 0 || yy < 0 || xx > 27 || yy > 27 ? 0 : digit[yy * 28 + xx]!);
  const fx = x - x0;
  const fy = y - y0;
  return (
    (at(x0, y0) * (1 - fx) * (1 - fy) +
      at(x0 + 1, y0) * fx * (1 - fy) +
      at(x0, y0 + 1) * (1 - fx) * fy +
      at(x0 + 1, y0 + 1) * fx * fy) /
    255
  );
}

/** Ink coverage 0–1 of the digit drawn `size` px wide with its top-left at (left, top). */
export function inkAt(digit: Uint8Array, size: number, left: number, top: number, x: number, y: number): number {
  return sample(digit, ((x - left) / size) * 28 - 0.5, ((y - top) / size) * 28 - 0.5);
}

/** A `side`-px square canvas (the page's is 280); the digit's size scales with it. */
export async function canvasDrawing(digit: Uint8Array, seed: number, side = 280): Promise<Buffer> {
  const random = seededRandom(seed);
  const size = Math.round(((160 + Math.floor(random() * 100)) * side) / 280);
  const left = Math.floor(random() * (side - size));
  const top = Math.floor(random() * (side - size));
  const image = new Jimp({ width: side, height: side, color: 0x00000000 });
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      // A pen thicker than MNIST's: coverage is boosted so strokes are solid, as on a canvas.
      const alpha = Math.min(1, inkAt(digit, size, left, top, x, y) * 1.6);
      if (alpha > 0) image.bitmap.data.set([0, 0, 0, Math.round(alpha * 255)], (y * side + x) * 4);
    }
  }
  return image.getBuffer('image/png');
}

/** `digitSide`: the range of the digit's drawn size in px (its 28×28 frame, so the ink is about 5/7 of it). */
export async function paperPhoto(
  digit: Uint8Array,
  seed: number,
  digitSide: [number, number] = [120, 210],
): Promise<Buffer> {
  const random = seededRandom(seed);
  const [width, height] = [320, 240];
  const size = digitSide[0] + Math.floor(random() * (digitSide[1] - digitSide[0]));
  const left = Math.floor(random() * (width - size));
  const top = Math.floor(random() * (height - size));
  const paper = 170 + random() * 50;
  const ink = 30 + random() * 40;
  const image = new Jimp({ width, height, color: 0xffffffff });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const light = paper + (x / width - 0.5) * 30 + (y / height - 0.5) * 20 + (random() - 0.5) * 24;
      const coverage = inkAt(digit, size, left, top, x, y);
      const value = Math.max(0, Math.min(255, Math.round(light * (1 - coverage) + ink * coverage)));
      image.bitmap.data.set([value, value, Math.max(0, value - 8), 255], (y * width + x) * 4);
    }
  }
  return image.getBuffer('image/jpeg', { quality: 80 });
}
