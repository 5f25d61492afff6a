/**
 * Reading a local training job's output as AWS Batch would show it: progress
 * from its stdout lines, and from its stderr the last error it stated, which
 * becomes the failed job's status reason.
 */
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

/** Node's own report of an uncaught error: `Error: …`, `TypeError: …`, `Error [ERR_X]: …`. */
const UNCAUGHT = /^([A-Z]\w*)?Error( \[\w+\])?: /;

/** What the training entry point prints last when it fails (functions/train/main.ts). */
const TRAINING_FAILED = 'training failed: ';

/**
 * The error one stderr line states, if any: a JSON log line at level error
 * (its message and its error's), the entry point's last word, or an uncaught
 * error as node prints it.
 */
export function errorOf(line: string): string | undefined {
  const text = line.trim();
  if (text.startsWith('{')) {
    try {
      const entry = JSON.parse(text) as { level?: unknown; message?: unknown; error?: { message?: unknown } };
      if (entry.level !== 'error' || typeof entry.message !== 'string') return undefined;
      return typeof entry.error?.message === 'string' ? `${entry.message}: ${entry.error.message}` : entry.message;
    } catch {
      return undefined;
    }
  }
  return text.startsWith(TRAINING_FAILED) || UNCAUGHT.test(text) ? text : undefined;
}

/** Calls `onLine` with each whole line of `stream`, whatever its chunking, the last one included when no newline ends it. */
export function eachLine(stream: Readable, onLine: (line: string) => void): void {
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', onLine);
}

/** Follows `stream` and keeps the last error it states; read `last` once the stream has ended. */
export function lastErrorOf(stream: Readable): { readonly last: string | undefined } {
  const seen: { last: string | undefined } = { last: undefined };
  eachLine(stream, (line) => {
    seen.last = errorOf(line) ?? seen.last;
  });
  return seen;
}
