/**
 * The narrow slice of S3 the project uses, as a port: ModelStore and the
 * dataset cache depend on `ObjectStore`, and `S3ObjectStore` is the adapter
 * that talks to AWS S3 or to the embedded s3rver.
 */
import {
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import type { Config } from '../config.ts';
import { WriteConflictError } from '../errors.ts';
import { readCapped } from './s3-get.ts';
import { S3_TIMEOUT_DEFAULTS, type S3Timeouts } from './s3-timeouts.ts';

export { IN_PROCESS_S3_TIMEOUTS, S3_TIMEOUT_DEFAULTS, type S3Timeouts } from './s3-timeouts.ts';

export interface StoredObject {
  body: Buffer;
  etag?: string;
}

export interface ReadOptions {
  /**
   * Larger objects fail with ObjectTooLargeError before their body is read. A
   * promise is awaited once the object's size is known, so a cap that depends
   * on another read does not cost a second round trip.
   */
  maxBytes?: number | Promise<number>;
}

/** A put that only succeeds if the key still has this ETag, or (`ifNoneMatch: '*'`) does not exist yet. */
export type WriteCondition = { ifMatch: string } | { ifNoneMatch: '*' };

export interface ObjectStore {
  /** The object, or undefined when the key does not exist. */
  get(key: string, options?: ReadOptions): Promise<StoredObject | undefined>;
  /** 'unchanged' when the object still has `etag`; undefined when the key does not exist. */
  getIfChanged(
    key: string,
    etag: string | undefined,
    options?: ReadOptions,
  ): Promise<StoredObject | 'unchanged' | undefined>;
  /** Throws WriteConflictError when `condition` no longer holds. */
  put(key: string, body: Buffer | string, contentType?: string, condition?: WriteCondition): Promise<void>;
  exists(key: string): Promise<boolean>;
  /** Every key under the prefix, in lexical order. */
  list(prefix: string): Promise<string[]>;
}

export interface S3Settings {
  bucket: string;
  /** Set for an S3-compatible server (the embedded s3rver); unset on AWS. */
  endpoint?: string;
  /** Config's region; a test's client against the embedded S3 may leave it out. */
  region?: string;
  /** Used only with `endpoint`. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  timeouts?: S3Timeouts;
}

/** Builds the one S3 client a process uses, with what s3rver needs when an endpoint is set. */
export function createS3Client(settings: S3Settings): S3Client {
  const { connectMs, requestMs } = settings.timeouts ?? S3_TIMEOUT_DEFAULTS;
  const config: S3ClientConfig = {
    region: settings.region ?? 'us-east-1',
    // throwOnRequestTimeout: otherwise the SDK only logs a warning and keeps waiting.
    requestHandler: {
      connectionTimeout: connectMs,
      requestTimeout: requestMs,
      socketTimeout: requestMs,
      throwOnRequestTimeout: true,
    },
  };
  if (settings.endpoint) {
    config.endpoint = settings.endpoint;
    // s3rver serves path-style only, and mis-stores bodies sent with the SDK's default flexible checksums.
    config.forcePathStyle = true;
    config.requestChecksumCalculation = 'WHEN_REQUIRED';
    config.responseChecksumValidation = 'WHEN_REQUIRED';
    // Without a pair the SDK's own chain decides (environment, profile); the embedded S3 accepts only its pair.
    if (settings.credentials) config.credentials = settings.credentials;
  }
  return new S3Client(config);
}

function isMissing(error: unknown): boolean {
  return (
    error instanceof S3ServiceException &&
    (error.name === 'NoSuchKey' || error.name === 'NotFound' || error.$metadata.httpStatusCode === 404)
  );
}

function isNotModified(error: unknown): boolean {
  return error instanceof S3ServiceException && error.$metadata.httpStatusCode === 304;
}

/** 412: the condition failed; 409: S3 saw a concurrent conditional write to the same key. */
function isConflict(error: unknown): boolean {
  if (!(error instanceof S3ServiceException)) return false;
  return (
    error.name === 'PreconditionFailed' ||
    error.name === 'ConditionalRequestConflict' ||
    error.$metadata.httpStatusCode === 412
  );
}

export class S3ObjectStore implements ObjectStore {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
  ) {}

  async get(key: string, options: ReadOptions = {}): Promise<StoredObject | undefined> {
    const result = await this.getIfChanged(key, undefined, options);
    return result === 'unchanged' ? undefined : result;
  }

  async getIfChanged(
    key: string,
    etag: string | undefined,
    options: ReadOptions = {},
  ): Promise<StoredObject | 'unchanged' | undefined> {
    let out: GetObjectCommandOutput;
    try {
      out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, IfNoneMatch: etag }));
    } catch (error) {
      if (isNotModified(error)) return 'unchanged';
      if (isMissing(error)) return undefined;
      throw error;
    }
    const body = out.Body as unknown as AsyncIterable<Uint8Array> & { destroy(): void };
    let maxBytes = Number.POSITIVE_INFINITY;
    try {
      maxBytes = (await options.maxBytes) ?? maxBytes;
    } catch (error) {
      body.destroy();
      throw error;
    }
    return { body: await readCapped(body, key, maxBytes, out.ContentLength), etag: out.ETag };
  }

  async put(
    key: string,
    body: Buffer | string,
    contentType = 'application/octet-stream',
    condition?: WriteCondition,
  ): Promise<void> {
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      Body: body,
      ContentType: contentType,
      ...(condition && 'ifMatch' in condition ? { IfMatch: condition.ifMatch } : {}),
      ...(condition && 'ifNoneMatch' in condition ? { IfNoneMatch: condition.ifNoneMatch } : {}),
    });
    try {
      await this.client.send(command);
    } catch (error) {
      // S3 answers If-Match on a key that no longer exists with 404: the object changed all the same.
      if (condition && (isConflict(error) || ('ifMatch' in condition && isMissing(error))))
        throw new WriteConflictError(key);
      throw error;
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return true;
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const item of page.Contents ?? []) if (item.Key) keys.push(item.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }
}

/** The client and the store for the bucket the configuration names, as every entry point opens it. */
export function configuredBucket(bucket: string, config: Config): { client: S3Client; objects: S3ObjectStore } {
  const client = createS3Client({
    bucket,
    endpoint: config.s3Endpoint,
    region: config.region,
    credentials: config.s3Credentials,
    timeouts: config.s3Timeouts,
  });
  return { client, objects: new S3ObjectStore(client, bucket) };
}
