/**
 * What users drew and corrected, as training data: labelled captures →
 * a training split and a live holdout, and how many of the training split a
 * run may use. Pure: the job reads the bucket (`live/read.ts`) and hands the
 * result here.
 *
 * The split is a hash of the prediction id, not a random draw, so a capture
 * falls on the same side in every run: the holdout is the same set forever
 * (growing only with new captures), no version ever trains on it, and every
 * version is judged on images none of them has seen.
 */
import { createHash } from 'node:crypto';
import { MNIST_PIXELS } from '../mnist-shape.ts';
import type { LabelledImages } from './batches.ts';

/** Percent of labelled captures kept out of training, for the live holdout. */
export const HOLDOUT_PERCENT = 20;

/** What the split needs of a labelled capture (`LabelledCapture` from live/read.ts fits). */
export interface LabelledInput {
  capture: { predictionId: string; input: string };
  label: number;
}

export interface LiveSplit {
  /** Oldest first (prediction ids sort by time), so the newest are the last. */
  train: LabelledImages;
  holdout: LabelledImages;
  /** Captures whose input did not decode to 28×28 bytes. */
  skipped: number;
}

/** Whether a prediction belongs to the live holdout: the first 4 bytes of its id's SHA-256, mod 100. */
export function inHoldout(predictionId: string): boolean {
  const digest = createHash('sha256').update(predictionId).digest();
  return digest.readUInt32BE(0) % 100 >= 100 - HOLDOUT_PERCENT;
}

function pack(rows: { input: Uint8Array; label: number }[]): LabelledImages {
  const images = new Uint8Array(rows.length * MNIST_PIXELS);
  const labels = new Uint8Array(rows.length);
  rows.forEach((row, i) => {
    images.set(row.input, i * MNIST_PIXELS);
    labels[i] = row.label;
  });
  return { images, labels, count: rows.length };
}

/** Deduplicated by prediction id (the last one given wins, as the last feedback does), then split by `inHoldout`. */
export function splitLiveData(labelled: readonly LabelledInput[]): LiveSplit {
  const byId = new Map<string, LabelledInput>();
  for (const item of labelled) byId.set(item.capture.predictionId, item);
  const ids = [...byId.keys()].sort();
  const train: { input: Uint8Array; label: number }[] = [];
  const holdout: { input: Uint8Array; label: number }[] = [];
  let skipped = 0;
  for (const id of ids) {
    const item = byId.get(id)!;
    const input = new Uint8Array(Buffer.from(item.capture.input, 'base64'));
    if (input.length !== MNIST_PIXELS) {
      skipped++;
      continue;
    }
    (inHoldout(id) ? holdout : train).push({ input, label: item.label });
  }
  return { train: pack(train), holdout: pack(holdout), skipped };
}

/**
 * How many distinct feedback images a run may add so that, repeated `weight`
 * times each, they make up at most `maxShare` of the final training set
 * (`mnistCount` MNIST images plus the repetitions): k·w ≤ s·(n + k·w).
 */
export function feedbackBudget(mnistCount: number, weight: number, maxShare: number): number {
  // The epsilon keeps an exact quotient such as 500 from flooring to 499 through rounding.
  return Math.max(0, Math.floor((maxShare * mnistCount) / (weight * (1 - maxShare)) + 1e-9));
}

/** The last `n` examples: the newest, since the split is ordered oldest first. */
export function newest(data: LabelledImages, n: number): LabelledImages {
  const take = Math.min(n, data.count);
  const from = data.count - take;
  return {
    images: data.images.subarray(from * MNIST_PIXELS),
    labels: data.labels.subarray(from),
    count: take,
  };
}
