/**
 * An ObjectStore in memory that honours conditional writes the way S3 does
 * (If-Match on the ETag, If-None-Match: *), for testing the promotion logic
 * without depending on the embedded S3's support for them.
 */
import { createHash } from 'node:crypto';
import { ObjectTooLargeError, WriteConflictError } from '#lib/errors';
import type { ObjectStore, ReadOptions, StoredObject, WriteCondition } from '#lib/storage/objects';

export class MemoryObjects implements ObjectStore {
  readonly objects = new Map<string, StoredObject>();

  async get(key: string, options?: ReadOptions): Promise<StoredObject | undefined> {
    const result = await this.getIfChanged(key, undefined, options);
    return result === 'unchanged' ? undefined : result;
  }

  async getIfChanged(
    key: string,
    etag: string | undefined,
    options: ReadOptions = {},
  ): Promise<StoredObject | 'unchanged' | undefined> {
    const stored = this.objects.get(key);
    if (!stored) return undefined;
    if (etag !== undefined && stored.etag === etag) return 'unchanged';
    const maxBytes = (await options.maxBytes) ?? Number.POSITIVE_INFINITY;
    if (stored.body.byteLength > maxBytes) throw new ObjectTooLargeError(key, maxBytes, stored.body.byteLength);
    return { body: Buffer.from(stored.body), etag: stored.etag };
  }

  async put(key: string, body: Buffer | string, _contentType?: string, condition?: WriteCondition): Promise<void> {
    const current = this.objects.get(key);
    if (condition && ('ifMatch' in condition ? current?.etag !== condition.ifMatch : current !== undefined))
      throw new WriteConflictError(key);
    const bytes = Buffer.from(body);
    this.objects.set(key, { body: bytes, etag: `"${createHash('md5').update(bytes).digest('hex')}"` });
  }

  async exists(key: string): Promise<boolean> {
    return this.objects.has(key);
  }

  async list(prefix: string): Promise<string[]> {
    return [...this.objects.keys()].filter((key) => key.startsWith(prefix)).sort();
  }
}
