/**
 * Captures and feedback read back from the bucket and joined: what live
 * accuracy and retraining on corrections start from. Every line and object is
 * validated (`records.ts`); feedback whose prediction was never captured is
 * dropped here, so it reaches no statistic and no training set.
 */
import { gunzipSync } from 'node:zlib';
import { ObjectTooLargeError } from '../errors.ts';
import type { ObjectStore, StoredObject } from '../storage/objects.ts';
import {
  CAPTURES_PREFIX,
  type CaptureAnswer,
  type CaptureRecord,
  FEEDBACK_PREFIX,
  type FeedbackRecord,
  parseCapture,
  parseFeedback,
  trueLabel,
} from './records.ts';

/** One captures object (Firehose's buffer or the local sink's) is at most a few MB; this bounds a hostile one. */
const MAX_CAPTURE_OBJECT_BYTES = 64 * 1024 * 1024;
const MAX_FEEDBACK_OBJECT_BYTES = 4096;

export interface LabelledCapture<C extends CaptureAnswer = CaptureRecord> {
  capture: C;
  feedback: FeedbackRecord;
  /** What the user says the digit is. */
  label: number;
}

export interface LiveData<C extends CaptureAnswer = CaptureRecord> {
  captures: C[];
  labelled: LabelledCapture<C>[];
  /** Lines and objects that were not valid records (or could not be read), and feedback for ids never captured. */
  skipped: { captureLines: number; captureObjects: number; feedbackObjects: number; unknownPredictionIds: number };
}

/** `dt=YYYY-MM-DD/` partitions on or after `since`, so a reader can look at recent days only. */
function inRange(key: string, prefix: string, since: string | undefined): boolean {
  if (!since) return true;
  const date = /^dt=(\d{4}-\d{2}-\d{2})\//.exec(key.slice(prefix.length))?.[1];
  return date !== undefined && date >= since;
}

/**
 * An object's text, or undefined when it is too large or not valid gzip: one
 * damaged object is skipped and counted, and never stops every later summary.
 */
async function captureText(objects: ObjectStore, key: string): Promise<string | undefined> {
  let object: StoredObject | undefined;
  try {
    object = await objects.get(key, { maxBytes: MAX_CAPTURE_OBJECT_BYTES });
  } catch (error) {
    if (error instanceof ObjectTooLargeError) return undefined;
    throw error;
  }
  if (!object) return '';
  if (!isGzip(object.body)) return object.body.toString('utf8');
  try {
    return gunzipSync(object.body, { maxOutputLength: 8 * MAX_CAPTURE_OBJECT_BYTES }).toString('utf8');
  } catch {
    return undefined;
  }
}

/** A capture's answer alone: a fresh object, so the parsed record's input and probabilities can be collected. */
function answerOf(record: CaptureRecord): CaptureAnswer {
  const { input: _input, probabilities: _probabilities, ...answer } = record;
  return answer;
}

async function readCaptures<C extends CaptureAnswer>(
  objects: ObjectStore,
  since: string | undefined,
  keep: (record: CaptureRecord) => C,
) {
  const captures = new Map<string, C>();
  let skipped = 0;
  let unreadable = 0;
  for (const key of await objects.list(CAPTURES_PREFIX)) {
    if (!inRange(key, CAPTURES_PREFIX, since)) continue;
    const text = await captureText(objects, key);
    if (text === undefined) {
      unreadable++;
      continue;
    }
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const record = parseCapture(line);
      // Firehose delivers at least once: a repeated id is the same record.
      if (record) captures.set(record.predictionId, keep(record));
      else skipped++;
    }
  }
  return { captures, skipped, unreadable };
}

const isGzip = (bytes: Buffer) => bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;

async function readFeedback(objects: ObjectStore, since: string | undefined) {
  const feedback = new Map<string, FeedbackRecord>();
  let skipped = 0;
  for (const key of await objects.list(FEEDBACK_PREFIX)) {
    if (!inRange(key, FEEDBACK_PREFIX, since)) continue;
    const object = await objects.get(key, { maxBytes: MAX_FEEDBACK_OBJECT_BYTES }).catch(() => undefined);
    const record = object && parseFeedback(object.body.toString('utf8'));
    if (record && key.endsWith(`/${record.predictionId}.json`)) feedback.set(record.predictionId, record);
    else skipped++;
  }
  return { feedback, skipped };
}

/** Every valid capture (oldest first) and every capture with feedback, joined. */
export function readLiveData(objects: ObjectStore, options: { since?: string } = {}): Promise<LiveData> {
  return readJoined(objects, options.since, (record) => record);
}

/**
 * The same, keeping each capture's answer only: comparing versions reads every
 * capture since a candidate was set, once a minute, and holding the inputs too
 * would take four times the memory: 1.6 KB of heap a parsed capture against
 * 0.4 KB for its answer (measured on 60,000 records with a candidate's answer).
 */
export function readLiveAnswers(
  objects: ObjectStore,
  options: { since?: string } = {},
): Promise<LiveData<CaptureAnswer>> {
  return readJoined(objects, options.since, answerOf);
}

async function readJoined<C extends CaptureAnswer>(
  objects: ObjectStore,
  since: string | undefined,
  keep: (record: CaptureRecord) => C,
): Promise<LiveData<C>> {
  const [{ captures, skipped: captureLines, unreadable: captureObjects }, { feedback, skipped: feedbackObjects }] =
    await Promise.all([readCaptures(objects, since, keep), readFeedback(objects, since)]);
  const labelled: LabelledCapture<C>[] = [];
  let unknownPredictionIds = 0;
  for (const record of feedback.values()) {
    const capture = captures.get(record.predictionId);
    if (!capture) {
      unknownPredictionIds++;
      continue;
    }
    labelled.push({ capture, feedback: record, label: trueLabel(capture, record) });
  }
  const byId = (a: { predictionId: string }, b: { predictionId: string }) =>
    a.predictionId < b.predictionId ? -1 : a.predictionId > b.predictionId ? 1 : 0;
  labelled.sort((a, b) => byId(a.capture, b.capture));
  return {
    captures: [...captures.values()].sort(byId),
    labelled,
    skipped: { captureLines, captureObjects, feedbackObjects, unknownPredictionIds },
  };
}
