/**
 * Live accuracy, computed from captures joined with feedback (`read.ts`): per
 * model version, how often users said the answer was right, with a Wilson
 * score interval so a figure from twelve answers reads as one; and, when asked,
 * input drift of recent captures (`drift.ts`). Pure: the bucket is read and
 * written elsewhere (`stored.ts`).
 *
 * The figure leans low: users correct wrong answers more often than they
 * confirm right ones, so feedback over-represents the mistakes.
 */
import { MNIST_CLASSES, MNIST_PIXELS } from '../mnist-shape.ts';
import { type Drift, type DriftOptions, driftOf } from './drift.ts';
import { CONFIDENCE_BINS, confidenceBin, type Profile, type ProfileSample } from './profile.ts';
import { type CaptureRecord, decodeInput } from './records.ts';
import type { LabelledCapture, LiveData } from './read.ts';

/** The caveat every view of these numbers carries, in one wording. */
export const LIVE_CAVEAT =
  'Users correct wrong answers more often than they confirm right ones, so this accuracy leans low.';

/** An answer less confident than this counts as low-confidence, in the metrics and here, unless configured otherwise. */
export const LOW_CONFIDENCE_DEFAULT = 0.6;

/** z for a two-sided 95% interval. */
const Z_95 = 1.96;

/**
 * Labels per digit in the MNIST training split (60,000 images), which every
 * version trains on; checked against the files by a test. metrics.json does
 * not record a version's own class counts.
 */
export const MNIST_TRAIN_CLASS_COUNTS: readonly number[] = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];

