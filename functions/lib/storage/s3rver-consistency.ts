/**
 * Read-after-write consistency for s3rver's filesystem store, as S3 has it.
 *
 * s3rver answers a PUT once it has read the body, before the object's file is
 * written (a buffered body is not waited for at all), and writes that file in
 * place, truncating it first; a read takes the object's length from one stat,
 * its ETag from another file written after it, and opens the file last. So a
 * GET during or just after a PUT could read an empty object, or the new bytes
 * cut to the old length: CI once read models/latest.json as "not valid JSON"
 * right after a promote.
 *
 * Here the reads and writes of one key take turns, a read holding its turn
 * until its file is open, and a write puts the new file in place by rename
 * once it is complete, so a read that opened the old file reads it whole.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** An object as s3rver hands it to its store. */
interface StoreObject {
  bucket: string;
  key: string;
  content: Buffer | Readable;
  metadata: Record<string, string>;
}

/** The part of s3rver's FilesystemStore (lib/stores/filesystem.js) this changes or builds on. */
export interface FilesystemStore {
  getResourcePath(bucket: string, key: string, resource: string): string;
  getMetadata(bucket: string, key: string): Promise<Record<string, unknown> & { etag: string }>;
  putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5: string): Promise<void>;
  getObject(bucket: string, key: string, options?: unknown): Promise<unknown>;
  putObject(object: StoreObject): Promise<{ size: number; md5: string }>;
  copyObject(...args: [string, string, string, string, ...unknown[]]): Promise<unknown>;
  deleteObject(bucket: string, key: string): Promise<void>;
}

/**
 * Tasks of one key run one at a time, in the order they asked; a task may
 * hold several keys, taken in sorted order so two such tasks cannot deadlock.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>();

  async acquire(key: string): Promise<() => void> {
    const before = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = before.then(() => mine);
    this.tails.set(key, tail);
    await before;
    return () => {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }

  async run<T>(keys: string[], task: () => Promise<T>): Promise<T> {
    const releases = [];
    for (const key of [...new Set(keys)].sort()) releases.push(await this.acquire(key));
    try {
      return await task();
    } finally {
      for (const release of releases.reverse()) release();
    }
  }
}

/** The object's bytes to a file beside its own, then in its place; its md5 and metadata after. */
async function writeObject(store: FilesystemStore, object: StoreObject): Promise<{ size: number; md5: string }> {
  const objectPath = store.getResourcePath(object.bucket, object.key, 'object');
  await mkdir(path.dirname(objectPath), { recursive: true });
  // s3rver lists only files that end as an object's do, so a partial one is never listed.
  const partial = `${objectPath}.${randomUUID()}.partial`;
  const hash = createHash('md5');
  let size = 0;
  const measure = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  const content = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
  try {
    await pipeline(content, measure, createWriteStream(partial));
    await rename(partial, objectPath);
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
  const md5 = hash.digest('hex');
  await store.putMetadata(object.bucket, object.key, object.metadata, md5);
  return { size, md5 };
}

/**
 * Makes `store` consistent in place, and returns its metadata reader taking
 * the same turns (for callers outside s3rver, such as the conditional-write
 * check).
 */
export function makeConsistent(store: FilesystemStore): FilesystemStore['getMetadata'] {
  const turns = new KeyedQueue();
  const id = (bucket: string, key: string) => `${bucket}/${key}`;
  const original = {
    getMetadata: store.getMetadata.bind(store),
    getObject: store.getObject.bind(store),
    copyObject: store.copyObject.bind(store),
    deleteObject: store.deleteObject.bind(store),
  };
  store.putObject = (object) => turns.run([id(object.bucket, object.key)], () => writeObject(store, object));
  store.getObject = (bucket, key, options) =>
    turns.run([id(bucket, key)], () => original.getObject(bucket, key, options));
  store.deleteObject = (bucket, key) => turns.run([id(bucket, key)], () => original.deleteObject(bucket, key));
  store.copyObject = (...args) => {
    const [fromBucket, fromKey, toBucket, toKey] = args;
    return turns.run([id(fromBucket, fromKey), id(toBucket, toKey)], () => original.copyObject(...args));
  };
  return (bucket, key) => turns.run([id(bucket, key)], () => original.getMetadata(bucket, key));
}
