/**
 * What preprocessing costs on top of decoding, per image:
 *   npm run bench -- preprocess [--runs 200]
 * For three typical uploads (a 28×28 MNIST-style PNG, a 280×280 canvas PNG,
 * a 320×240 phone-style JPEG) it prints, as JSON lines, the p50 and p90 of a
 * bare `Jimp.fromBuffer` decode, of the whole `preprocessImage`, and of the
 * MNIST-style transform alone on already decoded pixels.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { Jimp } from 'jimp';
import { toMnistInput, type RawImage } from '#lib/image/mnist-transform';
import { preprocessImage } from '#lib/image/preprocess';

const WARMUP = 20;
// argv[2] is the bench's name (`npm run bench -- preprocess --runs 200`).
const { values } = parseArgs({ args: process.argv.slice(3), options: { runs: { type: 'string', default: '200' } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${values.runs}`);

/** How much of pixel (x, y) a hand-drawn "2"-like stroke of the given width covers, anti-aliased. */
function strokeCoverage(x: number, y: number, size: number, width: number): number {
  const u = x / size;
  const v = y / size;
  const arc = Math.abs(Math.hypot(u - 0.5, v - 0.35) - 0.2) + (v > 0.45 && u < 0.5 ? 1 : 0);
  const diagonal = Math.abs(u + v - 1.05) / Math.SQRT2 + (v < 0.45 || v > 0.8 ? 1 : 0);
  const base = Math.abs(v - 0.8) + (u < 0.3 || u > 0.75 ? 1 : 0);
  const distance = Math.min(arc, diagonal, base) * size;
  return Math.max(0, Math.min(1, width / 2 - distance + 0.5));
}

function draw(
  width: number,
  height: number,
  paint: (coverage: number, x: number, y: number) => [number, number, number, number],
): Buffer {
  const size = Math.min(width, height);
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const coverage = strokeCoverage(x - (width - size) / 2, y, size, size / 10);
      data.set(paint(coverage, x, y), (y * width + x) * 4);
    }
  }
  return data;
}

async function images(): Promise<Array<{ name: string; bytes: Buffer }>> {
  const mnist = draw(28, 28, (c) => [255 * c, 255 * c, 255 * c, 255]);
  const canvas = draw(280, 280, (c) => [0, 0, 0, Math.round(255 * c)]);
  let seed = 1;
  const noise = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return (seed / 2 ** 31 - 0.5) * 20;
  };
  const photo = draw(320, 240, (c, x) => {
    const value = Math.round((180 + x / 16 + noise()) * (1 - 0.7 * c));
    return [value, value, value, 255];
  });
  return [
    { name: '28x28 png', bytes: await new Jimp({ data: mnist, width: 28, height: 28 }).getBuffer('image/png') },
    {
      name: '280x280 canvas png',
      bytes: await new Jimp({ data: canvas, width: 280, height: 280 }).getBuffer('image/png'),
    },
    {
      name: '320x240 jpeg',
      bytes: await new Jimp({ data: photo, width: 320, height: 240 }).getBuffer('image/jpeg', { quality: 85 }),
    },
  ];
}

/**
 * Runs the tasks in turn, `runs` times each, so that whatever else the machine
 * is doing weighs on every task alike; reports each task's p50 and p90 in ms.
 */
async function timings(tasks: Record<string, () => unknown>): Promise<Record<string, { p50: number; p90: number }>> {
  const names = Object.keys(tasks);
  const samples: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
  for (let i = 0; i < WARMUP + runs; i++) {
    for (const name of names) {
      const start = performance.now();
      await tasks[name]!();
      if (i >= WARMUP) samples[name]!.push(performance.now() - start);
    }
  }
  const at = (sorted: number[], q: number) =>
    Number(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!.toFixed(3));
  return Object.fromEntries(
    names.map((name) => {
      const sorted = samples[name]!.sort((a, b) => a - b);
      return [name, { p50: at(sorted, 0.5), p90: at(sorted, 0.9) }];
    }),
  );
}

for (const { name, bytes } of await images()) {
  const decoded = (await Jimp.fromBuffer(bytes)).bitmap;
  const pixels: RawImage = { data: decoded.data, width: decoded.width, height: decoded.height, channels: 4 };
  const result = await timings({
    jimpDecode: () => Jimp.fromBuffer(bytes),
    preprocessImage: () => preprocessImage(bytes),
    transformOnly: () => toMnistInput(pixels),
  });
  const ratio = Number((result.preprocessImage!.p50 / result.jimpDecode!.p50).toFixed(2));
  console.log(JSON.stringify({ image: name, bytes: bytes.length, runs, ms: result, preprocessOverDecode: ratio }));
}
