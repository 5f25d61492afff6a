/**
 * Where capture records go. The response never waits on them:
 *
 * - `logCaptureSink` (the cloud) prints each record as one line on stdout; a
 *   CloudWatch Logs subscription ships the lines through Firehose to
 *   `captures/dt=…/`. Printing is synchronous, so a container recycled after
 *   the response has lost nothing: the line is already in the log stream.
 * - `BucketCaptureSink` (the local stack) buffers records and writes them in
 *   the same layout, gzipped JSON lines, every few seconds, when the buffer is
 *   full, and on shutdown.
 */
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { Logger } from '../log.ts';
import type { ObjectStore } from '../storage/objects.ts';
import { CAPTURES_PREFIX, type CaptureRecord, partition } from './records.ts';

export interface CaptureSink {
  write(record: CaptureRecord): void;
  /** Writes whatever is buffered; resolves when it is stored. */
  flush(): Promise<void>;
}

export function logCaptureSink(
  print: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): CaptureSink {
  return {
    write: (record) => print(JSON.stringify(record)),
    flush: async () => {},
  };
}

export interface BucketSinkOptions {
  /** A full buffer is written at once. */
  maxRecords: number;
  /** A record waits at most this long before it is written. */
  flushSeconds: number;
  /** Names this writer's objects apart from other processes' (e.g. the pid). */
  writerId: string;
  logger: Logger;
}

/** Records kept for a retry when the bucket refuses a write; beyond this the oldest are dropped, and logged. */
const MAX_PENDING = 20_000;

export class BucketCaptureSink implements CaptureSink {
  private buffer: CaptureRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sequence = 0;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly objects: Pick<ObjectStore, 'put'>,
    private readonly options: BucketSinkOptions,
  ) {}

  write(record: CaptureRecord): void {
    this.buffer.push(record);
    if (this.buffer.length >= this.options.maxRecords) {
      void this.flush();
      return;
    }
    this.timer ??= setTimeout(() => void this.flush(), this.options.flushSeconds * 1000).unref();
  }

  /** Writes run one after another, so a shutdown flush waits for the timer's and a retry keeps the order. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const records = this.buffer;
    this.buffer = [];
    this.writing = this.writing.then(() => this.store(records));
    return this.writing;
  }

  private async store(records: CaptureRecord[]): Promise<void> {
    const byDate = new Map<string, CaptureRecord[]>();
    for (const record of records) {
      const date = record.time.slice(0, 10);
      byDate.set(date, [...(byDate.get(date) ?? []), record]);
    }
    for (const [date, group] of byDate) {
      const stamp = new Date().toISOString().replace(/[-:.]/g, '');
      // The random tail keeps two writers apart that share an id (a pid reused after a restart) and a millisecond.
      const unique = `${this.options.writerId}-${this.sequence++}-${randomBytes(4).toString('hex')}`;
      const key = `${partition(CAPTURES_PREFIX, date)}${stamp}-${unique}.jsonl.gz`;
      const body = gzipSync(`${group.map((record) => JSON.stringify(record)).join('\n')}\n`);
      try {
        await this.objects.put(key, body, 'application/gzip');
      } catch (error) {
        this.requeue(group, error);
      }
    }
  }

  private requeue(records: CaptureRecord[], error: unknown): void {
    this.buffer = [...records, ...this.buffer];
    const dropped = this.buffer.length - MAX_PENDING;
    if (dropped > 0) this.buffer.splice(0, dropped);
    this.options.logger.warn('capture write failed; kept for the next flush', {
      error,
      records: records.length,
      ...(dropped > 0 ? { dropped } : {}),
    });
    this.timer ??= setTimeout(() => void this.flush(), this.options.flushSeconds * 1000).unref();
  }
}
