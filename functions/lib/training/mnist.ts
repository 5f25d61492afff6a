/**
 * MNIST as raw bytes: the four original gzipped IDX files, found in a local
 * directory (MNIST_DIR), in the bucket under `datasets/mnist/`, or downloaded
 * once from a public mirror. Every file is md5-checked against the published
 * sums before it is parsed, whatever its source.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { MNIST_CLASSES, MNIST_PIXELS, MNIST_SIDE } from '../mnist-shape.ts';
import { logger as defaultLogger, type Logger } from '../log.ts';
import type { ObjectStore } from '../storage/objects.ts';

export const IMAGES_MAGIC = 2051;
export const LABELS_MAGIC = 2049;

const IMAGES_HEADER_BYTES = 16;
const LABELS_HEADER_BYTES = 8;
const KIND_BY_MAGIC: Record<number, string> = { [IMAGES_MAGIC]: 'images', [LABELS_MAGIC]: 'labels' };

/** The published sizes and md5 sums of the original files; the sizes give a download its progress total. */
export const MNIST_FILES = {
  'train-images-idx3-ubyte.gz': { bytes: 9912422, md5: 'f68b3c2dcbeaaa9fbdd348bbdeb94873' },
  'train-labels-idx1-ubyte.gz': { bytes: 28881, md5: 'd53e105ee54ea40749a09fcbcd1e9432' },
  't10k-images-idx3-ubyte.gz': { bytes: 1648877, md5: '9fb629c4189551a2d022fa330f9573f3' },
  't10k-labels-idx1-ubyte.gz': { bytes: 4542, md5: 'ec29112dd5afa0611ce80d1b7f02629c' },
} as const;
export type MnistFileName = keyof typeof MNIST_FILES;
const FILE_NAMES = Object.keys(MNIST_FILES) as MnistFileName[];

export const MNIST_PREFIX = 'datasets/mnist/';
export const DEFAULT_MNIST_URL = 'https://storage.googleapis.com/cvdf-datasets/mnist/';

/** Long enough for a slow link's gaps, short enough that a dead mirror fails a training job in minutes, not hours. */
export const DEFAULT_STALL_MS = 30_000;

