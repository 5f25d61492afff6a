/**
 * Environment read and validated once, at start-up: a bad value fails the
 * process before it serves or trains anything.
 */
import { ConfigError } from './errors.ts';
import { S3_TIMEOUT_DEFAULTS, type S3Timeouts } from './storage/objects.ts';

/** The key pair requests to S3_ENDPOINT are signed with (the embedded S3 accepts only its own). */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface Config {
  /** Unset locally: the embedded S3 is started instead. */
  bucket?: string;
  /** An S3-compatible endpoint (the embedded s3rver); unset on AWS. */
  s3Endpoint?: string;
  /** Set with S3_ENDPOINT; unset on AWS, where the SDK finds the role's credentials itself. */
  s3Credentials?: S3Credentials;
  region: string;
  mnistDir?: string;
  mnistBaseUrl?: string;
  modelRefreshSeconds: number;
  /** S3_CONNECT_TIMEOUT_MS, S3_REQUEST_TIMEOUT_MS. */
  s3Timeouts: S3Timeouts;
  /** Overrides the per-architecture minimum of the quality gate. */
  minAccuracy?: number;
  /** Where local state (the embedded S3's files, the dataset cache) lives. */
  dataDir: string;
}

type Env = Record<string, string | undefined>;

function optional(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

export function numberFrom(env: Env, name: string, fallback: number, min: number, max: number): number;
export function numberFrom(env: Env, name: string, fallback: undefined, min: number, max: number): number | undefined;
export function numberFrom(env: Env, name: string, fallback: number | undefined, min: number, max: number): number | undefined {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be a number from ${min} to ${max}; got "${raw}"`);
  }
  return value;
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
  if (!accessKeyId || !secretAccessKey) throw new ConfigError('S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together: set both or neither');
  if (!endpoint) throw new ConfigError('S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY sign requests to S3_ENDPOINT: set S3_ENDPOINT too');
  return { accessKeyId, secretAccessKey };
}

export function readConfig(env: Env = process.env): Config {
  const s3Endpoint = url(env, 'S3_ENDPOINT');
  return {
    bucket: optional(env, 'BUCKET'),
    s3Endpoint,
    s3Credentials: s3Credentials(env, s3Endpoint),
    region: optional(env, 'AWS_REGION') ?? optional(env, 'AWS_DEFAULT_REGION') ?? 'us-east-1',
    mnistDir: optional(env, 'MNIST_DIR'),
    mnistBaseUrl: url(env, 'MNIST_BASE_URL'),
    modelRefreshSeconds: numberFrom(env, 'MODEL_REFRESH_SECONDS', 60, 0, 86_400),
    s3Timeouts: {
      connectMs: numberFrom(env, 'S3_CONNECT_TIMEOUT_MS', S3_TIMEOUT_DEFAULTS.connectMs, 100, 120_000),
      requestMs: numberFrom(env, 'S3_REQUEST_TIMEOUT_MS', S3_TIMEOUT_DEFAULTS.requestMs, 100, 600_000),
    },
    minAccuracy: numberFrom(env, 'MIN_ACCURACY', undefined, 0, 1),
    dataDir: optional(env, 'DATA_DIR') ?? '.data',
  };
}
