/**
 * Environment read and validated once, at start-up: a bad value fails the
 * process before it serves or trains anything. Every variable the runtime
 * reads is decided here but two kinds: the training job's ARCH, EPOCHS,
 * BATCH_SIZE and WITH_FEEDBACK, which are defaults of its command-line flags and checked with
 * them, and the variables of the libraries it uses (the AWS SDK's credential
 * chain, NODE_OPTIONS), which are theirs. A variable only one entry point
 * needs (BUCKET in the cloud, the Batch ARNs) is validated here when set;
 * that entry point says so when it is missing.
 */
import { ConfigError } from './errors.ts';
import { DRIFT_DEFAULTS, type DriftOptions } from './live/drift.ts';
import { LOW_CONFIDENCE_DEFAULT } from './live/summary.ts';
import { DEFAULT_POLICY, type RolloutPolicy } from './rollout/decide.ts';
import { S3_TIMEOUT_DEFAULTS, type S3Timeouts } from './storage/s3-timeouts.ts';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Where predictions are recorded: a log line (the cloud), the bucket directly (the local stack), or nowhere. */
export const CAPTURE_MODES = ['log', 'bucket', 'off'] as const;
export type CaptureMode = (typeof CAPTURE_MODES)[number];

/** Where the service runs: `local` for `npm start` and the CLIs; the stack sets `dev` or `prod` (STAGE). */
export const STAGES = ['local', 'dev', 'prod'] as const;
export type Stage = (typeof STAGES)[number];

/** CloudWatch metrics as Embedded Metric Format log lines (`functions/lib/metrics.ts`), or none. */
export const METRICS_MODES = ['emf', 'off'] as const;
export type MetricsMode = (typeof METRICS_MODES)[number];

/** The most threads a training run may use (TRAIN_THREADS, `--threads`). */
export const MAX_TRAIN_THREADS = 64;

export const BACKEND_NAMES = ['node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** The key pair requests to S3_ENDPOINT are signed with (the embedded S3 accepts only its own). */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** Where POST /train submits: ARNs the stack gives the retrain function. */
export interface BatchTarget {
  jobQueue: string;
  jobDefinition: string;
}

export interface Config {
  /** Unset locally: the embedded S3 is started instead. */
  bucket?: string;
  /** An S3-compatible endpoint (the embedded s3rver); unset on AWS. */
  s3Endpoint?: string;
  /** Set with S3_ENDPOINT; unset on AWS, where the SDK finds the role's credentials itself. */
  s3Credentials?: S3Credentials;
  /** AWS_REGION, else AWS_DEFAULT_REGION. */
  region: string;
  logLevel: LogLevel;
  /** Forces one tfjs backend; unset, the first that loads is used. */
  tfjsBackend?: BackendName;
  /** `npm start`'s HTTP port, and where the CLIs look for the local stack. */
  port: number;
  /** Set by AWS Batch (and the local stack) in a training job's container. */
  batchJobId?: string;
  /** Threads a training run uses (TRAIN_THREADS, 1–64); unset, one per core (training/data-parallel.ts). */
  trainThreads?: number;
  mnistDir?: string;
  mnistBaseUrl?: string;
  modelRefreshSeconds: number;
  /** S3_CONNECT_TIMEOUT_MS, S3_REQUEST_TIMEOUT_MS. */
  s3Timeouts: S3Timeouts;
  /** Overrides the per-architecture minimum of the quality gate. */
  minAccuracy?: number;
  /** Overrides how far (0–1) a new version may fall below the serving one on the live holdout. */
  maxLiveRegression?: number;
  capture: {
    mode: CaptureMode;
    /** The share of predictions recorded, 0–1. */
    sampleRate: number;
    /** How long the bucket sink buffers a record at most. */
    flushSeconds: number;
  };
  /** Input drift in the live summary: days of captures compared, the score that alarms, the fewest captures scored. */
  drift: DriftOptions & { windowDays: number };
  /**
   * The automatic rollout decision (`rollout/decide.ts`): its policy, and how
   * often `npm start`'s primary applies it (0: never; the cloud's schedule is
   * the stack's `rolloutIntervalMinutes`).
   */
  rollout: { policy: RolloutPolicy; intervalSeconds: number };
  /** POST /feedback per process; API Gateway's route throttle is the cloud's limit. */
  feedbackLimit: { ratePerSecond: number; burst: number };
  /** JOB_QUEUE and JOB_DEFINITION, set together; only the retrain function needs them. */
  batchTarget?: BatchTarget;
  /** Where local state (the embedded S3's files, the dataset cache) lives. */
  dataDir: string;
  /** The `stage` dimension of every metric. */
  stage: Stage;
  metrics: {
    /**
     * `emf` by default only in Lambda (AWS_LAMBDA_FUNCTION_NAME set), where
     * CloudWatch Logs turns the lines into metrics; elsewhere they would only
     * fill a terminal, so the stack sets METRICS=emf for the Batch job itself.
     */
    mode: MetricsMode;
    /** An answer whose confidence is below this counts as LowConfidence. */
    lowConfidenceThreshold: number;
  };
}

type Env = Record<string, string | undefined>;

function optional(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

export function numberFrom(env: Env, name: string, fallback: number, min: number, max: number): number;
export function numberFrom(env: Env, name: string, fallback: undefined, min: number, max: number): number | undefined;
export function numberFrom(
  env: Env,
  name: string,
  fallback: number | undefined,
  min: number,
  max: number,
): number | undefined {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be a number from ${min} to ${max}; got "${raw}"`);
  }
  return value;
}

/** A whole number in [min, max], or undefined when unset. */
function wholeNumberFrom(env: Env, name: string, min: number, max: number): number | undefined {
  const raw = optional(env, name);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max)
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}; got "${raw}"`);
  return Number(raw);
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[]): T | undefined {
  const raw = optional(env, name);
  if (raw === undefined) return undefined;
  const value = raw.toLowerCase();
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new ConfigError(`${name} must be one of ${allowed.join(', ')}; got "${raw}"`);
}

/**
 * Each rollout policy setting's variable and range: read here, and set on the rollout function by the stack from
 * its context keys (`rolloutMinSamples`…), which it checks against the same range.
 */
export const ROLLOUT_POLICY_SETTINGS: Record<keyof RolloutPolicy, { env: string; min: number; max: number }> = {
  minSamples: { env: 'ROLLOUT_MIN_SAMPLES', min: 1, max: 10_000_000 },
  minLabelled: { env: 'ROLLOUT_MIN_LABELLED', min: 1, max: 10_000_000 },
  minAgreement: { env: 'ROLLOUT_MIN_AGREEMENT', min: 0, max: 1 },
  tolerance: { env: 'ROLLOUT_TOLERANCE', min: 0, max: 1 },
  coolDownMinutes: { env: 'ROLLOUT_COOL_DOWN_MINUTES', min: 0, max: 7 * 24 * 60 },
  watchMinutes: { env: 'ROLLOUT_WATCH_MINUTES', min: 0, max: 30 * 24 * 60 },
};

function policyNumber(env: Env, key: keyof RolloutPolicy): number {
  const { env: name, min, max } = ROLLOUT_POLICY_SETTINGS[key];
  return numberFrom(env, name, DEFAULT_POLICY[key], min, max);
}

/** Whole numbers only: "3000.5" or "0x10" as a port is a mistake, not a port. */
export function portFrom(name: string, raw: string): number {
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65_535) {
    throw new ConfigError(`${name} must be a whole number from 0 to 65535; got "${raw}"`);
  }
  return Number(raw);
}

