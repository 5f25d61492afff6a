/**
 * `npm run bench -- numbers [--per-cell N] [--work-side PX] [--arch mlp|cnn]
 * [--epochs N] [--served]`: how well
 * number mode reads written numbers. Numbers of 2–8 MNIST test digits are
 * laid out as handwriting is (each digit its own size and height on the
 * line; gaps of varied widths, or touching and slightly overlapping) and
 * rendered as the tests render single digits (rerender.ts): a canvas
 * drawing (dark strokes on transparency, PNG) and a photo of ink on grey,
 * noisy, unevenly lit paper (JPEG). Each goes through `preprocessNumber` and
 * the real `classify` on a served-style model (`inference-model.ts`): the
 * tests' 2-epoch MLP, from test/artifacts when a test run left it there,
 * else (or for another --arch or --epochs) trained here with the
 * architecture's default recipe; with --served, the version the configured
 * bucket serves (`npm start`'s). Prints a table: sequence accuracy (every
 * digit right), digit-count accuracy, and agreement with the model's
 * reading of the original 28×28 digits, by length, spacing and kind.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Jimp } from 'jimp';
import { initBackend, tf } from '#lib/backend';
import { classify } from '#lib/classify';
import { type Config, readConfig } from '#lib/config';
import { preprocessNumber } from '#lib/image/preprocess';
import { NUMBER_WORK_SIDE } from '#lib/image/segment';
import { type InferenceModel, inferenceModel } from '#lib/inference-model';
import { MNIST_PIXELS } from '#lib/mnist-shape';
import { openStorage } from '#lib/storage/storage';
import { ModelStore } from '#lib/storage/store';
import { seededRandom } from '#lib/training/batches';
import { evaluateModel } from '#lib/training/evaluate';
import { loadMnist, type MnistSplit } from '#lib/training/mnist';
import { createModel, isArch } from '#lib/training/model';
import { trainModel, TRAINING_DEFAULTS } from '#lib/training/train-loop';
import type { Arch } from '#lib/training/archs';
import { benchMnistDir } from './local-stack.ts';
import { inkAt } from './rerender.ts';
import { machine, round } from './stats.ts';

export const LENGTHS = [2, 3, 4, 5, 6, 8] as const;
export type Spacing = 'gaps' | 'touching';
export type Kind = 'canvas' | 'photo';

/** The ink's extent inside a 28×28 digit, in its pixels: where a writer's next digit starts from. */
function inkColumns(digit: Uint8Array): { left: number; right: number; top: number; bottom: number } {
  let [left, right, top, bottom] = [28, -1, 28, -1];
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      if (digit[y * 28 + x]! < 64) continue;
      [left, right, top, bottom] = [Math.min(left, x), Math.max(right, x), Math.min(top, y), Math.max(bottom, y)];
    }
  }
  return { left, right: right + 1, top, bottom: bottom + 1 };
}

export interface WrittenNumber {
  image: Buffer;
  /** The digits as written, left to right. */
  text: string;
  /** Their indices in the split. */
  indices: number[];
}

/**
 * `length` digits from `split` (from `pool`, a list of its indices, when
 * given), chosen by `seed`, written in a row.
 * Sizes vary ±15% around the line's, each digit sits up to 12% of the line
 * height above or below it; `gaps` leaves 8–45% of the line height between
 * one digit's ink and the next, `touching` from 10% overlap to 2% apart.
 */
export async function writeNumber(
  split: MnistSplit,
  length: number,
  spacing: Spacing,
  kind: Kind,
  seed: number,
  pool?: readonly number[],
): Promise<WrittenNumber> {
  const random = seededRandom(seed);
  // The frame a digit is drawn in (28 px of MNIST), in output pixels: a canvas pad is larger than a photographed line.
  const line = kind === 'canvas' ? 110 + random() * 50 : 90 + random() * 50;
  const placed: { digit: Uint8Array; size: number; left: number; top: number }[] = [];
  let text = '';
  const indices: number[] = [];
  let cursor = line * (0.2 + random() * 0.3);
  for (let k = 0; k < length; k++) {
    const index = pool === undefined ? Math.floor(random() * split.count) : pool[Math.floor(random() * pool.length)]!;
    const digit = split.images.subarray(index * MNIST_PIXELS, (index + 1) * MNIST_PIXELS);
    text += String(split.labels[index]);
    indices.push(index);
    const size = line * (0.85 + random() * 0.3);
    const ink = inkColumns(digit);
    const gap = spacing === 'gaps' ? 0.08 + random() * 0.37 : -0.1 + random() * 0.12;
    const left = cursor + (k === 0 ? 0 : gap * line) - (ink.left / 28) * size;
    const middle = line * (0.8 + (random() - 0.5) * 0.24);
    const top = middle - (((ink.top + ink.bottom) / 2) * size) / 28;
    placed.push({ digit, size, left, top });
    cursor = left + (ink.right / 28) * size;
  }
  const width = Math.ceil(cursor + line * (0.2 + random() * 0.3));
  const height = Math.ceil(line * 1.6);
  const coverage = new Float32Array(width * height);
  for (const { digit, size, left, top } of placed) {
    for (let y = Math.max(0, Math.floor(top)); y < Math.min(height, Math.ceil(top + size)); y++) {
      for (let x = Math.max(0, Math.floor(left)); x < Math.min(width, Math.ceil(left + size)); x++) {
        const i = y * width + x;
        coverage[i] = Math.max(coverage[i]!, inkAt(digit, size, left, top, x, y));
      }
    }
  }
  return { image: await (kind === 'canvas' ? canvas : photo)(coverage, width, height, random), text, indices };
}

