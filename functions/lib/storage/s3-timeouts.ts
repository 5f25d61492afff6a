/**
 * How long a request to S3 may take, shared by the SDK adapter (objects.ts)
 * and the predict path's signed reads (s3-get.ts), and read by config.ts
 * without loading either.
 */
export interface S3Timeouts {
  /** To establish a connection. */
  connectMs: number;
  /** For the response to start, and then the longest silence while it is read. */
  requestMs: number;
}

/**
 * Without these the SDK waits forever on a stalled (not refused) connection:
 * a cold Lambda would spend its whole timeout, a server's background refresh
 * would never end. With the SDK's three attempts a stalled read gives up in
 * about 8 s, inside the predict function's 10 s; a model file is at most a
 * few MB. A slow uplink uploading MNIST to a remote bucket may need more
 * (S3_REQUEST_TIMEOUT_MS).
 */
export const S3_TIMEOUT_DEFAULTS: S3Timeouts = { connectMs: 1_000, requestMs: 2_500 };

/**
 * For the embedded S3, which runs inside the calling process: it answers only
 * when that process's event loop is free, and a training batch or a test's
 * hashing can hold it for seconds. There a short timeout guards against no
 * real stall and only fails healthy requests.
 */
export const IN_PROCESS_S3_TIMEOUTS: S3Timeouts = { connectMs: 5_000, requestMs: 60_000 };
