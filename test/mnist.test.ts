import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { createLogger } from '#lib/log';
import {
  DatasetError,
  MNIST_FILES,
  MNIST_PREFIX,
  loadMnist,
  parseImages,
  parseLabels,
  parseSplit,
  resolveMnistFiles,
  type DownloadProgress,
  type Mnist,
  type MnistFileName,
  type MnistFiles,
} from '#lib/training/mnist';
import { MNIST_PIXELS } from '#lib/mnist-shape';
import type { ObjectStore } from '#lib/storage/objects';
import { mnistDir, tempDir, testBucket } from './support/env.ts';

const FILE_NAMES = Object.keys(MNIST_FILES) as MnistFileName[];

const md5 = (bytes: Uint8Array) => createHash('md5').update(bytes).digest('hex');
const quietLogger = (lines: string[] = []) => createLogger({}, (line) => lines.push(line), 'debug');

function flipped(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  copy[copy.length >> 1] ^= 0xff;
  return copy;
}

function countPerClass(labels: Uint8Array): number[] {
  const counts = new Array<number>(10).fill(0);
  for (const label of labels) counts[label]++;
  return counts;
}

function assertDatasetError(run: () => unknown, file: string, pattern: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof DatasetError, `expected a DatasetError, got ${String(error)}`);
    assert.equal(error.file, file);
    assert.ok(error.message.startsWith(`${file}: `), error.message);
    assert.match(error.message, pattern);
    return true;
  });
}

async function assertRejectsDataset(promise: Promise<unknown>, file: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof DatasetError, `expected a DatasetError, got ${String(error)}`);
    assert.equal(error.file, file);
    assert.match(error.message, pattern);
    return true;
  });
}

let real: MnistFiles;
before(async () => {
  const entries = await Promise.all(
    FILE_NAMES.map(async (file) => [file, await readFile(path.join(mnistDir, file))] as const),
  );
  real = Object.fromEntries(entries) as MnistFiles;
});

