/**
 * The local stand-in for S3: s3rver on 127.0.0.1 with its files under `.data/`
 * (kept between runs), so training and serving work on one machine unchanged.
 */
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';

export interface EmbeddedS3 {
  endpoint: string;
  bucket: string;
  close(): Promise<void>;
}

export interface EmbeddedS3Options {
  directory?: string;
  bucket?: string;
  /** 0 picks a free port (tests); the local stack uses a fixed one so a second process can share it. */
  port?: number;
}

export const DEFAULT_LOCAL_BUCKET = 'digitnet-local';

export async function startEmbeddedS3(options: EmbeddedS3Options = {}): Promise<EmbeddedS3> {
  const directory = path.resolve(options.directory ?? '.data/s3');
  const bucket = options.bucket ?? DEFAULT_LOCAL_BUCKET;
  await mkdir(directory, { recursive: true });
  // s3rver is CommonJS without types and a devDependency: it is never part of a Lambda bundle.
  const S3rver = createRequire(import.meta.url)('s3rver');
  const server = new S3rver({
    address: '127.0.0.1',
    port: options.port ?? 0,
    directory,
    silent: true,
    configureBuckets: [{ name: bucket }],
  });
  const address: AddressInfo = await server.run();
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    bucket,
    close: () => server.close(),
  };
}