/** The 95% Wilson score interval of `successes` out of `n`; null when there is nothing to estimate from. */
export function wilsonInterval(successes: number, n: number): { low: number; high: number } | null {
  if (n === 0) return null;
  const p = successes / n;
  const z = Z_95;
  const z2 = z * z;
  const denominator = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denominator;
  const half = (z / denominator) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // Clamped: at p = 0 or 1 the bound equals the edge, and rounding must not push it past.
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

export interface VersionLive {
  version: string;
  /** Captured answers (a sampled share of all answers when CAPTURE_SAMPLE_RATE < 1). */
  predictions: number;
  /** Captured answers the user gave feedback on. */
  feedback: number;
  /** Feedback that agrees with the answer: a confirmation, or a label equal to it. */
  correct: number;
  /** Feedback that names another digit. */
  corrected: number;
  /** correct / feedback; null without feedback. */
  accuracy: number | null;
  /** The 95% Wilson interval of `accuracy`. */
  low: number | null;
  high: number | null;
  /** Corrected answers only: rows are the user's label, columns the digit answered. */
  confusion: number[][];
  /** Counts per confidence bin (`CONFIDENCE_BINS`), of every captured answer and of the corrected ones. */
  confidence: { all: number[]; corrected: number[] };
  /** From the request's arrival to its answer, over the captured answers (the dashboard's p50 and p99). */
  latencyMs: { p50: number; p99: number };
  /** Share of the captured answers whose confidence was below `threshold` (the dashboard's low-confidence rate). */
  lowConfidence: { threshold: number; share: number };
  /** Share of each digit among the answers, beside its share in the training set. */
  classMix: { answers: number[]; training: number[] };
  /** The first and last capture's time. */
  from: string;
  to: string;
  /** Recent inputs against the version's reference profile; absent when drift was not asked for. */
  drift?: Drift;
}

/** What drift is measured with: each version's reference profile (or why it has none) and the window. */
export interface DriftInput extends DriftOptions {
  /** A version missing here has no profile.json. */
  references: ReadonlyMap<string, Profile | { problem: string }>;
  /** Captures made from this moment on are the recent ones. */
  since: Date;
}

export interface LiveSummary {
  versions: VersionLive[];
  skipped: LiveData['skipped'] & {
    /** Valid capture lines naming a version the bucket does not hold. */
    unknownVersionCaptures: number;
  };
}

const zeros = (n: number) => Array.from({ length: n }, () => 0);
const shares = (counts: readonly number[]) => {
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map((n) => (total === 0 ? 0 : n / total));
};

const NO_PROFILE = { problem: 'none stored: versions trained before profiles were stored have none' };

/**
 * The captures made since `since` as profile samples. An input that does not
 * decode to 784 bytes (its base64 has the right length but not the right
 * characters) is left out: it was never a model input.
 */
function recentSamples(captures: readonly CaptureRecord[], since: Date): ProfileSample[] {
  const samples: ProfileSample[] = [];
  for (const { time, input, digit, confidence } of captures) {
    if (Date.parse(time) < since.getTime()) continue;
    const bytes = decodeInput(input);
    if (bytes.length === MNIST_PIXELS) samples.push({ input: bytes, digit, confidence });
  }
  return samples;
}

/** The nearest-rank percentile of values sorted ascending. */
const percentileOf = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;

function summarizeVersion(
  version: string,
  captures: CaptureRecord[],
  labelled: LabelledCapture[],
  drift: DriftInput | undefined,
  lowConfidenceThreshold: number,
): VersionLive {
  const confusion = Array.from({ length: MNIST_CLASSES }, () => zeros(MNIST_CLASSES));
  const all = zeros(CONFIDENCE_BINS);
  const wrong = zeros(CONFIDENCE_BINS);
  const answers = zeros(MNIST_CLASSES);
  let from = captures[0]!.time;
  let to = from;
  let lowConfidence = 0;
  for (const capture of captures) {
    all[confidenceBin(capture.confidence)]!++;
    if (capture.confidence < lowConfidenceThreshold) lowConfidence++;
    answers[capture.digit]!++;
    if (capture.time < from) from = capture.time;
    if (capture.time > to) to = capture.time;
  }
  let correct = 0;
  for (const { capture, label } of labelled) {
    if (label === capture.digit) {
      correct++;
      continue;
    }
    confusion[label]![capture.digit]!++;
    wrong[confidenceBin(capture.confidence)]!++;
  }
  const feedback = labelled.length;
  const interval = wilsonInterval(correct, feedback);
  const latencies = captures.map((c) => c.latencyMs).sort((a, b) => a - b);
  return {
    version,
    predictions: captures.length,
    feedback,
    correct,
    corrected: feedback - correct,
    accuracy: feedback === 0 ? null : correct / feedback,
    low: interval?.low ?? null,
    high: interval?.high ?? null,
    confusion,
    confidence: { all, corrected: wrong },
    latencyMs: { p50: percentileOf(latencies, 50), p99: percentileOf(latencies, 99) },
    lowConfidence: { threshold: lowConfidenceThreshold, share: lowConfidence / captures.length },
    classMix: { answers: shares(answers), training: shares(MNIST_TRAIN_CLASS_COUNTS) },
    from,
    to,
    ...(drift && {
      drift: driftOf(
        drift.references.get(version) ?? NO_PROFILE,
        recentSamples(captures, drift.since),
        drift.since,
        drift,
      ),
    }),
  };
}

function groupInto<T>(groups: Map<string, T[]>, key: string, item: T): void {
  const group = groups.get(key);
  if (group) group.push(item);
  else groups.set(key, [item]);
}

/**
 * One summary per version in `stored` that has captures, oldest version
 * first. Captures naming any other version (one deleted since, or a forged
 * line) are counted, not summarised: they would otherwise create a folder
 * for a version that does not exist. With `drift`, each summary says how far
 * the version's recent inputs are from its reference profile.
 */
export function summarizeLive(
  data: LiveData,
  stored: readonly string[],
  drift?: DriftInput,
  lowConfidenceThreshold = LOW_CONFIDENCE_DEFAULT,
): LiveSummary {
  const known = new Set(stored);
  const captures = new Map<string, CaptureRecord[]>();
  const labelled = new Map<string, LabelledCapture[]>();
  let unknownVersionCaptures = 0;
  for (const capture of data.captures) {
    if (!known.has(capture.modelVersion)) {
      unknownVersionCaptures++;
      continue;
    }
    groupInto(captures, capture.modelVersion, capture);
  }
  for (const entry of data.labelled) {
    if (known.has(entry.capture.modelVersion)) groupInto(labelled, entry.capture.modelVersion, entry);
  }
  const versions = [...captures.keys()]
    .sort()
    .map((version) =>
      summarizeVersion(version, captures.get(version)!, labelled.get(version) ?? [], drift, lowConfidenceThreshold),
    );
  return { versions, skipped: { ...data.skipped, unknownVersionCaptures } };
}
