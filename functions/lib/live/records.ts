/**
 * What live learning stores, in one place: the prediction id, the capture
 * record (what the model saw and answered), the feedback record (what the
 * user says the answer should have been), and the keys both live under.
 *
 * A capture is one JSON line. In the cloud the predict function prints it and
 * a CloudWatch Logs subscription ships it through Firehose to
 * `captures/dt=YYYY-MM-DD/`; locally the same lines are written there
 * directly. Readers therefore validate every line: a log stream is not a
 * trusted store.
 */
import { randomBytes } from 'node:crypto';
import { MNIST_CLASSES, MNIST_PIXELS } from '../mnist-shape.ts';
import { VERDICT_REASONS, type VerdictReason } from '../verdict.ts';

export const CAPTURES_PREFIX = 'captures/';
export const FEEDBACK_PREFIX = 'feedback/';
/** Each version's live summary, `models/<version>/live.json`: mutable, outside the version's checksums. */
export const LIVE_FILE = 'live.json';
/** Bumped when a field changes meaning; readers skip records of other schemas. A new optional field is not a bump. */
export const SCHEMA = 1;

/** How the caller sent the input: an image format, or raw pixels. */
export const INPUT_FORMATS = ['png', 'jpeg', 'gif', 'bmp', 'pixels'] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];

/**
 * `YYYYMMDDhhmmssmmm-` and 24 hex digits (96 random bits): sortable by time,
 * carries the capture's date so feedback lands beside it without a lookup,
 * and cannot be guessed, so nobody can correct someone else's prediction.
 */
const PREDICTION_ID = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{3})-[0-9a-f]{24}$/;

export function newPredictionId(now: Date = new Date(), random: Buffer = randomBytes(12)): string {
  const stamp = now.toISOString().replace(/[-:T.Z]/g, '');
  return `${stamp}-${random.toString('hex')}`;
}

export function isPredictionId(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  const match = PREDICTION_ID.exec(value);
  if (!match) return false;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as number[];
  const date = new Date(Date.UTC(year!, month! - 1, day!, hour!, minute!, second!));
  return date.getUTCMonth() === month! - 1 && date.getUTCDate() === day! && date.getUTCHours() === hour;
}

/** When a prediction was made, to the millisecond, read from its id (epoch milliseconds). */
export function predictionTime(predictionId: string): number {
  const d = predictionId;
  return Date.parse(
    `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T${d.slice(8, 10)}:${d.slice(10, 12)}:${d.slice(12, 14)}.${d.slice(14, 17)}Z`,
  );
}

/** `YYYY-MM-DD` of the moment a prediction was made, read from its id. */
export function predictionDate(predictionId: string): string {
  return `${predictionId.slice(0, 4)}-${predictionId.slice(4, 6)}-${predictionId.slice(6, 8)}`;
}

/** The Hive-style partition Athena and DuckDB read as a column. */
export const partition = (prefix: string, date: string) => `${prefix}dt=${date}/`;

/** One object per prediction id: a second answer overwrites the first, so the last one wins. */
export const feedbackKey = (predictionId: string) =>
  `${partition(FEEDBACK_PREFIX, predictionDate(predictionId))}${predictionId}.json`;

export interface CaptureRecord {
  type: 'capture';
  schema: typeof SCHEMA;
  predictionId: string;
  time: string;
  modelVersion: string;
  digit: number;
  confidence: number;
  probabilities: number[];
  /** The 28×28 input the model saw, 0–255 row by row, base64: never the uploaded file. */
  input: string;
  format: InputFormat;
  /** From the request's arrival to its answer, in milliseconds. */
  latencyMs: number;
  /**
   * While a candidate is set (shadow or canary): the other model's answer on
   * the same input, so both are judged on the same traffic. Absent otherwise,
   * and when the candidate failed on this request.
   */
  alternative?: Alternative;
  /** Digit mode: whether the input looked like one handwritten digit, and if not, why (verdict.ts). */
  isDigit?: boolean;
  reason?: VerdictReason;
  /** Number mode: this digit's place in the number read from one image, from 0 on the left. */
  part?: NumberPart;
}

export interface NumberPart {
  index: number;
  of: number;
}

/**
 * A capture without what only statistics of the inputs need (the input and
 * the ten probabilities, three quarters of a record): what comparing versions
 * and scoring answers read.
 */
export type CaptureAnswer = Omit<CaptureRecord, 'input' | 'probabilities'>;

/** Another version's answer to a captured input. */
export interface Alternative {
  modelVersion: string;
  digit: number;
  confidence: number;
}

/** The user's word on one prediction: either the digit it should have been, or that it was right. */
export type FeedbackRecord = {
  type: 'feedback';
  schema: typeof SCHEMA;
  predictionId: string;
  time: string;
} & ({ label: number } | { correct: true });

/**
 * The digit a prediction should have given, by its feedback: a confirmation
 * labels it with the answer itself. The route cannot know the answer (it never
 * reads captures), so the two are joined here.
 */
export const trueLabel = (capture: CaptureAnswer, feedback: FeedbackRecord): number =>
  'label' in feedback ? feedback.label : capture.digit;

/** The model input as stored: one byte per pixel, as MNIST stores it. */
export function encodeInput(input: Float32Array): string {
  // A plain loop: Uint8Array.from with a mapping function is several times slower, and this runs per prediction.
  const bytes = Buffer.allocUnsafe(input.length);
  for (let i = 0; i < input.length; i++) bytes[i] = Math.round(Math.min(1, Math.max(0, input[i]!)) * 255);
  return bytes.toString('base64');
}