/** For the logger, which is built at import, before any entry point can hand it a Config. */
export function readLogLevel(env: Env = process.env): LogLevel {
  return oneOf(env, 'LOG_LEVEL', LOG_LEVELS) ?? 'info';
}

/**
 * AWS_REGION, which Lambda and Batch set, else AWS_DEFAULT_REGION; unset if
 * neither is, so a caller can fall back on what it knows (an API's host name).
 */
export function readRegion(env: Env = process.env): string | undefined {
  for (const name of ['AWS_REGION', 'AWS_DEFAULT_REGION']) {
    const raw = optional(env, name);
    if (raw === undefined) continue;
    if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(raw))
      throw new ConfigError(`${name} must be an AWS region like us-east-1; got "${raw}"`);
    return raw;
  }
  return undefined;
}

function url(env: Env, name: string): string | undefined {
  const raw = optional(env, name);
  if (raw === undefined) return undefined;
  try {
    const parsed = new URL(raw);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error();
  } catch {
    throw new ConfigError(`${name} must be an http(s) URL; got "${raw}"`);
  }
  return raw;
}

function s3Credentials(env: Env, endpoint: string | undefined): S3Credentials | undefined {
  const accessKeyId = optional(env, 'S3_ACCESS_KEY_ID');
  const secretAccessKey = optional(env, 'S3_SECRET_ACCESS_KEY');
  if (!accessKeyId && !secretAccessKey) return undefined;
  if (!accessKeyId || !secretAccessKey)
    throw new ConfigError('S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together: set both or neither');
  if (!endpoint)
    throw new ConfigError(
      'S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY sign requests to S3_ENDPOINT: set S3_ENDPOINT too',
    );
  return { accessKeyId, secretAccessKey };
}