/** As rerender.ts's canvasDrawing: black strokes, coverage boosted to a solid pen, on transparency. */
async function canvas(coverage: Float32Array, width: number, height: number): Promise<Buffer> {
  const image = new Jimp({ width, height, color: 0x00000000 });
  coverage.forEach((c, i) => {
    const alpha = Math.min(1, c * 1.6);
    if (alpha > 0) image.bitmap.data.set([0, 0, 0, Math.round(alpha * 255)], i * 4);
  });
  return image.getBuffer('image/png');
}

/** As rerender.ts's paperPhoto: dark ink on grey paper lit unevenly, with sensor noise, saved as JPEG. */
async function photo(coverage: Float32Array, width: number, height: number, random: () => number): Promise<Buffer> {
  const paper = 170 + random() * 50;
  const ink = 30 + random() * 40;
  const image = new Jimp({ width, height, color: 0xffffffff });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const c = coverage[y * width + x]!;
      const light = paper + (x / width - 0.5) * 30 + (y / height - 0.5) * 20 + (random() - 0.5) * 24;
      const value = Math.max(0, Math.min(255, Math.round(light * (1 - c) + ink * c)));
      image.bitmap.data.set([value, value, Math.max(0, value - 8), 255], (y * width + x) * 4);
    }
  }
  return image.getBuffer('image/jpeg', { quality: 80 });
}

/** What number mode read in one image: the digits, or the error code that refused it. */
export async function readNumber(model: InferenceModel, image: Buffer, workSide?: number): Promise<string> {
  try {
    const { parts } = await preprocessNumber(image, { workSide });
    return classify(
      model,
      parts.map((part) => part.input),
    )
      .map((p) => p.digit)
      .join('');
  } catch (error) {
    return `error: ${(error as { code?: string }).code ?? (error as Error).message}`;
  }
}

/**
 * What the model answers for the original 28×28 digits. Number mode agreeing
 * with it shows what segmentation and rendering leave of the model's own
 * reading; either may be the right one where they differ.
 */
export function readAlone(model: InferenceModel, split: MnistSplit, indices: number[]): string {
  const inputs = indices.map((index) =>
    Float32Array.from(split.images.subarray(index * MNIST_PIXELS, (index + 1) * MNIST_PIXELS), (v) => v / 255),
  );
  return classify(model, inputs)
    .map((p) => p.digit)
    .join('');
}

const TESTS_MODEL = path.join('test', 'artifacts', 'mlp-2epochs');

/**
 * A model as the service runs it (`inference-model.ts`): the tests' 2-epoch
 * MLP from test/artifacts when a test run left it there, else one trained
 * now with the architecture's default recipe (the tests' for the MLP).
 */
