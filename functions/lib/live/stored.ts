/**
 * The live summary stored beside each version as `models/<version>/live.json`:
 * written by the scheduled live function in the cloud and by `npm run live`
 * locally, read by GET /model and by the version's report. Unlike the
 * version's other files it changes: it is an annotation outside the checksums
 * in metrics.json, never part of what makes a version complete.
 */
import type { Logger } from '../log.ts';
import { MNIST_CLASSES } from '../mnist-shape.ts';
import type { ObjectStore } from '../storage/objects.ts';
import { isVersionName, ModelStore } from '../storage/store.ts';
import { compareVersions, type PairComparison } from './comparison.ts';
import { readLiveData } from './read.ts';
import { LIVE_FILE } from './records.ts';
import { CONFIDENCE_BINS, type LiveSummary, summarizeLive, type VersionLive } from './summary.ts';

/** A summary is about 2 KB; GET /model reads it, so anything far larger is refused before its body is read. */
export const LIVE_MAX_BYTES = 64 * 1024;
/** How long GET /model reuses a read of live.json; the schedule refreshes it far less often. */
export const LIVE_CACHE_MS = 60_000;

export type StoredLive = VersionLive & { updatedAt: string };

/** What GET /model says of live traffic: the headline numbers, not the histograms. */
export type LiveView = Pick<
  StoredLive,
  'predictions' | 'feedback' | 'correct' | 'corrected' | 'accuracy' | 'low' | 'high' | 'updatedAt'
>;

/**
 * Every version's summary from every retained capture and feedback (or those
 * from `since` on), and the comparisons of versions that ran side by side.
 */
export async function computeLiveSummaries(
  objects: ObjectStore,
  options: { since?: string } = {},
): Promise<LiveSummary & { comparisons: PairComparison[] }> {
  const [data, versions] = await Promise.all([readLiveData(objects, options), new ModelStore(objects).versions()]);
  return { ...summarizeLive(data, versions), comparisons: compareVersions(data, versions) };
}

/** Writes each version's live.json; the time is the caller's, so one refresh stamps every file alike. */
export async function storeLiveSummaries(objects: ObjectStore, summary: LiveSummary, updatedAt: Date): Promise<void> {
  const store = new ModelStore(objects);
  for (const version of summary.versions) {
    const stored: StoredLive = { ...version, updatedAt: updatedAt.toISOString() };
    await store.attach(version.version, LIVE_FILE, JSON.stringify(stored), 'application/json');
  }
}

/** Recomputes and stores live.json for every version with captures. */
export async function refreshLiveSummaries(objects: ObjectStore, now: Date = new Date()): Promise<LiveSummary> {
  const summary = await computeLiveSummaries(objects);
  await storeLiveSummaries(objects, summary, now);
  return summary;
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isShare = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 1;
const isShareOrNull = (v: unknown) => v === null || isShare(v);
const isTime = (v: unknown): v is string => typeof v === 'string' && !Number.isNaN(Date.parse(v));
const listOf = (v: unknown, length: number, item: (x: unknown) => boolean) =>
  Array.isArray(v) && v.length === length && v.every(item);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A stored summary as read back, or undefined for anything else: the bucket's files are checked, not trusted. */
export function parseStoredLive(bytes: Buffer, version: string): StoredLive | undefined {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isObject(value) || !isObject(value.confidence) || !isObject(value.classMix)) return undefined;
  const { predictions, feedback, correct, corrected, accuracy, low, high, confusion, confidence, classMix } = value;
  const valid =
    value.version === version &&
    isVersionName(version) &&
    isCount(predictions) &&
    isCount(feedback) &&
    isCount(correct) &&
    isCount(corrected) &&
    correct + corrected === feedback &&
    feedback <= predictions &&
    isShareOrNull(accuracy) &&
    isShareOrNull(low) &&
    isShareOrNull(high) &&
    (accuracy === null) === (feedback === 0) &&
    listOf(confusion, MNIST_CLASSES, (row) => listOf(row, MNIST_CLASSES, isCount)) &&
    listOf(confidence.all, CONFIDENCE_BINS, isCount) &&
    listOf(confidence.corrected, CONFIDENCE_BINS, isCount) &&
    listOf(classMix.answers, MNIST_CLASSES, isShare) &&
    listOf(classMix.training, MNIST_CLASSES, isShare) &&
    isTime(value.from) &&
    isTime(value.to) &&
    isTime(value.updatedAt);
  return valid ? (value as unknown as StoredLive) : undefined;
}

/** A version's stored summary; undefined when it has none. Throws on a file too large or malformed. */
export async function readStoredLive(store: ModelStore, version: string): Promise<StoredLive | undefined> {
  const bytes = await store.attachment(version, LIVE_FILE, { maxBytes: LIVE_MAX_BYTES });
  if (!bytes) return undefined;
  const stored = parseStoredLive(bytes, version);
  if (!stored) throw new Error(`models/${version}/${LIVE_FILE} is not a live summary`);
  return stored;
}

const liveView = (stored: StoredLive): LiveView => ({
  predictions: stored.predictions,
  feedback: stored.feedback,
  correct: stored.correct,
  corrected: stored.corrected,
  accuracy: stored.accuracy,
  low: stored.low,
  high: stored.high,
  updatedAt: stored.updatedAt,
});

/**
 * GET /model's reader: the serving version's live view, read at most once per
 * `LIVE_CACHE_MS` and shared by concurrent callers. Nothing on /predict calls
 * it. A file that cannot be read or is malformed is logged and shown as none,
 * and that answer is cached too: GET /model never fails for want of it.
 */
export function cachedLiveView(
  store: ModelStore,
  logger: Logger,
  now: () => number = Date.now,
): (version: string) => Promise<LiveView | null> {
  let cached: { version: string; at: number; view: Promise<LiveView | null> } | undefined;
  return (version) => {
    if (cached && cached.version === version && now() - cached.at < LIVE_CACHE_MS) return cached.view;
    const view = readStoredLive(store, version).then(
      (stored) => (stored ? liveView(stored) : null),
      (error: unknown) => {
        logger.warn('live summary unreadable; GET /model shows none', { error, modelVersion: version });
        return null;
      },
    );
    cached = { version, at: now(), view };
    return view;
  };
}
