/**
 * The live summary stored beside each version as `models/<version>/live.json`:
 * written by the scheduled live function in the cloud and by `npm run live`
 * locally, read by GET /model and by the version's report. It carries the
 * drift of the version's recent captures against the reference profile its
 * training stored (`profile.json`). Unlike the
 * version's other files it changes: it is an annotation outside the checksums
 * in metrics.json, never part of what makes a version complete.
 */
import { ModelIntegrityError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { MNIST_CLASSES } from '../mnist-shape.ts';
import type { ObjectStore } from '../storage/objects.ts';
import { isVersionName, ModelStore } from '../storage/store.ts';
import { compareVersions, type PairComparison } from './comparison.ts';
import { readLiveData } from './read.ts';
import { LIVE_FILE } from './records.ts';
import { DRIFT_DEFAULTS, DRIFT_LEVELS, type DriftOptions } from './drift.ts';
import { CONFIDENCE_BINS, FEATURES, PROFILE_FILE, PROFILE_MAX_BYTES, type Profile, parseProfile } from './profile.ts';
import { type LiveSummary, summarizeLive, type VersionLive } from './summary.ts';

/** A summary is about 2 KB; GET /model reads it, so anything far larger is refused before its body is read. */
export const LIVE_MAX_BYTES = 64 * 1024;
/** How long GET /model reuses a read of live.json; the schedule refreshes it far less often. */
export const LIVE_CACHE_MS = 60_000;

/** A version's live.json; summaries stored before latency and low confidence were computed lack them. */
export type StoredLive = Omit<VersionLive, 'latencyMs' | 'lowConfidence'> &
  Partial<Pick<VersionLive, 'latencyMs' | 'lowConfidence'>> & { updatedAt: string };

const DAY_MS = 86_400_000;

/** What GET /model says of live traffic: the headline numbers, not the histograms. */
export type LiveView = Pick<
  StoredLive,
  'predictions' | 'feedback' | 'correct' | 'corrected' | 'accuracy' | 'low' | 'high' | 'updatedAt'
>;

export interface LiveOptions {
  /** YYYY-MM-DD: only captures and feedback from that day on. */
  since?: string;
  /** Drift's window ends now. */
  now?: Date;
  drift?: DriftOptions & { windowDays: number };
  /** LOW_CONFIDENCE_THRESHOLD: the metrics' threshold, so both count the same answers. */
  lowConfidenceThreshold?: number;
}

/**
 * A version's reference profile; undefined when it was saved without one, the
 * problem when the file is damaged (drift then says so instead of failing
 * every version's summary).
 */
async function readReference(store: ModelStore, version: string): Promise<Profile | { problem: string } | undefined> {
  let bytes: Buffer | undefined;
  try {
    bytes = await store.verifiedFile(version, PROFILE_FILE, PROFILE_MAX_BYTES);
  } catch (error) {
    if (error instanceof ModelIntegrityError) return { problem: error.message };
    throw error;
  }
  if (!bytes) return undefined;
  const profile = parseProfile(bytes);
  return 'problem' in profile ? { problem: `models/${version}/${PROFILE_FILE} ${profile.problem}` } : profile;
}

/**
 * Every version's summary from every retained capture and feedback (or those
 * from `since` on), each with the drift of its captures of the last
 * `windowDays` against its reference profile; and the comparisons of
 * versions that ran side by side.
 */
export async function computeLiveSummaries(
  objects: ObjectStore,
  options: LiveOptions = {},
): Promise<LiveSummary & { comparisons: PairComparison[] }> {
  const store = new ModelStore(objects);
  const { windowDays, ...driftOptions } = options.drift ?? DRIFT_DEFAULTS;
  const now = options.now ?? new Date();
  const [data, versions] = await Promise.all([readLiveData(objects, options), store.versions()]);
  const stored = new Set(versions);
  const captured = [...new Set(data.captures.map((c) => c.modelVersion))].filter((v) => stored.has(v));
  const references = new Map<string, Profile | { problem: string }>();
  for (const version of captured) {
    const reference = await readReference(store, version);
    if (reference) references.set(version, reference);
  }
  const windowStart = now.getTime() - windowDays * DAY_MS;
  const since = new Date(options.since ? Math.max(windowStart, Date.parse(`${options.since}T00:00:00Z`)) : windowStart);
  return {
    ...summarizeLive(data, versions, { ...driftOptions, references, since }, options.lowConfidenceThreshold),
    comparisons: compareVersions(data, versions),
  };
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
export async function refreshLiveSummaries(
  objects: ObjectStore,
  now: Date = new Date(),
  options: Pick<LiveOptions, 'drift' | 'lowConfidenceThreshold'> = {},
): Promise<LiveSummary> {
  const summary = await computeLiveSummaries(objects, { now, ...options });
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

const isNonNegative = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** A stored drift result, or absent (a live.json written before drift was measured). */
function isStoredDrift(v: unknown): boolean {
  if (v === undefined) return true;
  if (!isObject(v)) return false;
  const { level, score, features, samples, since, threshold, alarm, reference } = v;
  const measured = score !== null || features !== null;
  return (
    (DRIFT_LEVELS as readonly unknown[]).includes(level) &&
    (score === null || isNonNegative(score)) &&
    (features === null || (isObject(features) && FEATURES.every((f) => isNonNegative(features[f])))) &&
    (score === null) === (features === null) &&
    measured === (level === 'none' || level === 'moderate' || level === 'significant') &&
    isCount(samples) &&
    isTime(since) &&
    isNonNegative(threshold) &&
    typeof alarm === 'boolean' &&
    (reference === undefined || typeof reference === 'string')
  );
}

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
    isTime(value.updatedAt) &&
    isStoredDrift(value.drift) &&
    // Absent from summaries stored before they were computed.
    (value.latencyMs === undefined ||
      (isObject(value.latencyMs) && isNonNegative(value.latencyMs.p50) && isNonNegative(value.latencyMs.p99))) &&
    (value.lowConfidence === undefined ||
      (isObject(value.lowConfidence) && isShare(value.lowConfidence.threshold) && isShare(value.lowConfidence.share)));
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