async function benchModel(
  split: { train: MnistSplit; test: MnistSplit },
  arch: Arch,
  epochs: number,
): Promise<{ model: InferenceModel; source: string }> {
  let artifacts: tf.io.ModelArtifacts;
  let weights: Buffer;
  let source = `${TESTS_MODEL} (the tests' 2-epoch MLP)`;
  try {
    if (arch !== 'mlp' || epochs !== 2) throw new Error("not the tests' model");
    artifacts = JSON.parse(await readFile(path.join(TESTS_MODEL, 'artifacts.json'), 'utf8')).model;
    weights = await readFile(path.join(TESTS_MODEL, 'weights.bin'));
  } catch {
    const trained = createModel({ arch, seed: 42 });
    await trainModel(trained, split.train, { epochs, ...TRAINING_DEFAULTS[arch], seed: 42 });
    const accuracy = (await evaluateModel(trained, split.test)).accuracy;
    source = `${arch}, ${epochs} epochs trained now (default recipe, seed 42), MNIST test accuracy ${round(100 * accuracy, 2)}%`;
    let saved: tf.io.ModelArtifacts | undefined;
    await trained.save(
      tf.io.withSaveHandler(async (a) => {
        saved = a;
        return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(a) };
      }),
    );
    artifacts = saved!;
    weights = Buffer.from(tf.io.CompositeArrayBuffer.join(saved!.weightData));
    trained.dispose();
  }
  const decoded = tf.io.decodeWeights(new Uint8Array(weights).buffer, artifacts.weightSpecs!);
  return { model: inferenceModel(artifacts.modelTopology, decoded), source };
}

/** The version the configured bucket serves (`npm start`'s, by default), loaded as the service loads it. */
async function servedModel(config: Config): Promise<{ model: InferenceModel; source: string }> {
  const storage = await openStorage(config);
  try {
    const store = new ModelStore(storage.objects);
    const latest = await store.latest();
    if (!latest) throw new Error('--served: no model is serving yet; train one with `npm run train`');
    const { model, metrics } = await store.load(latest.version);
    const accuracy = round(100 * metrics.test.accuracy, 2);
    return { model, source: `${latest.version}, the served version, MNIST test accuracy ${accuracy}%` };
  } finally {
    await storage.close();
  }
}

export async function benchNumbers(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      served: { type: 'boolean', default: false },
      'per-cell': { type: 'string', default: '25' },
      'work-side': { type: 'string' },
      arch: { type: 'string', default: 'mlp' },
      epochs: { type: 'string', default: '2' },
    },
  });
  const perCell = Number(values['per-cell']);
  if (!(Number.isInteger(perCell) && perCell > 0)) throw new Error('--per-cell must be a positive whole number');
  const workSide = values['work-side'] === undefined ? undefined : Number(values['work-side']);
  if (workSide !== undefined && !(Number.isInteger(workSide) && workSide >= 28 && workSide <= 4096))
    throw new Error('--work-side must be a whole number of pixels from 28 to 4096');
  const arch = values.arch!;
  if (!isArch(arch)) throw new Error(`--arch must be mlp or cnn; got "${arch}"`);
  const epochs = Number(values.epochs);
  if (!(Number.isInteger(epochs) && epochs > 0)) throw new Error('--epochs must be a positive whole number');
  const config = readConfig();
  const backend = await initBackend(undefined, config.tfjsBackend);
  const mnist = await loadMnist({ dir: benchMnistDir(), cacheDir: path.join(config.dataDir, 'mnist') });
  const { model, source } = values.served ? await servedModel(config) : await benchModel(mnist, arch, epochs);
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out(
    JSON.stringify({ bench: 'numbers', machine: machine(), backend, perCell, workSide: workSide ?? NUMBER_WORK_SIDE }),
  );
  out(`model: ${source}`);
  out('');
  out(
    '| kind | spacing | length | numbers | sequence accuracy | digit count right | same as the model on the original digits |',
  );
  out('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
  for (const kind of ['canvas', 'photo'] as const) {
    for (const spacing of ['gaps', 'touching'] as const) {
      let [all, right, counted, agreed] = [0, 0, 0, 0];
      for (const length of LENGTHS) {
        let [cellRight, cellCounted, cellAgreed] = [0, 0, 0];
        for (let i = 0; i < perCell; i++) {
          const seed = 1 + i + 1000 * length;
          const written = await writeNumber(mnist.test, length, spacing, kind, seed);
          const read = await readNumber(model, written.image, workSide);
          if (read === written.text) cellRight++;
          if (/^[0-9]+$/.test(read) && read.length === length) cellCounted++;
          if (read === readAlone(model, mnist.test, written.indices)) cellAgreed++;
        }
        all += perCell;
        right += cellRight;
        counted += cellCounted;
        agreed += cellAgreed;
        out(
          `| ${kind} | ${spacing} | ${length} | ${perCell} | ${percent(cellRight, perCell)} | ${percent(cellCounted, perCell)} | ${percent(cellAgreed, perCell)} |`,
        );
      }
      out(
        `| ${kind} | ${spacing} | all | ${all} | **${percent(right, all)}** | **${percent(counted, all)}** | **${percent(agreed, all)}** |`,
      );
    }
  }
  model.dispose();
}

const percent = (part: number, whole: number) => `${round((100 * part) / whole, 1)}%`;
