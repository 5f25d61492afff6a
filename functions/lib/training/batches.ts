/**
 * Training data as tensors: labelled MNIST bytes → [n,28,28,1] inputs in 0–1
 * and one-hot labels, reproducible shuffles, the random distortions of
 * `--augment`, and extra examples (users' corrections) appended and repeated.
 */
import * as tf from '@tensorflow/tfjs-core';
import { MNIST_CLASSES, MNIST_PIXELS, MNIST_SIDE } from '../mnist-shape.ts';

/** A labelled split as raw bytes: scaling to 0–1 happens here, batch by batch. */
export interface LabelledImages {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

/** mulberry32: a tiny seeded PRNG so shuffles are reproducible across runs. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffled(indices: Int32Array, random: () => number): Int32Array {
  const out = indices.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = out[i]!;
    out[i] = out[j]!;
    out[j] = tmp;
  }
  return out;
}

export function range(start: number, end: number): Int32Array {
  const out = new Int32Array(end - start);
  for (let i = 0; i < out.length; i++) out[i] = start + i;
  return out;
}

/** Every index of [start, end) `times` times over; a shuffle then spreads the copies through the epoch. */
export function repeatedRange(start: number, end: number, times: number): Int32Array {
  const once = range(start, end);
  const out = new Int32Array(once.length * times);
  for (let copy = 0; copy < times; copy++) out.set(once, copy * once.length);
  return out;
}

/** `extra` after `base` in one set, so batches index both the same way; `base`'s indices stay what they were. */
export function appendImages(base: LabelledImages, extra: LabelledImages): LabelledImages {
  const images = new Uint8Array(base.images.length + extra.images.length);
  images.set(base.images);
  images.set(extra.images, base.images.length);
  const labels = new Uint8Array(base.count + extra.count);
  labels.set(base.labels);
  labels.set(extra.labels, base.count);
  return { images, labels, count: base.count + extra.count };
}

/** The largest random distortion `--augment` applies to a training image. */
export const AUGMENTATION = { shiftPixels: 2, rotationDegrees: 10, scale: 0.1 } as const;

/** How many numbers `distortInto` draws from its random stream per image. */
const DRAWS_PER_DISTORTION = 4;

/**
 * Advances a distortion stream past `images` images without distorting them:
 * a replica of a data-parallel run skips the other shards' images, so every
 * image of a batch gets the distortion it gets on one thread.
 */
export function skipDistortions(random: () => number, images: number): void {
  for (let i = 0; i < images * DRAWS_PER_DISTORTION; i++) random();
}

/**
 * Writes one 28×28 byte image into `target` at `offset` as 0–1 floats,
 * rotated and scaled about its centre and shifted by random amounts within
 * AUGMENTATION; bilinear, zero outside. A JavaScript pass over the bytes
 * rather than tf.image.transform: it costs well under a millisecond per batch
 * and is the same on every backend (the cpu backend's Transform leaves every
 * image after the first in a batch blank).
 */
function distortInto(source: Uint8Array, target: Float32Array, offset: number, random: () => number): void {
  const between = (limit: number) => (2 * random() - 1) * limit;
  const angle = (between(AUGMENTATION.rotationDegrees) * Math.PI) / 180;
  const scale = 1 + between(AUGMENTATION.scale);
  const shiftX = between(AUGMENTATION.shiftPixels);
  const shiftY = between(AUGMENTATION.shiftPixels);
  // Output pixel → source pixel: the inverse rotation and scale.
  const cos = Math.cos(angle) / scale;
  const sin = Math.sin(angle) / scale;
  const centre = (MNIST_SIDE - 1) / 2;
  const last = MNIST_SIDE - 1;
  const at = (x: number, y: number) => (x < 0 || y < 0 || x > last || y > last ? 0 : source[y * MNIST_SIDE + x]!);
  for (let row = 0; row < MNIST_SIDE; row++) {
    const dy = row - centre - shiftY;
    for (let col = 0; col < MNIST_SIDE; col++) {
      const dx = col - centre - shiftX;
      const x = cos * dx + sin * dy + centre;
      const y = cos * dy - sin * dx + centre;
      const x0 = Math.floor(x);
      const y0 = Math.floor(y);
      const fx = x - x0;
      const fy = y - y0;
      const top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx;
      const bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx;
      target[offset + row * MNIST_SIDE + col] = (top * (1 - fy) + bottom * fy) / 255;
    }
  }
}

/**
 * Gathers the given examples into an input tensor [n,28,28,1] scaled to 0–1
 * and one-hot labels [n,10]. With `distort`, every image is randomly shifted,
 * rotated and scaled (AUGMENTATION), reproducibly for a given random stream.
 */
export function toTensors(
  data: LabelledImages,
  indices: ArrayLike<number>,
  distort?: () => number,
): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const n = indices.length;
  const oneHot = new Float32Array(n * MNIST_CLASSES);
  for (let row = 0; row < n; row++) oneHot[row * MNIST_CLASSES + data.labels[indices[row]!]!] = 1;
  return { x: toInputs(data, indices, distort), y: tf.tensor2d(oneHot, [n, MNIST_CLASSES]) };
}

/** The input half of `toTensors`: [n,28,28,1] in 0–1. */
export function toInputs(data: LabelledImages, indices: ArrayLike<number>, distort?: () => number): tf.Tensor4D {
  const n = indices.length;
  const pixels = new Float32Array(n * MNIST_PIXELS);
  for (let row = 0; row < n; row++) {
    const index = indices[row]!;
    const source = data.images.subarray(index * MNIST_PIXELS, (index + 1) * MNIST_PIXELS);
    const offset = row * MNIST_PIXELS;
    if (distort) distortInto(source, pixels, offset, distort);
    else for (let p = 0; p < MNIST_PIXELS; p++) pixels[offset + p] = source[p]! / 255;
  }
  return tf.tensor4d(pixels, [n, MNIST_SIDE, MNIST_SIDE, 1]);
}
