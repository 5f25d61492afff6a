/**
 * The shape of MNIST as every module sees it: 28×28 single-channel images and
 * ten classes. One home, so the reader, the model, the preprocessing and the
 * report cannot disagree.
 */
export const MNIST_SIDE = 28;
export const MNIST_PIXELS = MNIST_SIDE * MNIST_SIDE;
export const MNIST_CLASSES = 10;

/** The index of the largest of `length` scores starting at `start`; the first one on a tie. */
export function argmax(scores: ArrayLike<number>, start = 0, length = MNIST_CLASSES): number {
  let best = 0;
  for (let c = 1; c < length; c++) if (scores[start + c]! > scores[start + best]!) best = c;
  return best;
}
