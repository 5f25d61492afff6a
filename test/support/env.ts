/** Shared pieces of the test suites: the genuine MNIST files, temp dirs, the real embedded S3. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startEmbeddedS3, type EmbeddedS3 } from '#lib/storage/embedded-s3';
import { loadMnist, type Mnist } from '#lib/training/mnist';
import { createS3Client, IN_PROCESS_S3_TIMEOUTS, S3ObjectStore } from '#lib/storage/objects';
import { storageEnv } from '#lib/storage/storage';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const mnistDir = path.resolve(repoRoot, process.env.MNIST_DIR ?? '../shared/mnist');

const scratch: string[] = [];
const closers: (() => Promise<void>)[] = [];
// Registered at import, so at the root: `after` called inside a hook would run when that hook ends.
after(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Runs `close` when the suite ends, before its temp dirs are removed (a root `after` in a test file runs later). */
export function closeWhenDone(close: () => Promise<void>): void {
  closers.push(close);
}

/** A temp dir removed when the suite ends. */
export async function tempDir(prefix = 'digitnet-test-'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

let mnist: Promise<Mnist> | undefined;
/** The genuine MNIST, parsed once per test process. */
export function testMnist(): Promise<Mnist> {
  mnist ??= loadMnist({ dir: mnistDir });
  return mnist;
}

export interface TestBucket extends EmbeddedS3 {
  objects: S3ObjectStore;
  /** BUCKET, S3_ENDPOINT and the key pair: what a child process needs to open this bucket. */
  env: Record<string, string>;
}

/** The embedded S3 (s3rver) on a free loopback port, fresh unless given a directory; closed when the suite ends. */
export async function testBucket(directory?: string): Promise<TestBucket> {
  const server = await startEmbeddedS3({ directory: directory ?? (await tempDir('digitnet-s3-')), port: 0 });
  const client = createS3Client({ ...server, timeouts: IN_PROCESS_S3_TIMEOUTS });
  closers.push(async () => {
    client.destroy();
    await server.close();
  });
  return { ...server, objects: new S3ObjectStore(client, server.bucket), env: storageEnv(server) };
}