function batchArn(env: Env, name: string, kind: string): string {
  const value = optional(env, name);
  if (!value?.startsWith('arn:') || !value.includes(`:${kind}/`)) {
    throw new ConfigError(`${name} must be the ARN of a Batch ${kind}; got ${value ? `"${value}"` : 'nothing'}`);
  }
  return value;
}

function batchTarget(env: Env): BatchTarget | undefined {
  if (!optional(env, 'JOB_QUEUE') && !optional(env, 'JOB_DEFINITION')) return undefined;
  return {
    jobQueue: batchArn(env, 'JOB_QUEUE', 'job-queue'),
    jobDefinition: batchArn(env, 'JOB_DEFINITION', 'job-definition'),
  };
}

export function readConfig(env: Env = process.env): Config {
  const s3Endpoint = url(env, 'S3_ENDPOINT');
  return {
    bucket: optional(env, 'BUCKET'),
    s3Endpoint,
    s3Credentials: s3Credentials(env, s3Endpoint),
    region: readRegion(env) ?? 'us-east-1',
    logLevel: readLogLevel(env),
    tfjsBackend: oneOf(env, 'TFJS_BACKEND', BACKEND_NAMES),
    port: portFrom('PORT', optional(env, 'PORT') ?? '3000'),
    batchJobId: optional(env, 'AWS_BATCH_JOB_ID'),
    trainThreads: wholeNumberFrom(env, 'TRAIN_THREADS', 1, MAX_TRAIN_THREADS),
    mnistDir: optional(env, 'MNIST_DIR'),
    mnistBaseUrl: url(env, 'MNIST_BASE_URL'),
    modelRefreshSeconds: numberFrom(env, 'MODEL_REFRESH_SECONDS', 60, 0, 86_400),
    s3Timeouts: {
      connectMs: numberFrom(env, 'S3_CONNECT_TIMEOUT_MS', S3_TIMEOUT_DEFAULTS.connectMs, 100, 120_000),
      requestMs: numberFrom(env, 'S3_REQUEST_TIMEOUT_MS', S3_TIMEOUT_DEFAULTS.requestMs, 100, 600_000),
    },
    minAccuracy: numberFrom(env, 'MIN_ACCURACY', undefined, 0, 1),
    maxLiveRegression: numberFrom(env, 'MAX_LIVE_REGRESSION', undefined, 0, 1),
    capture: {
      mode: oneOf(env, 'CAPTURE_MODE', CAPTURE_MODES) ?? 'log',
      sampleRate: numberFrom(env, 'CAPTURE_SAMPLE_RATE', 1, 0, 1),
      flushSeconds: numberFrom(env, 'CAPTURE_FLUSH_SECONDS', 5, 0.01, 3600),
    },
    drift: {
      windowDays: numberFrom(env, 'DRIFT_WINDOW_DAYS', DRIFT_DEFAULTS.windowDays, 1, 90),
      threshold: numberFrom(env, 'DRIFT_THRESHOLD', DRIFT_DEFAULTS.threshold, 0.01, 10),
      minSamples: numberFrom(env, 'DRIFT_MIN_SAMPLES', DRIFT_DEFAULTS.minSamples, 1, 1_000_000),
    },
    rollout: {
      policy: {
        minSamples: policyNumber(env, 'minSamples'),
        minLabelled: policyNumber(env, 'minLabelled'),
        minAgreement: policyNumber(env, 'minAgreement'),
        tolerance: policyNumber(env, 'tolerance'),
        coolDownMinutes: policyNumber(env, 'coolDownMinutes'),
        watchMinutes: policyNumber(env, 'watchMinutes'),
      },
      intervalSeconds: numberFrom(env, 'ROLLOUT_INTERVAL_SECONDS', 60, 0, 86_400),
    },
    feedbackLimit: {
      ratePerSecond: numberFrom(env, 'FEEDBACK_RATE_PER_SECOND', 5, 0.01, 10_000),
      burst: numberFrom(env, 'FEEDBACK_BURST', 20, 1, 100_000),
    },
    batchTarget: batchTarget(env),
    dataDir: optional(env, 'DATA_DIR') ?? '.data',
    stage: oneOf(env, 'STAGE', STAGES) ?? 'local',
    metrics: {
      mode: oneOf(env, 'METRICS', METRICS_MODES) ?? (optional(env, 'AWS_LAMBDA_FUNCTION_NAME') ? 'emf' : 'off'),
      lowConfidenceThreshold: numberFrom(env, 'LOW_CONFIDENCE_THRESHOLD', LOW_CONFIDENCE_DEFAULT, 0, 1),
    },
  };
}

/** The configuration as a debug line may show it: the S3 secret key left out. */
export function loggableConfig(config: Config): Record<string, unknown> {
  const { s3Credentials, ...rest } = config;
  return s3Credentials ? { ...rest, s3AccessKeyId: s3Credentials.accessKeyId } : rest;
}
