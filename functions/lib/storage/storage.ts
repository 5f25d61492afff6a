/**
 * Opens the bucket a process works on: the configured one (AWS, or any
 * S3-compatible endpoint), or — when nothing is configured — the embedded S3
 * under the data directory, so `npm run train` works on a laptop as is.
 */
import path from 'node:path';
import type { Config, S3Credentials } from '../config.ts';
import {
  configuredBucket,
  createS3Client,
  IN_PROCESS_S3_TIMEOUTS,
  S3ObjectStore,
  type ObjectStore,
} from './objects.ts';

export interface Storage {
  objects: ObjectStore;
  bucket: string;
  endpoint?: string;
  /** What requests to `endpoint` are signed with. */
  credentials?: S3Credentials;
  embedded: boolean;
  close(): Promise<void>;
}

export async function openStorage(config: Config): Promise<Storage> {
  if (config.bucket || config.s3Endpoint) {
    if (!config.bucket)
      throw new Error('S3_ENDPOINT is set but BUCKET is not: set both, or neither to use the embedded S3');
    const { client, objects } = configuredBucket(config.bucket, config);
    return {
      objects,
      bucket: config.bucket,
      endpoint: config.s3Endpoint,
      credentials: config.s3Credentials,
      embedded: false,
      close: async () => client.destroy(),
    };
  }
  // Imported only here: s3rver is a devDependency and never part of a Lambda bundle or the training image.
  const { startEmbeddedS3 } = await import('./embedded-s3.ts');
  const server = await startEmbeddedS3({ directory: path.join(config.dataDir, 's3') });
  const client = createS3Client({
    bucket: server.bucket,
    endpoint: server.endpoint,
    region: config.region,
    credentials: server.credentials,
    timeouts: IN_PROCESS_S3_TIMEOUTS,
  });
  return {
    objects: new S3ObjectStore(client, server.bucket),
    bucket: server.bucket,
    endpoint: server.endpoint,
    credentials: server.credentials,
    embedded: true,
    close: async () => {
      client.destroy();
      await server.close();
    },
  };
}

/** The environment that opens the same bucket in another process (readConfig reads it back). */
export function storageEnv(storage: Pick<Storage, 'bucket' | 'endpoint' | 'credentials'>): Record<string, string> {
  return {
    BUCKET: storage.bucket,
    ...(storage.endpoint && { S3_ENDPOINT: storage.endpoint }),
    ...(storage.credentials && {
      S3_ACCESS_KEY_ID: storage.credentials.accessKeyId,
      S3_SECRET_ACCESS_KEY: storage.credentials.secretAccessKey,
    }),
  };
}