export class DatasetError extends Error {
  override name = 'DatasetError';
  constructor(
    readonly file: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${file}: ${message}`, options);
  }
}

/** Raw pixels, 0–255, row-major, `count * MNIST_PIXELS` bytes; scaling belongs to the model. */
export interface MnistSplit {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

export interface Mnist {
  train: MnistSplit;
  test: MnistSplit;
}

export type MnistSource = 'dir' | 'bucket' | 'download';
export type MnistFiles = Record<MnistFileName, Buffer>;

function gunzip(gz: Uint8Array, file: string): Buffer {
  if (gz.length < 2 || gz[0] !== 0x1f || gz[1] !== 0x8b) {
    throw new DatasetError(file, 'not gzip data (no 1f 8b signature)');
  }
  try {
    return gunzipSync(gz);
  } catch (error) {
    const detail =
      (error as NodeJS.ErrnoException).code === 'Z_BUF_ERROR'
        ? 'gzip stream is truncated'
        : `gzip stream is corrupt (${(error as Error).message})`;
    throw new DatasetError(file, detail, { cause: error });
  }
}

/** Magic first: a small file of the other kind should be named as such, not as a short header. */
function checkHeader(data: Buffer, file: string, expected: number, headerBytes: number): void {
  const magic = data.length >= 4 ? data.readUInt32BE(0) : undefined;
  if (magic !== undefined && magic !== expected) {
    const actual = KIND_BY_MAGIC[magic];
    const hint = actual ? `; it is an IDX ${actual} file` : '';
    throw new DatasetError(file, `magic number ${magic} is not ${expected} (IDX ${KIND_BY_MAGIC[expected]})${hint}`);
  }
  if (data.length < headerBytes) {
    throw new DatasetError(file, `IDX header is truncated: ${data.length} bytes, need ${headerBytes}`);
  }
}

function checkLength(
  data: Buffer,
  file: string,
  headerBytes: number,
  count: number,
  itemBytes: number,
  what: string,
): void {
  const expected = headerBytes + count * itemBytes;
  if (data.length < expected) {
    throw new DatasetError(
      file,
      `payload is truncated: the header promises ${count} ${what} (${expected} bytes), the file has ${data.length}`,
    );
  }
  if (data.length > expected) {
    throw new DatasetError(
      file,
      `${data.length - expected} trailing bytes after the ${count} ${what} the header promises`,
    );
  }
}

/** Images from a gzipped IDX file, copied out so the result owns exactly its bytes. */
export function parseImages(gz: Uint8Array, file: string): { images: Uint8Array; count: number } {
  const data = gunzip(gz, file);
  checkHeader(data, file, IMAGES_MAGIC, IMAGES_HEADER_BYTES);
  const count = data.readUInt32BE(4);
  const rows = data.readUInt32BE(8);
  const cols = data.readUInt32BE(12);
  if (rows !== MNIST_SIDE || cols !== MNIST_SIDE) {
    throw new DatasetError(file, `images are ${rows}×${cols}, expected ${MNIST_SIDE}×${MNIST_SIDE}`);
  }
  checkLength(data, file, IMAGES_HEADER_BYTES, count, MNIST_PIXELS, 'images');
  return { images: new Uint8Array(data.subarray(IMAGES_HEADER_BYTES)), count };
}

export function parseLabels(gz: Uint8Array, file: string): Uint8Array {
  const data = gunzip(gz, file);
  checkHeader(data, file, LABELS_MAGIC, LABELS_HEADER_BYTES);
  const count = data.readUInt32BE(4);
  checkLength(data, file, LABELS_HEADER_BYTES, count, 1, 'labels');
  const labels = new Uint8Array(data.subarray(LABELS_HEADER_BYTES));
  const bad = labels.findIndex((label) => label >= MNIST_CLASSES);
  if (bad !== -1) {
    throw new DatasetError(file, `label ${labels[bad]} at index ${bad} is outside 0–${MNIST_CLASSES - 1}`);
  }
  return labels;
}

export function parseSplit(
  imagesGz: Uint8Array,
  labelsGz: Uint8Array,
  imagesFile: string,
  labelsFile: string,
): MnistSplit {
  const { images, count } = parseImages(imagesGz, imagesFile);
  const labels = parseLabels(labelsGz, labelsFile);
  if (labels.length !== count) {
    throw new DatasetError(labelsFile, `${labels.length} labels but ${imagesFile} holds ${count} images`);
  }
  return { images, labels, count };
}

export function parseMnist(files: MnistFiles): Mnist {
  return {
    train: parseSplit(
      files['train-images-idx3-ubyte.gz'],
      files['train-labels-idx1-ubyte.gz'],
      'train-images-idx3-ubyte.gz',
      'train-labels-idx1-ubyte.gz',
    ),
    test: parseSplit(
      files['t10k-images-idx3-ubyte.gz'],
      files['t10k-labels-idx1-ubyte.gz'],
      't10k-images-idx3-ubyte.gz',
      't10k-labels-idx1-ubyte.gz',
    ),
  };
}

export function md5(bytes: Uint8Array): string {
  return createHash('md5').update(bytes).digest('hex');
}

/** Throws unless `bytes` are the published file; `where` tells the reader which copy to delete. */
export function verifyMd5(file: MnistFileName, bytes: Uint8Array, where: string): void {
  const actual = md5(bytes);
  const expected = MNIST_FILES[file].md5;
  if (actual !== expected) {
    throw new DatasetError(
      file,
      `md5 ${actual} (${bytes.length} bytes) from ${where} does not match the published ${expected}`,
    );
  }
}

export interface DownloadProgress {
  file: MnistFileName;
  /** Bytes received so far across every file this download fetches. */
  loaded: number;
  total: number;
}

export interface LoadMnistOptions {
  /** A directory holding the four .gz files (MNIST_DIR); when set it is the only source. */
  dir?: string;
  /** Read from `datasets/mnist/` when all four files are there; seeded after a download. */
  bucket?: ObjectStore;
  baseUrl?: string;
  /** Where downloaded files are kept; default `.data/mnist`. */
  cacheDir?: string;
  /** Tries per file, the first included. */
  attempts?: number;
  /** Wait before the first retry; doubles on each further one. */
  backoffMs?: number;
  /** A try is abandoned when no data has arrived for this long. */
  stallMs?: number;
  logger?: Logger;
  onProgress?: (progress: DownloadProgress) => void;
}

async function readDir(dir: string): Promise<MnistFiles> {
  const entries = await firstFailureInOrder(
    FILE_NAMES.map(async (file) => {
      const location = path.join(dir, file);
      let bytes: Buffer;
      try {
        bytes = await readFile(location);
      } catch (error) {
        throw new DatasetError(file, `cannot read ${location} (MNIST_DIR=${dir}): ${(error as Error).message}`, {
          cause: error,
        });
      }
      verifyMd5(file, bytes, location);
      return [file, bytes] as const;
    }),
  );
  return Object.fromEntries(entries) as MnistFiles;
}

/**
 * Promise.all, but the error thrown is the first failure in input order rather
 * than the first to settle, so a user missing several files always hears about
 * the same one.
 */
async function firstFailureInOrder<T>(promises: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((result) => (result as PromiseFulfilledResult<T>).value);
}

/** The bucket's copy, or undefined when it does not hold all four files yet. */
async function readBucket(bucket: ObjectStore): Promise<MnistFiles | undefined> {
  const keys = new Set(await bucket.list(MNIST_PREFIX));
  if (!FILE_NAMES.every((file) => keys.has(MNIST_PREFIX + file))) return undefined;
  const entries = await firstFailureInOrder(
    FILE_NAMES.map(async (file) => {
      const key = MNIST_PREFIX + file;
      const object = await bucket.get(key);
      if (!object) throw new DatasetError(file, `bucket key ${key} disappeared while it was being read`);
      verifyMd5(file, object.body, `bucket key ${key} (delete it to download a fresh copy)`);
      return [file, object.body] as const;
    }),
  );
  return Object.fromEntries(entries) as MnistFiles;
}

async function readCached(location: string, file: MnistFileName, log: Logger): Promise<Buffer | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(location);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  if (md5(bytes) === MNIST_FILES[file].md5) return bytes;
  log.warn('discarding corrupt cached MNIST file', { file, location });
  await rm(location, { force: true });
  return undefined;
}

/** Temp file then rename, so a reader never sees a half-written file under the real name. */
async function writeAtomically(location: string, bytes: Buffer): Promise<void> {
  const temp = path.join(path.dirname(location), `.${path.basename(location)}.${randomUUID()}.tmp`);
  try {
    await writeFile(temp, bytes);
    await rename(temp, location);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * One GET, abandoned when no byte has arrived for `stallMs` (a mirror that
 * accepts and then goes quiet would otherwise hang training for good) or when
 * the body grows past `maxBytes`. A slow download that keeps moving is left
 * alone.
 */
async function fetchOnce(
  url: string,
  limits: { stallMs: number; maxBytes: number },
  onLoaded: (loaded: number) => void,
): Promise<Buffer> {
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(
      () => abort.abort(new Error(`no data for ${limits.stallMs / 1000} s from ${url}`)),
      limits.stallMs,
    );
  };
  arm();
  try {
    const response = await fetch(url, { signal: abort.signal });
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw new Error(`HTTP ${response.status} ${response.statusText} for ${url}`);
    }
    const chunks: Uint8Array[] = [];
    let loaded = 0;
    const reader = response.body.getReader();
    for (;;) {
      arm();
      const { done, value } = await reader.read();
      if (done) break;
      loaded += value.byteLength;
      if (loaded > limits.maxBytes) {
        await reader.cancel();
        throw new Error(`${url} sent more than the ${limits.maxBytes} bytes expected`);
      }
      chunks.push(value);
      onLoaded(loaded);
    }
    return Buffer.concat(chunks);
  } catch (error) {
    // An abort surfaces as a generic AbortError; the reason says what happened.
    throw abort.signal.aborted ? (abort.signal.reason as Error) : error;
  } finally {
    clearTimeout(timer);
  }
}

interface DownloadSettings {
  baseUrl: string;
  attempts: number;
  backoffMs: number;
  stallMs: number;
  log: Logger;
}

/** Any failure, a 4xx included, is retried: the tries are few and bounded, and a wrong baseUrl still ends in one clear error. */
async function fetchWithRetries(
  url: string,
  file: MnistFileName,
  settings: DownloadSettings,
  onLoaded: (loaded: number) => void,
): Promise<Buffer> {
  for (let attempt = 1; ; attempt++) {
    try {
      // The md5 check catches a wrong body; this only stops an endless one early.
      return await fetchOnce(url, { stallMs: settings.stallMs, maxBytes: MNIST_FILES[file].bytes }, onLoaded);
    } catch (error) {
      if (attempt >= settings.attempts) {
        throw new DatasetError(file, `download failed after ${attempt} attempts: ${(error as Error).message}`, {
          cause: error,
        });
      }
      const delayMs = settings.backoffMs * 2 ** (attempt - 1);
      settings.log.warn('MNIST download failed, retrying', { file, url, attempt, delayMs, error });
      await sleep(delayMs);
    }
  }
}

async function download(
  cacheDir: string,
  settings: DownloadSettings,
  onProgress: LoadMnistOptions['onProgress'],
): Promise<MnistFiles> {
  await mkdir(cacheDir, { recursive: true });
  const files: Partial<MnistFiles> = {};
  const missing: MnistFileName[] = [];
  for (const file of FILE_NAMES) {
    const cached = await readCached(path.join(cacheDir, file), file, settings.log);
    if (cached) files[file] = cached;
    else missing.push(file);
  }
  const total = missing.reduce((sum, file) => sum + MNIST_FILES[file].bytes, 0);
  let finished = 0;
  for (const file of missing) {
    const url = new URL(file, settings.baseUrl).href;
    const bytes = await fetchWithRetries(url, file, settings, (loaded) =>
      onProgress?.({ file, loaded: finished + loaded, total }),
    );
    // Not retried: a mirror that serves other bytes once will serve them again.
    verifyMd5(file, bytes, url);
    await writeAtomically(path.join(cacheDir, file), bytes);
    finished += bytes.length;
    files[file] = bytes;
  }
  return files as MnistFiles;
}

async function seedBucket(bucket: ObjectStore, files: MnistFiles, log: Logger): Promise<void> {
  try {
    for (const file of FILE_NAMES) await bucket.put(MNIST_PREFIX + file, files[file], 'application/gzip');
    log.info('seeded bucket with MNIST', { prefix: MNIST_PREFIX });
  } catch (error) {
    // The data is already verified and in hand; a role that may only read datasets/ must not fail training.
    log.warn('could not seed bucket with MNIST', { prefix: MNIST_PREFIX, error });
  }
}

/** The four verified .gz files and where they came from, without parsing them. */
export async function resolveMnistFiles(
  options: LoadMnistOptions = {},
): Promise<{ files: MnistFiles; source: MnistSource }> {
  const log = options.logger ?? defaultLogger;
  if (options.dir) {
    const files = await readDir(options.dir);
    log.info('MNIST loaded', { source: 'dir', dir: options.dir });
    return { files, source: 'dir' };
  }
  if (options.bucket) {
    const files = await readBucket(options.bucket);
    if (files) {
      log.info('MNIST loaded', { source: 'bucket', prefix: MNIST_PREFIX });
      return { files, source: 'bucket' };
    }
  }
  const baseUrl = options.baseUrl ?? DEFAULT_MNIST_URL;
  const settings: DownloadSettings = {
    baseUrl: baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`,
    attempts: Math.max(1, options.attempts ?? 4),
    backoffMs: options.backoffMs ?? 500,
    stallMs: options.stallMs ?? DEFAULT_STALL_MS,
    log,
  };
  const cacheDir = path.resolve(options.cacheDir ?? '.data/mnist');
  const files = await download(cacheDir, settings, options.onProgress);
  log.info('MNIST loaded', { source: 'download', baseUrl: settings.baseUrl, cacheDir });
  if (options.bucket) await seedBucket(options.bucket, files, log);
  return { files, source: 'download' };
}

export async function loadMnist(options: LoadMnistOptions = {}): Promise<Mnist & { source: MnistSource }> {
  const { files, source } = await resolveMnistFiles(options);
  return { ...parseMnist(files), source };
}