export function decodeInput(base64: string): Uint8Array {
  return new Uint8Array(Buffer.from(base64, 'base64'));
}

const isDigit = (value: unknown): value is number =>
  Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 9;
const isProbability = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= 1;
const isTime = (value: unknown): value is string => typeof value === 'string' && !Number.isNaN(Date.parse(value));
const VERSION = /^[0-9]{8}T[0-9]{6}Z-[a-z0-9]+$/;
const INPUT_BASE64_LENGTH = Math.ceil(MNIST_PIXELS / 3) * 4;

const ALTERNATIVE_FIELDS = ['modelVersion', 'digit', 'confidence'];

/** An alternative with exactly its fields, of another version than the one that answered; else undefined. */
function parseAlternative(value: unknown, answered: string): Alternative | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  if (!Object.keys(value).every((key) => ALTERNATIVE_FIELDS.includes(key))) return undefined;
  const { modelVersion, digit, confidence } = value as Record<string, unknown>;
  const valid =
    typeof modelVersion === 'string' &&
    VERSION.test(modelVersion) &&
    modelVersion !== answered &&
    isDigit(digit) &&
    isProbability(confidence);
  return valid ? { modelVersion, digit, confidence } : undefined;
}

/** The verdict's fields as recorded: `isDigit`, and a known reason exactly when it is false; else undefined. */
function parseVerdict(isDigit: unknown, reason: unknown): Pick<CaptureRecord, 'isDigit' | 'reason'> | undefined {
  if (isDigit === undefined && reason === undefined) return {};
  if (isDigit === true && reason === undefined) return { isDigit };
  const known = (VERDICT_REASONS as readonly unknown[]).includes(reason);
  return isDigit === false && known ? { isDigit, reason: reason as VerdictReason } : undefined;
}

/** A number part with whole numbers, its index inside the number; else undefined. */
function parsePart(value: unknown): NumberPart | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { index, of } = value as Record<string, unknown>;
  if (Object.keys(value).length !== 2 || !Number.isInteger(of) || !Number.isInteger(index)) return undefined;
  return (index as number) >= 0 && (index as number) < (of as number)
    ? { index: index as number, of: of as number }
    : undefined;
}

/** The JSON object of a record of this type and schema, or undefined for anything else. */
function recordOf(text: string, type: 'capture' | 'feedback'): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  return record.type === type && record.schema === SCHEMA ? record : undefined;
}

/** A capture line as read back, or undefined for anything else (another log line, a damaged or foreign record). */
export function parseCapture(line: string): CaptureRecord | undefined {
  const value = recordOf(line, 'capture');
  if (!value) return undefined;
  const { predictionId, time, modelVersion, digit, confidence, probabilities, input, format, latencyMs } = value;
  const alternative =
    value.alternative === undefined ? undefined : parseAlternative(value.alternative, String(modelVersion));
  if (value.alternative !== undefined && alternative === undefined) return undefined;
  const verdict = parseVerdict(value.isDigit, value.reason);
  const part = value.part === undefined ? undefined : parsePart(value.part);
  if (verdict === undefined || (value.part !== undefined && part === undefined)) return undefined;
  const valid =
    isPredictionId(predictionId) &&
    isTime(time) &&
    typeof modelVersion === 'string' &&
    VERSION.test(modelVersion) &&
    isDigit(digit) &&
    isProbability(confidence) &&
    Array.isArray(probabilities) &&
    probabilities.length === MNIST_CLASSES &&
    probabilities.every(isProbability) &&
    typeof input === 'string' &&
    input.length === INPUT_BASE64_LENGTH &&
    typeof format === 'string' &&
    (INPUT_FORMATS as readonly string[]).includes(format) &&
    typeof latencyMs === 'number' &&
    Number.isFinite(latencyMs) &&
    latencyMs >= 0;
  if (!valid) return undefined;
  return captureRecord({
    predictionId,
    time,
    modelVersion,
    digit,
    confidence,
    probabilities,
    input,
    format: format as InputFormat,
    latencyMs,
    ...(alternative ? { alternative } : {}),
    ...verdict,
    ...(part ? { part } : {}),
  });
}

/** A capture record from its fields, in the one field order every writer and reader shares. */
export function captureRecord(fields: Omit<CaptureRecord, 'type' | 'schema'>): CaptureRecord {
  const {
    predictionId,
    time,
    modelVersion,
    digit,
    confidence,
    probabilities,
    input,
    format,
    latencyMs,
    alternative,
    isDigit,
    reason,
    part,
  } = fields;
  return {
    type: 'capture',
    schema: SCHEMA,
    predictionId,
    time,
    modelVersion,
    digit,
    confidence,
    probabilities,
    input,
    format,
    latencyMs,
    ...(alternative
      ? {
          alternative: {
            modelVersion: alternative.modelVersion,
            digit: alternative.digit,
            confidence: alternative.confidence,
          },
        }
      : {}),
    ...(isDigit === undefined ? {} : { isDigit }),
    ...(reason === undefined ? {} : { reason }),
    ...(part ? { part: { index: part.index, of: part.of } } : {}),
  };
}

export function parseFeedback(text: string): FeedbackRecord | undefined {
  const value = recordOf(text, 'feedback');
  if (!value) return undefined;
  const { predictionId, time, label, correct } = value;
  if (!isPredictionId(predictionId) || !isTime(time)) return undefined;
  const base = { type: 'feedback', schema: SCHEMA, predictionId, time } as const;
  if (isDigit(label) && correct === undefined) return { ...base, label };
  if (correct === true && label === undefined) return { ...base, correct };
  return undefined;
}