describe('the real MNIST files', () => {
  let mnist: Mnist & { source: string };
  before(async () => {
    mnist = await loadMnist({ dir: mnistDir, logger: quietLogger() });
  });

  test('loads 60,000 training and 10,000 test images of 784 raw pixels from MNIST_DIR', () => {
    assert.equal(mnist.source, 'dir');
    assert.equal(mnist.train.count, 60_000);
    assert.equal(mnist.train.images.length, 60_000 * MNIST_PIXELS);
    assert.equal(mnist.train.labels.length, 60_000);
    assert.equal(mnist.test.count, 10_000);
    assert.equal(mnist.test.images.length, 10_000 * MNIST_PIXELS);
    assert.equal(mnist.test.labels.length, 10_000);
  });

  test('keeps pixels as unscaled bytes and labels in file order', () => {
    assert.equal(Math.max(...mnist.test.images.subarray(0, MNIST_PIXELS)), 255);
    assert.equal(mnist.train.labels[0], 5);
    assert.equal(mnist.test.labels[0], 7);
  });

  test('has the published number of examples of each digit', () => {
    assert.deepEqual(countPerClass(mnist.train.labels), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    assert.deepEqual(countPerClass(mnist.test.labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
  });
});

function idx(magic: number, dims: number[], payload: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((dim, i) => header.writeUInt32BE(dim, 4 + 4 * i));
  return Buffer.concat([header, payload]);
}

const pixels = (count: number) => Uint8Array.from({ length: count * MNIST_PIXELS }, (_, i) => (i * 7) % 256);
const imagesGz = (count: number, payload = pixels(count)) => gzipSync(idx(2051, [count, 28, 28], payload));
const labelsGz = (labels: number[], count = labels.length) => gzipSync(idx(2049, [count], Uint8Array.from(labels)));

describe('IDX parsing', () => {
  test('reads a well-formed pair of files byte for byte', () => {
    const split = parseSplit(imagesGz(3), labelsGz([0, 9, 4]), 'i.gz', 'l.gz');
    assert.equal(split.count, 3);
    assert.deepEqual(split.images, pixels(3));
    assert.deepEqual(split.labels, Uint8Array.from([0, 9, 4]));
  });

  test('rejects a file that is not gzip', () => {
    assertDatasetError(() => parseImages(idx(2051, [1, 28, 28], pixels(1)), 'raw.idx'), 'raw.idx', /not gzip/);
  });

  test('rejects a truncated gzip stream', () => {
    const gz = imagesGz(2);
    assertDatasetError(
      () => parseImages(gz.subarray(0, gz.length - 20), 'cut.gz'),
      'cut.gz',
      /gzip stream is truncated/,
    );
  });

  test('rejects a file shorter than its IDX header', () => {
    assertDatasetError(
      () => parseLabels(gzipSync(Buffer.from([0, 0, 8, 1])), 'stub.gz'),
      'stub.gz',
      /header is truncated/,
    );
  });

  test('rejects images whose payload is shorter than the header promises', () => {
    assertDatasetError(
      () => parseImages(imagesGz(3, pixels(2)), 'short.gz'),
      'short.gz',
      /payload is truncated: the header promises 3 images/,
    );
  });

  test('rejects labels whose payload is shorter than the header promises', () => {
    assertDatasetError(
      () => parseLabels(labelsGz([1, 2], 5), 'short.gz'),
      'short.gz',
      /payload is truncated: the header promises 5 labels/,
    );
  });

  test('rejects trailing bytes after the promised images', () => {
    const payload = Buffer.concat([pixels(2), Buffer.from([1, 2, 3])]);
    assertDatasetError(
      () => parseImages(imagesGz(2, payload), 'long.gz'),
      'long.gz',
      /3 trailing bytes after the 2 images/,
    );
  });

  test('rejects a labels file given as images', () => {
    assertDatasetError(
      () => parseImages(labelsGz([1, 2, 3]), 'labels.gz'),
      'labels.gz',
      /magic number 2049 is not 2051.*labels file/,
    );
  });

  test('rejects an images file given as labels', () => {
    assertDatasetError(
      () => parseLabels(imagesGz(1), 'images.gz'),
      'images.gz',
      /magic number 2051 is not 2049.*images file/,
    );
  });

  test('rejects images that are not 28×28', () => {
    const gz = gzipSync(idx(2051, [1, 32, 32], new Uint8Array(32 * 32)));
    assertDatasetError(() => parseImages(gz, 'big.gz'), 'big.gz', /32×32, expected 28×28/);
  });

  test('rejects a label outside 0–9', () => {
    assertDatasetError(() => parseLabels(labelsGz([3, 10, 1]), 'l.gz'), 'l.gz', /label 10 at index 1 is outside 0–9/);
  });

  test('rejects images and labels whose counts disagree', () => {
    assertDatasetError(
      () => parseSplit(imagesGz(3), labelsGz([1, 2]), 'i.gz', 'l.gz'),
      'l.gz',
      /2 labels but i\.gz holds 3 images/,
    );
  });
});

/** 'stall': headers and half the body, then silence; 'endless': a body that never ends. */
type Reply = 'serve' | 'corrupt' | 'stall' | 'endless' | number;

interface Mirror {
  baseUrl: string;
  /** The file name of every request, in order. */
  requests: string[];
  close(): Promise<void>;
}

/** A real HTTP mirror of the shared files on 127.0.0.1; `reply` decides each answer. */
async function startMirror(reply: (file: string, index: number) => Reply = () => 'serve'): Promise<Mirror> {
  const requests: string[] = [];
  const server = http.createServer((request, response) => {
    const file = path.posix.basename(request.url ?? '');
    const answer = reply(file, requests.length);
    requests.push(file);
    const body = real[file as MnistFileName];
    if (typeof answer === 'number' || !body) {
      response.writeHead(typeof answer === 'number' ? answer : 404).end('no');
      return;
    }
    if (answer === 'stall') {
      response.writeHead(200, { 'content-type': 'application/gzip', 'content-length': body.length });
      response.write(body.subarray(0, body.length >> 1));
      return;
    }
    if (answer === 'endless') {
      response.writeHead(200, { 'content-type': 'application/gzip' });
      const more = () => {
        while (response.write(body)) if (response.destroyed) return;
        response.once('drain', more);
      };
      response.on('close', () => response.removeAllListeners('drain'));
      more();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/gzip', 'content-length': body.length });
    response.end(answer === 'corrupt' ? flipped(body) : body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/mnist/`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function assertCacheHolds(cacheDir: string, files: MnistFileName[]): Promise<void> {
  assert.deepEqual((await readdir(cacheDir)).sort(), [...files].sort());
  for (const file of files) assert.equal(md5(await readFile(path.join(cacheDir, file))), MNIST_FILES[file].md5);
}

describe('loading from a mirror and a bucket', () => {
  const open: Array<{ close(): Promise<void> }> = [];
  const track = <T extends { close(): Promise<void> }>(thing: T): T => {
    open.push(thing);
    return thing;
  };
  after(() => Promise.all(open.map((thing) => thing.close())));

  test('downloads and caches the files, seeds the bucket, and the next load reads the bucket', async () => {
    const mirror = track(await startMirror());
    const bucket = await testBucket();
    const cacheDir = await tempDir();
    const progress: DownloadProgress[] = [];

    const mnist = await loadMnist({
      bucket: bucket.objects,
      baseUrl: mirror.baseUrl,
      cacheDir,
      logger: quietLogger(),
      onProgress: (event) => progress.push(event),
    });

    assert.equal(mnist.source, 'download');
    assert.equal(mnist.train.count, 60_000);
    assert.equal(mnist.test.count, 10_000);
    assert.deepEqual(mirror.requests, FILE_NAMES);
    await assertCacheHolds(cacheDir, FILE_NAMES);
    assert.deepEqual(await bucket.objects.list(MNIST_PREFIX), FILE_NAMES.map((file) => MNIST_PREFIX + file).sort());

    const total = FILE_NAMES.reduce((sum, file) => sum + MNIST_FILES[file].bytes, 0);
    assert.ok(
      progress.every((event, i) => event.total === total && (i === 0 || event.loaded >= progress[i - 1]!.loaded)),
    );
    assert.equal(progress.at(-1)!.loaded, total);

    const again = await resolveMnistFiles({
      bucket: bucket.objects,
      baseUrl: mirror.baseUrl,
      cacheDir: await tempDir(),
      logger: quietLogger(),
    });
    assert.equal(again.source, 'bucket');
    assert.equal(mirror.requests.length, FILE_NAMES.length);
    for (const file of FILE_NAMES) assert.equal(md5(again.files[file]), MNIST_FILES[file].md5);
  });

  test('reuses verified cached files and downloads again only the one that is corrupt', async () => {
    const mirror = track(await startMirror());
    const cacheDir = await tempDir();
    for (const file of FILE_NAMES) await writeFile(path.join(cacheDir, file), real[file]);
    await writeFile(path.join(cacheDir, 't10k-labels-idx1-ubyte.gz'), 'not mnist');

    const { source } = await resolveMnistFiles({ baseUrl: mirror.baseUrl, cacheDir, logger: quietLogger() });

    assert.equal(source, 'download');
    assert.deepEqual(mirror.requests, ['t10k-labels-idx1-ubyte.gz']);
    await assertCacheHolds(cacheDir, FILE_NAMES);
  });

  test('fails on an md5 mismatch without caching the file or writing the bucket', async () => {
    const mirror = track(await startMirror(() => 'corrupt'));
    const bucket = await testBucket();
    const cacheDir = await tempDir();

    await assertRejectsDataset(
      resolveMnistFiles({ bucket: bucket.objects, baseUrl: mirror.baseUrl, cacheDir, logger: quietLogger() }),
      'train-images-idx3-ubyte.gz',
      /md5 [0-9a-f]{32} .* does not match the published f68b3c2dcbeaaa9fbdd348bbdeb94873/,
    );
    assert.deepEqual(mirror.requests, ['train-images-idx3-ubyte.gz']);
    assert.deepEqual(await readdir(cacheDir), []);
    assert.deepEqual(await bucket.objects.list(''), []);
  });

  test('keeps only verified files in the cache and seeds nothing when the last file is corrupt', async () => {
    const mirror = track(await startMirror((file) => (file === 't10k-labels-idx1-ubyte.gz' ? 'corrupt' : 'serve')));
    const bucket = await testBucket();
    const cacheDir = await tempDir();

    await assertRejectsDataset(
      resolveMnistFiles({ bucket: bucket.objects, baseUrl: mirror.baseUrl, cacheDir, logger: quietLogger() }),
      't10k-labels-idx1-ubyte.gz',
      /does not match the published/,
    );
    await assertCacheHolds(
      cacheDir,
      FILE_NAMES.filter((file) => file !== 't10k-labels-idx1-ubyte.gz'),
    );
    assert.deepEqual(await bucket.objects.list(''), []);
  });

  test('retries a request that failed with 500 and then succeeds', async () => {
    const mirror = track(await startMirror((_, index) => (index === 0 ? 500 : 'serve')));
    const lines: string[] = [];

    const { source, files } = await resolveMnistFiles({
      baseUrl: mirror.baseUrl,
      cacheDir: await tempDir(),
      backoffMs: 1,
      logger: quietLogger(lines),
    });

    assert.equal(source, 'download');
    assert.deepEqual(mirror.requests, ['train-images-idx3-ubyte.gz', ...FILE_NAMES]);
    assert.equal(md5(files['train-images-idx3-ubyte.gz']), MNIST_FILES['train-images-idx3-ubyte.gz'].md5);
    const retry = lines
      .map((line) => JSON.parse(line))
      .find((entry) => entry.message === 'MNIST download failed, retrying');
    assert.equal(retry?.attempt, 1);
  });

  test('gives up with a clear error after the configured number of attempts when the mirror answers 404', async () => {
    const mirror = track(await startMirror(() => 404));
    const cacheDir = await tempDir();

    await assertRejectsDataset(
      resolveMnistFiles({ baseUrl: mirror.baseUrl, cacheDir, attempts: 3, backoffMs: 1, logger: quietLogger() }),
      'train-images-idx3-ubyte.gz',
      /download failed after 3 attempts: HTTP 404/,
    );
    assert.deepEqual(mirror.requests, Array(3).fill('train-images-idx3-ubyte.gz'));
    assert.deepEqual(await readdir(cacheDir), []);
  });

  test('abandons a try when the mirror goes silent mid-file, and says so', async () => {
    const mirror = track(await startMirror(() => 'stall'));
    await assertRejectsDataset(
      resolveMnistFiles({
        baseUrl: mirror.baseUrl,
        cacheDir: await tempDir(),
        attempts: 2,
        backoffMs: 1,
        stallMs: 200,
        logger: quietLogger(),
      }),
      'train-images-idx3-ubyte.gz',
      /download failed after 2 attempts: no data for 0\.2 s/,
    );
    assert.equal(mirror.requests.length, 2);
  });

  test("stops reading a body that grows past the file's published size", async () => {
    const mirror = track(await startMirror(() => 'endless'));
    await assertRejectsDataset(
      resolveMnistFiles({ baseUrl: mirror.baseUrl, cacheDir: await tempDir(), attempts: 1, logger: quietLogger() }),
      'train-images-idx3-ubyte.gz',
      /sent more than the 9912422 bytes expected/,
    );
  });

  test('fails on a corrupt file in the bucket instead of downloading', async () => {
    const mirror = track(await startMirror());
    const bucket = await testBucket();
    for (const file of FILE_NAMES) {
      const body = file === 'train-labels-idx1-ubyte.gz' ? flipped(real[file]) : real[file];
      await bucket.objects.put(MNIST_PREFIX + file, body);
    }

    await assertRejectsDataset(
      resolveMnistFiles({
        bucket: bucket.objects,
        baseUrl: mirror.baseUrl,
        cacheDir: await tempDir(),
        logger: quietLogger(),
      }),
      'train-labels-idx1-ubyte.gz',
      /from bucket key datasets\/mnist\/train-labels-idx1-ubyte\.gz .* does not match the published/,
    );
    assert.deepEqual(mirror.requests, []);
  });

  test('still returns the data when the bucket refuses the seed', async () => {
    const mirror = track(await startMirror());
    const cacheDir = await tempDir();
    for (const file of FILE_NAMES) await writeFile(path.join(cacheDir, file), real[file]);
    const readOnly: ObjectStore = {
      get: async () => undefined,
      getIfChanged: async () => undefined,
      exists: async () => false,
      list: async () => [],
      put: async () => {
        throw new Error('AccessDenied');
      },
    };
    const lines: string[] = [];

    const { source } = await resolveMnistFiles({
      bucket: readOnly,
      baseUrl: mirror.baseUrl,
      cacheDir,
      logger: quietLogger(lines),
    });

    assert.equal(source, 'download');
    assert.deepEqual(mirror.requests, []);
    assert.ok(lines.some((line) => JSON.parse(line).message === 'could not seed bucket with MNIST'));
  });
});

describe('loading from MNIST_DIR', () => {
  test('names the file a directory is missing', async () => {
    const dir = await tempDir();
    for (const file of FILE_NAMES.slice(0, 3)) await writeFile(path.join(dir, file), real[file]);

    await assertRejectsDataset(
      resolveMnistFiles({ dir, logger: quietLogger() }),
      't10k-labels-idx1-ubyte.gz',
      /cannot read .*MNIST_DIR=/,
    );
  });

  test('rejects a corrupt file in the directory by its md5', async () => {
    const dir = await tempDir();
    for (const file of FILE_NAMES)
      await writeFile(path.join(dir, file), file === 't10k-images-idx3-ubyte.gz' ? flipped(real[file]) : real[file]);

    await assertRejectsDataset(
      resolveMnistFiles({ dir, logger: quietLogger() }),
      't10k-images-idx3-ubyte.gz',
      /md5 .* does not match the published/,
    );
  });
});
