/**
 * The narrow slice of S3 the project uses, as a port: ModelStore and the
 * dataset cache depend on `ObjectStore`, and `S3ObjectStore` is the adapter
 * that talks to AWS S3 or to the embedded s3rver.
 */
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';

export interface StoredObject {
  body: Buffer;
  etag?: string;
}

export interface ObjectStore {
  /** The object, or undefined when the key does not exist. */
  get(key: string): Promise<StoredObject | undefined>;
  /** 'unchanged' when the object still has `etag`; undefined when the key does not exist. */
  getIfChanged(key: string, etag: string | undefined): Promise<StoredObject | 'unchanged' | undefined>;
  put(key: string, body: Buffer | string, contentType?: string): Promise<void>;
  exists(key: string): Promise<boolean>;
  /** Every key under the prefix, in lexical order. */
  list(prefix: string): Promise<string[]>;
}

export interface S3Settings {
  bucket: string;
  /** Set for an S3-compatible server (the embedded s3rver); unset on AWS. */
  endpoint?: string;
  region?: string;
  /** Used only with `endpoint`. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** Builds the one S3 client a process uses, with what s3rver needs when an endpoint is set. */
export function createS3Client(settings: S3Settings): S3Client {
  const config: S3ClientConfig = { region: settings.region ?? process.env.AWS_REGION ?? 'us-east-1' };
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
  return error instanceof S3ServiceException && (error.name === 'NoSuchKey' || error.name === 'NotFound' || error.$metadata.httpStatusCode === 404);
}

function isNotModified(error: unknown): boolean {
  return error instanceof S3ServiceException && error.$metadata.httpStatusCode === 304;
}

export class S3ObjectStore implements ObjectStore {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
  ) {}

  async get(key: string): Promise<StoredObject | undefined> {
    const result = await this.getIfChanged(key, undefined);
    return result === 'unchanged' ? undefined : result;
  }

  async getIfChanged(key: string, etag: string | undefined): Promise<StoredObject | 'unchanged' | undefined> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, IfNoneMatch: etag }));
      const bytes = await out.Body!.transformToByteArray();
      return { body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), etag: out.ETag };
    } catch (error) {
      if (isNotModified(error)) return 'unchanged';
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async put(key: string, body: Buffer | string, contentType = 'application/octet-stream'): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType }));
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
